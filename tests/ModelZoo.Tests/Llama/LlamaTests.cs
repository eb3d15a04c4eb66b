using ModelZoo.Attention;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Flamingo;
using ModelZoo.Models.Generation;
using ModelZoo.Models.Llama;
using ModelZoo.Tests.Generation;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Llama;

public class LlamaTests
{
    static LlamaConfig Tiny => new() { VocabSize = 47, HiddenSize = 24, IntermediateSize = 40, NumHiddenLayers = 2, NumAttentionHeads = 3, MaxPositionEmbeddings = 64, RmsNormEps = 1e-5 };

    static LlamaForCausalLM Model(long seed)
    {
        manual_seed(seed);
        var model = new LlamaForCausalLM(Tiny);
        GenerationTests.Sharpen(model, 0.3);
        model.eval();
        return model;
    }

    [Test]
    public void Llama7BHasItsPublishedSize()
    {
        Assert.That(ModelCatalog.Default.Describe("llama-7b").Parameters, Is.EqualTo(6_738_415_616L));
        using var model = new LlamaForCausalLM(Tiny);
        Assert.That(model.state_dict().Keys, Is.SupersetOf(new[]
        {
            "model.embed_tokens.weight", "model.layers.1.input_layernorm.weight", "model.layers.1.self_attn.q_proj.weight",
            "model.layers.1.self_attn.o_proj.weight", "model.layers.1.post_attention_layernorm.weight", "model.layers.1.mlp.gate_proj.weight",
            "model.layers.1.mlp.up_proj.weight", "model.layers.1.mlp.down_proj.weight", "model.norm.weight", "lm_head.weight",
        }));
        Assert.That(model.state_dict().Keys.Any(k => k.EndsWith(".bias")), Is.False);
        Assert.Throws<NotSupportedException>(() => new LlamaForCausalLM(Tiny with { NumKeyValueHeads = 1 }));
    }

    /// <summary>The architecture written out: RMSNorm, rotary (rotate_half) on q and k at positions 0..L-1, causal softmax, SwiGLU.</summary>
    static Tensor Reference(LlamaForCausalLM model, Tensor ids)
    {
        var w = model.state_dict();
        var c = model.Config;
        int heads = c.NumAttentionHeads, d = c.HiddenSize, dh = d / heads;
        long length = ids.shape[1], batch = ids.shape[0];
        Tensor Rms(Tensor x, string key) => x * (x.pow(2).mean(new long[] { -1 }, keepdim: true) + c.RmsNormEps).rsqrt() * w[key];
        var position = arange(length, dtype: ScalarType.Float64);
        var inverse = Enumerable.Range(0, dh / 2).Select(i => 1.0 / Math.Pow(c.RopeTheta, 2.0 * i / dh)).ToArray();
        var angle = position.unsqueeze(1) * tensor(inverse).unsqueeze(0);                     // [L, dh/2]
        var cos = angle.cos().to(ScalarType.Float32);
        var sin = angle.sin().to(ScalarType.Float32);
        Tensor Rotate(Tensor t)                                                                  // [B, H, L, dh]: pair i with i + dh/2
        {
            var first = t.narrow(-1, 0, dh / 2);
            var second = t.narrow(-1, dh / 2, dh / 2);
            return cat(new[] { first * cos - second * sin, second * cos + first * sin }, -1);
        }
        var causal = ones(length, length, dtype: ScalarType.Bool).tril();
        var x = w["model.embed_tokens.weight"].index_select(0, ids.reshape(-1)).view(batch, length, d);
        for (int layer = 0; layer < c.NumHiddenLayers; layer++)
        {
            string p = $"model.layers.{layer}.";
            var h = Rms(x, p + "input_layernorm.weight");
            Tensor Heads(Tensor t) => t.view(batch, length, heads, dh).transpose(1, 2);
            var q = Rotate(Heads(h.matmul(w[p + "self_attn.q_proj.weight"].t())));
            var k = Rotate(Heads(h.matmul(w[p + "self_attn.k_proj.weight"].t())));
            var v = Heads(h.matmul(w[p + "self_attn.v_proj.weight"].t()));
            var scores = (q.matmul(k.transpose(-1, -2)) / Math.Sqrt(dh)).masked_fill(causal.logical_not(), float.NegativeInfinity);
            x = x + scores.softmax(-1).matmul(v).transpose(1, 2).reshape(batch, length, d).matmul(w[p + "self_attn.o_proj.weight"].t());
            var m = Rms(x, p + "post_attention_layernorm.weight");
            var gated = nn.functional.silu(m.matmul(w[p + "mlp.gate_proj.weight"].t())) * m.matmul(w[p + "mlp.up_proj.weight"].t());
            x = x + gated.matmul(w[p + "mlp.down_proj.weight"].t());
        }
        return Rms(x, "model.norm.weight").matmul(w["lm_head.weight"].t());
    }

