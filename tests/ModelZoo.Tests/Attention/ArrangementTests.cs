using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Attention;

public class ArrangementTests
{
    [SetUp]
    public void Seed() => manual_seed(99);

    static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [Test]
    public void MergedAttentionIsSelfAttentionOverTheConcatenatedStreamsWithConcatenatedMasks()
    {
        var merged = new MergedAttention(new MultiHeadAttentionOptions { QueryDim = 16, Heads = 4 });
        merged.eval();
        var text = randn(2, 5, 16);
        var image = randn(2, 3, 16);
        var textPadding = tensor(new[,] { { 1L, 1, 1, 1, 1 }, { 1L, 1, 0, 0, 0 } });
        var outputs = merged.forward(new[] { text, image }, new Tensor?[] { textPadding, null });
        Assert.That(outputs[0].shape, Is.EqualTo(new long[] { 2, 5, 16 }));
        Assert.That(outputs[1].shape, Is.EqualTo(new long[] { 2, 3, 16 }));
        var joint = merged.forward(cat(new[] { text, image }, 1), null,
            AttentionMask.FromPadding(cat(new[] { textPadding, ones(2, 3, dtype: ScalarType.Int64) }, 1)));
        Assert.That(MaxDiff(cat(outputs, 1), joint), Is.LessThan(1e-6));
    }

    [Test]
    public void CoAttentionExchangesBothWaysWithItsOwnWeights()
    {
        var co = new CoAttention(
            new MultiHeadAttentionOptions { QueryDim = 12, KeyValueDim = 20, InnerDim = 16, Heads = 2, Names = AttentionNames.Bert with { Query = "query2", Key = "key1", Value = "value1" } },
            new MultiHeadAttentionOptions { QueryDim = 20, KeyValueDim = 12, InnerDim = 16, Heads = 2, Names = AttentionNames.Bert with { Query = "query1", Key = "key2", Value = "value2" } },
            flatten: true);
        co.eval();
        Assert.That(co.state_dict().Keys.Where(k => k.EndsWith(".weight")).OrderBy(k => k),
            Is.EqualTo(new[] { "key1.weight", "key2.weight", "query1.weight", "query2.weight", "value1.weight", "value2.weight" }));
        var text = randn(2, 4, 12);
        var vision = randn(2, 6, 20);
        var visionPadding = tensor(new[,] { { 1L, 1, 1, 1, 1, 1 }, { 1L, 1, 1, 0, 0, 0 } });
        var (textOut, visionOut) = co.forward(text, vision, null, visionPadding);
        Assert.That(textOut.shape, Is.EqualTo(new long[] { 2, 4, 16 }));
        Assert.That(visionOut.shape, Is.EqualTo(new long[] { 2, 6, 16 }));
        Assert.That(MaxDiff(textOut, co.AOverB.forward(text, vision, AttentionMask.FromPadding(visionPadding))), Is.EqualTo(0.0));
        Assert.That(MaxDiff(visionOut, co.BOverA.forward(vision, text)), Is.EqualTo(0.0));
    }

    [Test]
    public void SharedCoAttentionUsesOneSetOfWeightsBothWays()
    {
        var co = new CoAttention(new MultiHeadAttentionOptions { QueryDim = 16, Heads = 4 }, "att");
        Assert.That(co.Shared, Is.True);
        Assert.That(co.state_dict().Keys, Has.All.StartsWith("att."));
        var a = randn(1, 3, 16);
        var b = randn(1, 5, 16);
        var (aOut, bOut) = co.forward(a, b);
        Assert.That(MaxDiff(bOut, co.AOverB.forward(b, a)), Is.EqualTo(0.0));
        Assert.That(aOut.shape, Is.EqualTo(new long[] { 1, 3, 16 }));
    }

