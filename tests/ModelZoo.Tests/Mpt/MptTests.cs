using ModelZoo.Attention;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Flamingo;
using ModelZoo.Models.Generation;
using ModelZoo.Models.Mpt;
using ModelZoo.Tests.Generation;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Mpt;

public class MptTests
{
    static MptConfig Tiny(int heads = 4, bool qkLn = false, bool noBias = true) =>
        new() { DModel = 24, NHeads = heads, NLayers = 2, VocabSize = 53, MaxSeqLen = 64, NoBias = noBias, AttnConfig = new MptAttentionConfig { QkLn = qkLn } };

    [Test]
    public void Mpt7BHasItsPublishedSize()
    {
        Assert.That(ModelCatalog.Default.Describe("mpt-7b").Parameters, Is.EqualTo(6_649_286_656L));
        using var model = new MptForCausalLM(Tiny());
        Assert.That(model.state_dict().Keys, Does.Contain("transformer.blocks.1.attn.Wqkv.weight").And.Contain("transformer.blocks.0.ffn.down_proj.weight")
            .And.Contain("transformer.norm_f.weight").And.Not.Contain("transformer.norm_f.bias"));
        Assert.That(model.state_dict().Keys.Any(k => k.Contains("wpe")), Is.False, "ALiBi: no position embeddings");
    }

    [Test]
    public void AlibiSlopesAreThePapersGeometricSequence()
    {
        Assert.That(Alibi.Slopes(8), Is.EqualTo(new[] { 1 / 2.0, 1 / 4.0, 1 / 8.0, 1 / 16.0, 1 / 32.0, 1 / 64.0, 1 / 128.0, 1 / 256.0 }).Within(1e-12));
        // 6 heads: the 8-head sequence of 2^(-i) for even i first, then odd, cut to 6
        var six = Alibi.Slopes(6);
        Assert.That(six, Is.EqualTo(new[] { 1 / 4.0, 1 / 16.0, 1 / 64.0, 1 / 256.0, 1 / 2.0, 1 / 8.0 }).Within(1e-12));
    }

    /// <summary>
    /// The whole model written out with plain tensor math from its state dict: causal softmax(QKᵀ/√d + slope·(j − i))V;
    /// with qk_ln, q and k (each d_model wide, after the Wqkv split, before the heads split) go through their LayerNorms.
    /// Biases are added wherever the state dict has them.
    /// </summary>
    static Tensor Reference(MptForCausalLM model, Tensor ids)
    {
        var w = model.state_dict();
        var config = model.Config;
        int heads = config.NHeads, d = config.DModel, dh = d / heads;
        long length = ids.shape[1];
        var slopes = tensor(Alibi.Slopes(heads).Select(s => (float)s).ToArray()).view(heads, 1, 1);
        var position = arange(length, dtype: ScalarType.Float32);
        var bias = slopes * (position.view(1, 1, length) - position.view(1, length, 1));              // slope·(j − i)
        var causal = ones(length, length, dtype: ScalarType.Bool).tril();
        Tensor Bias(string weightKey) => w.TryGetValue(weightKey[..^"weight".Length] + "bias", out var b) ? b : zeros(1);
        Tensor Norm(Tensor x, string key) => nn.functional.layer_norm(x, new long[] { d }, w[key], null, 1e-5) + Bias(key);
        Tensor Linear(Tensor x, string key) => x.matmul(w[key].t()) + Bias(key);
        var x = w["transformer.wte.weight"].index_select(0, ids.reshape(-1)).view(ids.shape[0], length, d);
        for (int layer = 0; layer < config.NLayers; layer++)
        {
            string p = $"transformer.blocks.{layer}.";
            var h = Norm(x, p + "norm_1.weight");
            var qkv = Linear(h, p + "attn.Wqkv.weight").chunk(3, -1);
            if (config.AttnConfig.QkLn) { qkv[0] = Norm(qkv[0], p + "attn.q_ln.weight"); qkv[1] = Norm(qkv[1], p + "attn.k_ln.weight"); }
            Tensor Heads(Tensor t) => t.view(t.shape[0], length, heads, dh).transpose(1, 2);
            var scores = Heads(qkv[0]).matmul(Heads(qkv[1]).transpose(-1, -2)) / Math.Sqrt(dh) + bias;
            scores = scores.masked_fill(causal.logical_not(), float.NegativeInfinity);
            var attended = scores.softmax(-1).matmul(Heads(qkv[2])).transpose(1, 2).reshape(x.shape[0], length, d);
            x = x + Linear(attended, p + "attn.out_proj.weight");
            var m = Norm(x, p + "norm_2.weight");
            x = x + Linear(nn.functional.gelu(Linear(m, p + "ffn.up_proj.weight")), p + "ffn.down_proj.weight");
        }
        return Norm(x, "transformer.norm_f.weight").matmul(w["transformer.wte.weight"].t());
    }

