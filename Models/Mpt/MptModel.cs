using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using ModelZoo.Models.Generation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Mpt;

/// <summary>ALiBi (Press et al.): a per-head linear penalty on the distance to each key, slopes as MPT's gen_slopes makes them.</summary>
public static class Alibi
{
    /// <summary>[heads] slopes: 2^(-bias_max·i/n) for i = 1..n with n the next power of two, interleaved when heads is not one.</summary>
    public static double[] Slopes(int heads, double biasMax = 8)
    {
        int padded = 1 << (int)Math.Ceiling(Math.Log2(heads));
        var slopes = Enumerable.Range(1, padded).Select(i => 1.0 / Math.Pow(2, i * biasMax / padded)).ToArray();
        if (padded == heads) return slopes;
        return slopes.Where((_, i) => i % 2 == 1).Concat(slopes.Where((_, i) => i % 2 == 0)).Take(heads).ToArray();
    }

    /// <summary>
    /// [1, heads, 1, keys] additive scores slope·(j − (keys − 1)): the distance of key j to the last key. For a causal
    /// query i it differs from slope·(j − i) by a constant per row, which the softmax ignores.
    /// </summary>
    public static Tensor Bias(int heads, long keys, double biasMax, Device device, ScalarType dtype)
    {
        var distance = arange(1 - keys, 1, dtype: ScalarType.Float32, device: device);
        var slopes = tensor(Slopes(heads, biasMax).Select(s => (float)s).ToArray(), device: device);
        return (slopes.view(1, heads, 1, 1) * distance.view(1, 1, 1, keys)).to(dtype);
    }
}

/// <summary>
/// The MPT trunk under "transformer": wte, blocks.N (norm_1, attn.Wqkv, [attn.q_ln, attn.k_ln,] attn.out_proj, norm_2,
/// ffn.up_proj, ffn.down_proj), norm_f.
/// </summary>
public sealed class MptModel : nn.Module
{
    readonly Embedding wte;
    readonly Embedding? wpe;
    readonly Dropout emb_drop;
    readonly ModuleList<PreNormTransformerLayer> blocks;
    readonly LayerNorm norm_f;

    public MptModel(MptConfig config) : base("transformer")
    {
        config.Validate();
        wte = nn.Embedding(config.VocabSize, config.DModel);
        if (config.UsesPositionEmbeddings) wpe = nn.Embedding(config.MaxSeqLen, config.DModel);
        emb_drop = nn.Dropout(config.EmbPdrop);
        var layer = config.LayerOptions();
        blocks = nn.ModuleList(Enumerable.Range(0, config.NLayers).Select(_ => new PreNormTransformerLayer(layer)).ToArray());
        norm_f = nn.LayerNorm(config.DModel, config.LayerNormEpsilon, bias: !config.NoBias);
        RegisterComponents();
    }

    public Embedding TokenEmbeddings => wte;
    public PreNormTransformerLayer this[int index] => blocks[index];

    /// <summary>Token (+ position, when the model has them) embeddings, dropout; token rows below <paramref name="frozenTokenRows"/> get no gradient.</summary>
    public Tensor Embed(Tensor inputIds, Tensor positions, long? frozenTokenRows = null)
    {
        var tokens = DecoderPass.EmbedTokens(wte, inputIds, frozenTokenRows);
        if (wpe is not null) tokens = tokens + wpe.forward(positions);
        return emb_drop.forward(tokens);
    }

    public Tensor FinalNorm(Tensor hidden) => norm_f.forward(hidden);
}

/// <summary>
/// MPT causal LM (llm-foundry MPTForCausalLM names; head tied to wte). Attention gets an ALiBi bias instead of position
/// embeddings. Written from the MPT architecture description; no reference fixture checks it yet.
/// </summary>
public sealed class MptForCausalLM : nn.Module, IDecoderLanguageModel
{
    readonly MptModel transformer;

    public MptConfig Config { get; }

    public MptForCausalLM(MptConfig config) : base("mpt")
    {
        Config = config;
        transformer = new MptModel(config);
        RegisterComponents();
        using var _ = no_grad();
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith(".bias", StringComparison.Ordinal)) nn.init.zeros_(p);
            else if (name.Contains(".norm_", StringComparison.Ordinal) || name.Contains(".q_ln.", StringComparison.Ordinal) || name.Contains(".k_ln.", StringComparison.Ordinal))
                nn.init.ones_(p);
            else nn.init.normal_(p, 0, 0.02);
        }
    }

    public nn.Module Module => this;
    public int HiddenSize => Config.DModel;
    public int LayerCount => Config.NLayers;
    public int VocabSize => Config.VocabSize;
    public int? MaxPositions => Config.MaxSeqLen;
    public long? FrozenTokenRows { get; set; }
    public Tensor TokenEmbeddingWeight => transformer.TokenEmbeddings.weight!;

    public Tensor Embed(Tensor inputIds, Tensor positions) => transformer.Embed(inputIds, positions, FrozenTokenRows);

    public Tensor Layer(int index, Tensor hidden, DecoderContext context, LayerKeyValueCache? cache)
    {
        var mask = context.Mask;
        if (Config.AttnConfig.Alibi)
        {
            long keys = (cache?.Length ?? 0) + hidden.shape[1];
            mask = mask with { Bias = Alibi.Bias(Config.NHeads, keys, Config.AttnConfig.AlibiBiasMax, hidden.device, hidden.dtype) };
        }
        return cache is null ? transformer[index].forward(hidden, mask) : transformer[index].ForwardCached(hidden, cache, mask);
    }

    public Tensor FinalNorm(Tensor hidden) => transformer.FinalNorm(hidden);

    public Tensor Logits(Tensor hidden)
    {
        var logits = nn.functional.linear(hidden, DecoderPass.PartiallyFrozen(TokenEmbeddingWeight, FrozenTokenRows));
        return Config.LogitScale is double scale ? logits * scale : logits;
    }
}
