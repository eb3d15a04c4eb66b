using ModelZoo.Attention;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Common;
using ModelZoo.Models.Generation;
using ModelZoo.Models.Gpt2;
using ModelZoo.Models.Parity;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Gpt2;

public class Gpt2Tests
{
    static Gpt2Config Tiny(string? activation = null, bool bias = true) => new()
    {
        VocabSize = 61, BlockSize = 24, NEmbd = 32, NLayer = 2, NHead = 4, ActivationFunction = activation, Bias = bias,
    };

    [Test]
    public void FixtureMatchesNanoGpt()
    {
        var result = ParityCheck.Check(TestPaths.Fixture("gpt2"));
        foreach (var output in result.Outputs) TestContext.Out.WriteLine($"{output.Name}: {output.MaxAbsError:e2}");
        Assert.That(result.Outputs.Select(o => o.Name), Does.Contain("logits").And.Contain("loss").And.Contain("logits_last").And.Contain("hidden_states.h.0"));
        Assert.That(result.Pass, Is.True, string.Join("\n", result.Outputs.Where(o => !o.Pass).Select(o => $"{o.Name}: {o.MaxAbsError} {o.Error}")));
    }

    [Test]
    public void FixtureMatchesTransformersGpt2LMHeadModelWithTanhGelu()
    {
        var result = ParityCheck.Check(Path.Combine(TestPaths.RepositoryRoot, "tests", "data", "hf-fixtures", "hf-gpt2"));
        Assert.That(result.Outputs.Select(o => o.Name), Does.Contain("logits").And.Contain("hidden_states.0").And.Contain("hidden_states.1").And.Contain("hidden_states_final_ln"));
        Assert.That(result.Pass, Is.True, string.Join("\n", result.Outputs.Where(o => !o.Pass).Select(o => $"{o.Name}: {o.MaxAbsError} {o.Error}")));
    }

    [Test]
    public void TanhGeluIsAConfigOptionAndMovesTheFixtureLogits()
    {
        // The fixture was made with nanoGPT's erf GELU; the tanh one (Hugging Face "gelu_new") must not pass.
        using var fixture = new Fixture(TestPaths.Fixture("gpt2"));
        var config = ConfigJson.Parse<Gpt2Config>(fixture.Config) with { ActivationFunction = "gelu_new" };
        Assert.That(config.Activation, Is.EqualTo(ModelZoo.Attention.Layers.Activation.GeluTanh));
        using var model = new Gpt2LMHeadModel(config);
        using (var reader = Checkpoint.Open(fixture.CheckpointPath)) ModelLoader.Load(model, reader, Gpt2Family.KeyMapFor(reader.Entries));
        model.eval();
        using var _ = no_grad();
        var logits = model.forward(fixture.Input("idx"), fixture.Input("targets")).Logits;
        double diff = (logits - fixture.Outputs["logits"]).abs().max().item<float>();
        Assert.That(diff, Is.GreaterThan(1e-4), "tanh GELU should differ from the erf reference beyond the tolerance");
    }

    [Test]
    public void BothConfigDialectsLoad()
    {
        var nano = System.Text.Json.JsonDocument.Parse("""{"block_size": 16, "vocab_size": 97, "n_layer": 2, "n_head": 4, "n_embd": 32, "dropout": 0.0, "bias": false}""").RootElement;
        var hf = System.Text.Json.JsonDocument.Parse("""{"n_positions": 1024, "n_ctx": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-05, "resid_pdrop": 0.1}""").RootElement;
        var a = ConfigJson.Parse<Gpt2Config>(nano);
        var b = ConfigJson.Parse<Gpt2Config>(hf);
        Assert.That((a.MaxPositions, a.NEmbd, a.HasBias, a.Activation), Is.EqualTo((16, 32, false, ModelZoo.Attention.Layers.Activation.GeluErf)));
        Assert.That((b.MaxPositions, b.NEmbd, b.InnerDim, b.Activation, b.ResidualDropout), Is.EqualTo((1024, 768, 3072, ModelZoo.Attention.Layers.Activation.GeluTanh, 0.1)));
        using var noBias = new Gpt2LMHeadModel(a);
        Assert.That(noBias.state_dict().Keys.Any(k => k.EndsWith(".bias")), Is.False, "bias=false drops Linear and LayerNorm biases");
    }

    [Test]
    public void PresetCountsArePublishedSizes()
    {
        Assert.That(ModelCatalog.Default.Describe("gpt2").Parameters, Is.EqualTo(124_439_808L));
        Assert.That(ModelCatalog.Default.Describe("gpt2-small").Parameters, Is.EqualTo(124_439_808L));
    }