    [Test]
    public void AsymmetricAttentionTakesQueriesFromOneSideOnly()
    {
        var attention = new AsymmetricAttention(new MultiHeadAttentionOptions
        {
            QueryDim = 16, KeyValueDim = 8, HeadDim = 4, Heads = 2, ProjectionBias = false,
            Layout = ProjectionLayout.SeparateQueryFusedKeyValue, Names = AttentionNames.Flamingo,
        });
        attention.eval();
        var textTokens = randn(2, 6, 16);
        var media = randn(2, 4, 8);
        var allowed = ones(2, 1, 6, 4, dtype: ScalarType.Bool);
        allowed[0, 0, 0] = tensor(false);
        var output = attention.forward(textTokens, media, null, allowed);
        Assert.That(output.shape, Is.EqualTo(new long[] { 2, 6, 16 }));
        Assert.That(output[0, 0].abs().max().item<float>(), Is.EqualTo(0f), "a token that may see no media gets zeros");
    }

    [Test]
    public void ReferenceKernelSwitchReachesEveryAttentionInAModel()
    {
        var layer = new BertLayer(new BertLayerOptions { Hidden = 16, Heads = 4, Intermediate = 32 });
        layer.eval();
        var x = randn(2, 5, 16);
        var padding = tensor(new[,] { { 1L, 1, 1, 1, 1 }, { 1L, 1, 1, 0, 0 } });
        var fused = layer.forward(x, padding);
        layer.WithAttentionKernel(AttentionKernel.Reference);
        Assert.That(MaxDiff(fused, layer.forward(x, padding)), Is.LessThan(1e-5));
    }

    [Test]
    public void BertLayerUsesTheOriginalKeyNames()
    {
        var layer = new BertLayer(new BertLayerOptions { Hidden = 8, Heads = 2, Intermediate = 16 });
        Assert.That(layer.state_dict().Keys.OrderBy(k => k, StringComparer.Ordinal), Is.EqualTo(new[]
        {
            "attention.output.LayerNorm.bias", "attention.output.LayerNorm.weight", "attention.output.dense.bias", "attention.output.dense.weight",
            "attention.self.key.bias", "attention.self.key.weight", "attention.self.query.bias", "attention.self.query.weight",
            "attention.self.value.bias", "attention.self.value.weight", "intermediate.dense.bias", "intermediate.dense.weight",
            "output.LayerNorm.bias", "output.LayerNorm.weight", "output.dense.bias", "output.dense.weight",
        }));
    }

    [Test]
    public void PreNormLayerNamesFollowTheChosenLayout()
    {
        var clip = new PreNormTransformerLayer(new PreNormLayerOptions { Hidden = 8, Heads = 2, MlpDim = 32, Activation = Activation.QuickGelu });
        Assert.That(clip.state_dict().Keys, Is.SupersetOf(new[] { "ln_1.weight", "attn.in_proj_weight", "attn.out_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.bias", "ln_2.bias" }));
        var timm = new PreNormTransformerLayer(new PreNormLayerOptions { Hidden = 8, Heads = 2, MlpDim = 32, Names = PreNormLayerNames.Timm });
        Assert.That(timm.state_dict().Keys, Is.SupersetOf(new[] { "norm1.weight", "attn.qkv.weight", "attn.proj.weight", "mlp.fc1.weight", "mlp.fc2.weight", "norm2.bias" }));
    }

    [TestCase(Activation.GeluErf, 0.8413447, 1.0)]
    [TestCase(Activation.QuickGelu, 0.8457957, 1.0)]
    [TestCase(Activation.GeluTanh, 0.8411920, 1.0)]
    public void ActivationsMatchTheirDefinitions(Activation activation, double expected, double input)
    {
        // GELU(1) = Φ(1) = 0.8413447; QuickGELU(1) = sigmoid(1.702) = 0.8457957; tanh-GELU(1) = 0.8411920.
        Assert.That(Activations.Apply(activation, tensor(new[] { (float)input })).item<float>(), Is.EqualTo(expected).Within(1e-6));
    }
}