    [TestCase(4, false, true)]
    [TestCase(6, false, true)]
    [TestCase(4, true, true)]
    [TestCase(6, true, true)]
    [TestCase(4, true, false)]
    public void ForwardEqualsTheArchitectureWrittenOut(int heads, bool qkLn, bool noBias)
    {
        manual_seed(8);
        using var model = new MptForCausalLM(Tiny(heads, qkLn, noBias));
        var keys = model.state_dict().Keys;
        Assert.That(keys.Contains("transformer.blocks.1.attn.q_ln.weight") && keys.Contains("transformer.blocks.1.attn.k_ln.weight"), Is.EqualTo(qkLn));
        Assert.That(keys.Contains("transformer.blocks.0.attn.q_ln.bias"), Is.EqualTo(qkLn && !noBias), "the QK LayerNorms follow no_bias");
        if (qkLn) Assert.That(model.state_dict()["transformer.blocks.0.attn.q_ln.weight"].eq(1).all().item<bool>(), Is.True, "LayerNorm weights start at one");
        GenerationTests.Sharpen(model, 0.3);
        model.eval();
        using var _ = no_grad();
        var ids = randint(0, 53, new long[] { 2, 9 });
        Assert.That((model.ForwardTokens(ids) - Reference(model, ids)).abs().max().item<float>(), Is.LessThan(1e-4f));
    }

    [Test]
    public void CacheAndLeftPaddingGiveTheSameLogits()
    {
        manual_seed(9);
        using var model = new MptForCausalLM(Tiny());
        GenerationTests.Sharpen(model, 0.3);
        model.eval();
        using var _ = no_grad();
        var sequence = randint(0, 53, new long[] { 1, 8 });
        var full = model.ForwardTokens(sequence);
        using var cache = new KeyValueCache(2);
        var steps = new List<Tensor> { model.ForwardTokens(sequence.narrow(1, 0, 5), null, cache) };
        for (int t = 5; t < 8; t++) steps.Add(model.ForwardTokens(sequence.narrow(1, t, 1), ones(1, t + 1, dtype: ScalarType.Int64), cache));
        Assert.That((cat(steps, 1) - full).abs().max().item<float>(), Is.LessThan(1e-4f));
        var padded = model.ForwardTokens(cat(new[] { zeros(1, 3, dtype: ScalarType.Int64), sequence }, 1),
            cat(new[] { zeros(1, 3, dtype: ScalarType.Int64), ones(1, 8, dtype: ScalarType.Int64) }, 1)).narrow(1, 3, 8);
        Assert.That((padded - full).abs().max().item<float>(), Is.LessThan(1e-4f));
        var generator = new DecoderGenerativeModel(model);
        var prompts = new[] { new long[] { 3, 9, 27, 4 }, new long[] { 11 } };
        Assert.That(TextGenerator.Generate(generator, prompts, new GenerationOptions { MaxNewTokens = 8 }).Select(r => r.Tokens),
            Is.EqualTo(TextGenerator.Generate(generator, prompts, new GenerationOptions { MaxNewTokens = 8, UseCache = false }).Select(r => r.Tokens)));
    }

