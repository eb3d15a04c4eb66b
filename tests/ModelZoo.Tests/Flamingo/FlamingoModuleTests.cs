using ModelZoo.Models.Flamingo;
using ModelZoo.Models.Parity;
using ModelZoo.Tests.Support;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Flamingo;

public class FlamingoModuleTests
{
    [TestCase("openflamingo-perceiver")]
    [TestCase("openflamingo-xattn-immediate")]
    [TestCase("openflamingo-xattn-all")]
    public void FixtureMatchesOpenFlamingo(string name)
    {
        var result = ParityCheck.Check(TestPaths.Fixture(name));
        foreach (var output in result.Outputs) TestContext.Out.WriteLine($"{output.Name}: {output.MaxAbsError:e2}");
        Assert.That(result.Outputs, Has.Count.GreaterThanOrEqualTo(4));
        Assert.That(result.Pass, Is.True, string.Join("\n", result.Outputs.Where(o => !o.Pass).Select(o => $"{o.Name}: {o.MaxAbsError} {o.Error}")));
    }

    static CrossAttentionConfig Config(bool immediate) => new() { Dim = 16, DimVisual = 12, DimHead = 4, Heads = 2, FfMult = 2, OnlyAttendImmediateMedia = immediate };

    [Test]
    public void TextBeforeTheFirstImageGetsExactlyZeroAndFiniteGradients()
    {
        manual_seed(1);
        var attention = new MaskedCrossAttention(Config(immediate: true));
        var x = randn(1, 5, 16, requires_grad: true);
        var media = randn(1, 2, 3, 12);
        var locations = tensor(new[,] { { false, false, true, false, true } });
        var output = attention.Attend(x, media, MediaTime.FromLocations(locations));
        Assert.That(output.narrow(1, 0, 2).abs().max().item<float>(), Is.EqualTo(0f));
        Assert.That(output.narrow(1, 2, 3).abs().min().item<float>(), Is.GreaterThan(0f));
        output.sum().backward();
        Assert.That(x.grad!.isfinite().all().item<bool>(), Is.True);
    }

    [Test]
    public void ImmediateModeSeesOnlyTheLatestImage()
    {
        manual_seed(2);
        var attention = new MaskedCrossAttention(Config(immediate: true));
        attention.eval();
        using var _ = no_grad();
        var x = randn(1, 4, 16);
        var media = randn(1, 2, 3, 12);
        var time = tensor(new long[,] { { 1, 1, 2, 2 } });
        var before = attention.Attend(x, media, time);
        // Changing image 1 must leave tokens of time 2 untouched, and change tokens of time 1.
        var changed = media.clone();
        changed[0, 0] = randn(3, 12);
        var after = attention.Attend(x, changed, time);
        Assert.That((before - after).narrow(1, 2, 2).abs().max().item<float>(), Is.EqualTo(0f));
        Assert.That((before - after).narrow(1, 0, 2).abs().max().item<float>(), Is.GreaterThan(1e-4f));
    }

    [Test]
    public void AFreshBlockHasZeroGatesAndLeavesTheTextUnchanged()
    {
        var block = new GatedCrossAttentionBlock(Config(immediate: true));
        Assert.That(block.state_dict().Keys, Is.EquivalentTo(new[]
        {
            "attn.norm.weight", "attn.norm.bias", "attn.to_q.weight", "attn.to_kv.weight", "attn.to_out.weight",
            "attn_gate", "ff.0.weight", "ff.0.bias", "ff.1.weight", "ff.3.weight", "ff_gate",
        }));
        using var _ = no_grad();
        var x = randn(2, 5, 16);
        var output = block.forward(x, randn(2, 2, 3, 12), tensor(new long[,] { { 0, 1, 1, 2, 2 }, { 1, 1, 1, 1, 1 } }));
        Assert.That((output - x).abs().max().item<float>(), Is.EqualTo(0f));
    }

    [Test]
    public void PerceiverWithoutTimeEmbeddingsAndItsLimits()
    {
        var perceiver = new PerceiverResampler(new PerceiverConfig { Dim = 16, Depth = 1, DimHead = 4, Heads = 2, NumLatents = 3 });
        Assert.That(perceiver.state_dict().Keys, Does.Not.Contain("frame_embs").And.Not.Contain("media_time_embs"));
        using var _ = no_grad();
        Assert.That(perceiver.forward(randn(new long[] { 2, 4, 1, 7, 16 })).shape, Is.EqualTo(new long[] { 2, 4, 3, 16 }));
        var limited = new PerceiverResampler(new PerceiverConfig { Dim = 16, Depth = 1, DimHead = 4, Heads = 2, NumLatents = 3, MaxNumMedia = 2, MaxNumFrames = 1 });
        var e = Assert.Throws<ArgumentException>(() => limited.forward(randn(new long[] { 1, 3, 1, 7, 16 })));
        Assert.That(e!.Message, Does.Contain("max_num_media 2"));
        Assert.Throws<ArgumentException>(() => limited.forward(randn(new long[] { 1, 1, 1, 7, 15 })));
    }
}