    [Test]
    public void ForwardEqualsTheArchitectureWrittenOut()
    {
        using var model = Model(3);
        using var _ = no_grad();
        var ids = randint(0, 47, new long[] { 2, 10 });
        Assert.That((model.ForwardTokens(ids) - Reference(model, ids)).abs().max().item<float>(), Is.LessThan(1e-4f));
    }

    [Test]
    public void CacheLeftPaddingAndGenerationAgree()
    {
        using var model = Model(4);
        using var _ = no_grad();
        var sequence = randint(0, 47, new long[] { 1, 9 });
        var full = model.ForwardTokens(sequence);
        using var cache = new KeyValueCache(2);
        var steps = new List<Tensor> { model.ForwardTokens(sequence.narrow(1, 0, 4), null, cache) };
        for (int t = 4; t < 9; t++) steps.Add(model.ForwardTokens(sequence.narrow(1, t, 1), ones(1, t + 1, dtype: ScalarType.Int64), cache));
        Assert.That((cat(steps, 1) - full).abs().max().item<float>(), Is.LessThan(1e-4f));
        var padded = model.ForwardTokens(cat(new[] { zeros(1, 2, dtype: ScalarType.Int64), sequence }, 1),
            cat(new[] { zeros(1, 2, dtype: ScalarType.Int64), ones(1, 9, dtype: ScalarType.Int64) }, 1)).narrow(1, 2, 9);
        Assert.That((padded - full).abs().max().item<float>(), Is.LessThan(1e-4f), "rotary positions count real tokens");
        var generator = new DecoderGenerativeModel(model);
        var prompts = new[] { new long[] { 3, 9, 27, 4, 8 }, new long[] { 11 } };
        Assert.That(TextGenerator.Generate(generator, prompts, new GenerationOptions { MaxNewTokens = 8, NumBeams = 2 }).Select(r => r.Tokens),
            Is.EqualTo(TextGenerator.Generate(generator, prompts, new GenerationOptions { MaxNewTokens = 8, NumBeams = 2, UseCache = false }).Select(r => r.Tokens)));
    }

    [Test]
    public void FlamingoWithALlamaDecoderLoadsTheOpenFlamingoLayout()
    {
        var config = FlamingoFamily.Tiny with { Gpt2 = null, Llama = Tiny with { VocabSize = 50260, HiddenSize = 32, NumAttentionHeads = 4 }, CrossAttnEveryNLayers = 1 };
        manual_seed(21);
        using var source = new FlamingoModel(config);
        using (no_grad())
            foreach (var (_, block) in source.LanguageModel.CrossAttention.Blocks) { block.AttentionGate.fill_(0.5f); block.FeedForwardGate.fill_(0.5f); }
        source.eval();
        var ids = tensor(new long[,] { { FlamingoFamily.Gpt2Media, 5, 6, 7 } });
        var images = randn(new long[] { 1, 1, 1, 3, 32, 32 });
        Tensor expected;
        using (no_grad()) expected = source.forward(images, ids);
        var state = new Dictionary<string, Tensor>();
        foreach (var (key, value) in source.state_dict())
        {
            var layer = System.Text.RegularExpressions.Regex.Match(key, @"^lang_encoder\.model\.layers\.(\d+)\.(.*)$");
            var block = System.Text.RegularExpressions.Regex.Match(key, @"^lang_encoder\.gated_cross_attn_layers\.(\d+)\.(.*)$");
            if (layer.Success) state[$"lang_encoder.model.layers.{layer.Groups[1].Value}.decoder_layer.{layer.Groups[2].Value}"] = value;
            else if (block.Success) state[$"lang_encoder.model.layers.{block.Groups[1].Value}.gated_cross_attn_layer.{block.Groups[2].Value}"] = value;
            else state[key] = value;
        }
        var directory = TestPaths.TempDirectory();
        try
        {
            var path = SafetensorsBuilder.Write(Path.Combine(directory, "openflamingo.safetensors"), state);
            manual_seed(99);
            using var target = new FlamingoModel(config);
            using (var reader = Checkpoint.Open(path)) ModelLoader.Load(target, reader, FlamingoFamily.KeyMapFor(reader.Entries, config));
            target.eval();
            using var _ = no_grad();
            Assert.That((target.forward(images, ids) - expected).abs().max().item<float>(), Is.EqualTo(0f));
        }
        finally { Directory.Delete(directory, true); }
    }
}