    [Test]
    public void OpenFlamingoPresetsCountEveryPart()
    {
        var config = (FlamingoConfig)ModelCatalog.Default.Get("openflamingo-9b-vitl-mpt7b").Config;
        long decoder = 6_649_286_656L - (50432L - 50280L) * 4096;                     // MPT-7B with the embeddings resized to 50280
        long expected = FlamingoParameterCounts.VisionEncoder(config.VisionEncoder) + FlamingoParameterCounts.Perceiver(config.Perceiver)
                        + FlamingoParameterCounts.CrossAttention(config) + decoder;
        var description = ModelCatalog.Default.Describe("openflamingo-9b-vitl-mpt7b");
        Assert.That(description.Parameters, Is.EqualTo(expected));
        Assert.That(FlamingoParameterCounts.CrossAttentionBlocks(32, 4), Is.EqualTo(8));
        Assert.That(ModelCatalog.Default.Describe("openflamingo-3b-vitl-mpt1b").ParametersByTopModule["vision_encoder"], Is.EqualTo(303_966_208L));
    }

    [Test]
    public void Mpt1BHasQkLayerNormAndItsSize()
    {
        // mosaic_gpt config of anas-awadalla/mpt-1b-redpajama-200b: d_model 2048, 16 heads, 24 layers, mlp_ratio 4,
        // vocab 50432, no_bias, attn_qk_ln. Per layer: norm_1, Wqkv, q_ln, k_ln, out_proj, norm_2, up, down (weights only).
        long d = 2048, layer = d + 3 * d * d + 2 * d + d * d + d + 2 * 4 * d * d;
        Assert.That(ModelCatalog.Default.Describe("mpt-1b-redpajama-200b").Parameters, Is.EqualTo(50432 * d + 24 * layer + d));
        Assert.That(ModelCatalog.Default.Describe("mpt-1b-redpajama-200b").Parameters, Is.EqualTo(1_311_442_944L));
        var flamingo = (FlamingoConfig)ModelCatalog.Default.Get("openflamingo-3b-vitl-mpt1b").Config;
        Assert.That(flamingo.Mpt!.AttnConfig.QkLn, Is.True);
        long decoder = 50280 * d + 24 * layer + d;                                      // embeddings resized to 50280
        Assert.That(ModelCatalog.Default.Describe("openflamingo-3b-vitl-mpt1b").Parameters,
            Is.EqualTo(FlamingoParameterCounts.VisionEncoder(flamingo.VisionEncoder) + FlamingoParameterCounts.Perceiver(flamingo.Perceiver)
                       + FlamingoParameterCounts.CrossAttention(flamingo) + decoder));
        Assert.That(ModelCatalog.Default.Describe("openflamingo-3b-vitl-mpt1b").Parameters, Is.EqualTo(2_559_117_360L));
        long t = 64, tinyLayer = t + 3 * t * t + 2 * t + t * t + t + 2 * 4 * t * t;
        Assert.That(ModelCatalog.Default.Describe("mpt-tiny").Parameters, Is.EqualTo(50432 * t + 2 * tinyLayer + t).And.EqualTo(3_326_528L));
        long llamaLayer = t + 4 * t * t + t + 3 * t * 172;                                // + untied lm_head
        Assert.That(ModelCatalog.Default.Describe("llama-tiny").Parameters, Is.EqualTo(2 * 32000 * t + 2 * llamaLayer + t).And.EqualTo(4_195_136L));
        Assert.That(Assert.Throws<NotSupportedException>(() => new MptForCausalLM(Tiny() with { AttnConfig = new MptAttentionConfig { ClipQkv = 6 } }))!.Message,
            Does.Contain("clip_qkv"));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void FlamingoWithAnMptDecoderLoadsOpenFlamingoAndMosaicGptNames(bool qkLn)
    {
        var config = FlamingoFamily.Tiny with
        {
            Gpt2 = null,
            Mpt = new MptConfig { DModel = 32, NHeads = 4, NLayers = 2, VocabSize = 50260, MaxSeqLen = 128, AttnConfig = new MptAttentionConfig { QkLn = qkLn } },
            CrossAttnEveryNLayers = 1,
        };
        manual_seed(12);
        using var source = new FlamingoModel(config);
        using (no_grad())
            foreach (var (_, block) in source.LanguageModel.CrossAttention.Blocks) { block.AttentionGate.fill_(0.5f); block.FeedForwardGate.fill_(0.5f); }
        source.eval();
        if (qkLn)
            using (no_grad())
                foreach (var (name, p) in source.named_parameters())
                    if (name.Contains(".q_ln.") || name.Contains(".k_ln.")) p.add_(randn_like(p) * 0.3);
        var ids = tensor(new long[,] { { FlamingoFamily.Gpt2Media, 5, 6, 7 } });
        var images = randn(new long[] { 1, 1, 1, 3, 32, 32 });
        Tensor expected;
        using (no_grad()) expected = source.forward(images, ids);

        // OpenFlamingo wraps MPT's transformer.blocks.N in FlamingoLayers; mosaic_gpt (MPT-1B) calls the norms ln_* and the MLP mlp.mlp_*.
        var state = new Dictionary<string, Tensor>();
        foreach (var (key, value) in source.state_dict())
        {
            var layer = System.Text.RegularExpressions.Regex.Match(key, @"^lang_encoder\.transformer\.blocks\.(\d+)\.(.*)$");
            var block = System.Text.RegularExpressions.Regex.Match(key, @"^lang_encoder\.gated_cross_attn_layers\.(\d+)\.(.*)$");
            if (layer.Success)
            {
                var rest = layer.Groups[2].Value.Replace("norm_1.", "ln_1.").Replace("norm_2.", "ln_2.").Replace("ffn.up_proj.", "mlp.mlp_up.").Replace("ffn.down_proj.", "mlp.mlp_down.");
                state[$"lang_encoder.transformer.blocks.{layer.Groups[1].Value}.decoder_layer.{rest}"] = value;
            }
            else if (block.Success) state[$"lang_encoder.transformer.blocks.{block.Groups[1].Value}.gated_cross_attn_layer.{block.Groups[2].Value}"] = value;
            else state[key.Replace("transformer.norm_f.", "transformer.ln_f.")] = value;
        }
        // MPT-1B's QK LayerNorms keep the same names in both layouts: blocks.N.attn.q_ln / attn.k_ln (weight only, no_bias).
        Assert.That(state.Keys.Count(k => k.EndsWith(".attn.q_ln.weight") || k.EndsWith(".attn.k_ln.weight")), Is.EqualTo(qkLn ? 4 : 0));
        Assert.That(state.Keys, qkLn ? Does.Contain("lang_encoder.transformer.blocks.1.decoder_layer.attn.k_ln.weight") : Does.Not.Contain("lang_encoder.transformer.blocks.1.decoder_layer.attn.k_ln.weight"));
        var directory = ModelZoo.Tests.Support.TestPaths.TempDirectory();
        try
        {
            var path = ModelZoo.Tests.Support.SafetensorsBuilder.Write(Path.Combine(directory, "openflamingo.safetensors"), state);
            manual_seed(99);
            using var target = new FlamingoModel(config);
            using (var reader = ModelZoo.Weights.Checkpoint.Open(path))
                ModelZoo.Weights.ModelLoader.Load(target, reader, FlamingoFamily.KeyMapFor(reader.Entries, config));
            target.eval();
            using var _ = no_grad();
            Assert.That((target.forward(images, ids) - expected).abs().max().item<float>(), Is.EqualTo(0f));
        }
        finally { Directory.Delete(directory, true); }
    }
}