    [Test]
    public void HuggingFaceLmHeadLayoutWithBuffersAndTiedHeadLoads()
    {
        manual_seed(3);
        using var source = new Gpt2LMHeadModel(Tiny("gelu_new"));
        // Write it the way Hugging Face GPT2LMHeadModel does: transformer.*, Conv1D weights [in, out], buffers, lm_head.
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (key, value) in source.state_dict())
        {
            bool conv = key.EndsWith("c_attn.weight") || key.EndsWith("c_proj.weight") || key.EndsWith("c_fc.weight");
            tensors[key] = conv ? value.t().contiguous() : value;
        }
        tensors["transformer.h.0.attn.bias"] = ones(1, 1, 24, 24).tril();
        tensors["transformer.h.0.attn.masked_bias"] = tensor(-1e4f);
        tensors["lm_head.weight"] = source.TokenEmbeddingWeight;
        var directory = TestPaths.TempDirectory();
        try
        {
            var path = SafetensorsBuilder.Write(Path.Combine(directory, "model.safetensors"), tensors);
            using var target = new Gpt2LMHeadModel(Tiny("gelu_new"));
            LoadReport report;
            using (var reader = Checkpoint.Open(path)) report = ModelLoader.Load(target, reader, Gpt2Family.KeyMapFor(reader.Entries));
            Assert.That(report.Ignored, Does.Contain("transformer.h.0.attn.bias").And.Contain("lm_head.weight"));
            source.eval(); target.eval();
            using var _ = no_grad();
            var ids = randint(0, 61, new long[] { 2, 9 });
            Assert.That((source.ForwardTokens(ids) - target.ForwardTokens(ids)).abs().max().item<float>(), Is.EqualTo(0f));
        }
        finally { Directory.Delete(directory, true); }
    }

    [Test]
    public void LeftPaddedRowsMatchTheUnpaddedPromptAndTheCacheMatchesAFullPass()
    {
        manual_seed(5);
        using var model = new Gpt2LMHeadModel(Tiny());
        model.eval();
        using var _ = no_grad();
        var prompt = randint(0, 61, new long[] { 1, 6 });
        var alone = model.ForwardTokens(prompt);
        var padded = cat(new[] { zeros(1, 3, dtype: ScalarType.Int64), prompt }, 1);
        var mask = cat(new[] { zeros(1, 3, dtype: ScalarType.Int64), ones(1, 6, dtype: ScalarType.Int64) }, 1);
        var withPadding = model.ForwardTokens(padded, mask).narrow(1, 3, 6);
        Assert.That((alone - withPadding).abs().max().item<float>(), Is.LessThan(1e-5f));

        // Prompt in one pass with the cache, then one token at a time, equals one full pass.
        var sequence = randint(0, 61, new long[] { 2, 10 });
        var full = model.ForwardTokens(sequence);
        using var cache = new KeyValueCache(model.LayerCount);
        var first = model.ForwardTokens(sequence.narrow(1, 0, 4), null, cache);
        var steps = new List<Tensor> { first };
        for (int t = 4; t < 10; t++) steps.Add(model.ForwardTokens(sequence.narrow(1, t, 1), ones(2, t + 1, dtype: ScalarType.Int64), cache));
        Assert.That((cat(steps, 1) - full).abs().max().item<float>(), Is.LessThan(1e-5f));
    }

    [Test]
    public void TheHuggingFaceLayoutIsReversibleAndRoundTrips()
    {
        Assert.That(Gpt2Family.HuggingFaceLayout.IsReversible, Is.True);
        manual_seed(6);
        using var source = new Gpt2LMHeadModel(Tiny("gelu_new"));
        var written = Gpt2Family.HuggingFaceLayout.Reverse().Apply(source.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));
        var attn = written.Tensors.Single(t => t.Name == "transformer.h.0.attn.c_attn.weight");
        Assert.That(attn.Shape, Is.EqualTo(new long[] { 32, 96 }), "Conv1D [in, out] on disk");
        var directory = TestPaths.TempDirectory();
        try
        {
            var path = SafetensorsBuilder.Write(Path.Combine(directory, "hf.safetensors"), written.Tensors.ToDictionary(t => t.Name, t => t.Materialize()));
            using var target = new Gpt2LMHeadModel(Tiny("gelu_new"));
            using (var reader = Checkpoint.Open(path)) ModelLoader.Load(target, reader, Gpt2Family.KeyMapFor(reader.Entries));
            using var _ = no_grad();
            var ids = randint(0, 61, new long[] { 1, 7 });
            Assert.That((source.ForwardTokens(ids) - target.ForwardTokens(ids)).abs().max().item<float>(), Is.EqualTo(0f));
        }
        finally { Directory.Delete(directory, true); }
    }

    [Test]
    public void TooLongInputIsAClearError()
    {
        using var model = new Gpt2LMHeadModel(Tiny());
        var e = Assert.Throws<ArgumentException>(() => model.ForwardTokens(zeros(1, 25, dtype: ScalarType.Int64)));
        Assert.That(e!.Message, Does.Contain("24 positions"));
    }
}
