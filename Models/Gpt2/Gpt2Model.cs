using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using ModelZoo.Models.Generation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Gpt2;

/// <summary>
/// The GPT-2 trunk in Hugging Face GPT2Model names: wte, wpe, h.N (ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc,
/// mlp.c_proj), ln_f. Linear weights are stored [out, in]; Hugging Face Conv1D files are transposed by the key map.
/// </summary>
public sealed class Gpt2Model : nn.Module
{
    readonly Embedding wte, wpe;
    readonly Dropout drop;
    readonly ModuleList<PreNormTransformerLayer> h;
    readonly LayerNorm ln_f;

    public Gpt2Config Config { get; }

    public Gpt2Model(Gpt2Config config) : base("transformer")
    {
        config.Validate();
        Config = config;
        wte = nn.Embedding(config.VocabSize, config.NEmbd);
        wpe = nn.Embedding(config.MaxPositions, config.NEmbd);
        drop = nn.Dropout(config.EmbeddingDropout);
        var layer = config.LayerOptions();
        h = nn.ModuleList(Enumerable.Range(0, config.NLayer).Select(_ => new PreNormTransformerLayer(layer)).ToArray());
        ln_f = nn.LayerNorm(config.NEmbd, config.LayerNormEpsilon, bias: config.HasBias);
        RegisterComponents();
    }

    public Embedding TokenEmbeddings => wte;
    public Embedding PositionEmbeddings => wpe;
    public PreNormTransformerLayer this[int index] => h[index];
    public int Count => h.Count;

    /// <summary>Token + position embeddings, dropout; token rows below <paramref name="frozenTokenRows"/> get no gradient.</summary>
    public Tensor Embed(Tensor inputIds, Tensor positions, long? frozenTokenRows = null) =>
        drop.forward(DecoderPass.EmbedTokens(wte, inputIds, frozenTokenRows) + wpe.forward(positions));

    public Tensor FinalNorm(Tensor hidden) => ln_f.forward(hidden);
}

/// <summary>Logits (and the loss when targets are given) of a GPT-2 forward pass.</summary>
public sealed record Gpt2Output(Tensor Logits, Tensor? Loss, IReadOnlyList<Tensor> HiddenStates);

/// <summary>
/// GPT-2 language model (nanoGPT model.py semantics): the trunk under "transformer" and an output head tied to the
/// token embeddings (no lm_head parameter of its own, so Hugging Face GPT2LMHeadModel and GPT2Model files both load).
/// </summary>
public sealed class Gpt2LMHeadModel : nn.Module, IDecoderLanguageModel
{
    readonly Gpt2Model transformer;

    public Gpt2Config Config { get; }

    public Gpt2LMHeadModel(Gpt2Config config) : base("gpt2")
    {
        Config = config;
        transformer = new Gpt2Model(config);
        RegisterComponents();
        Initialize();
    }

    public Gpt2Model Transformer => transformer;

    /// <summary>GPT-2 / nanoGPT initialisation: N(0, 0.02) weights, zero biases, residual projections scaled by 1/√(2·n_layer).</summary>
    void Initialize()
    {
        using var _ = no_grad();
        double std = Config.InitializerRange;
        foreach (var (name, parameter) in named_parameters())
        {
            if (name.EndsWith(".bias", StringComparison.Ordinal)) nn.init.zeros_(parameter);
            else if (name.Contains(".ln_", StringComparison.Ordinal)) nn.init.ones_(parameter);
            else if (name.EndsWith("c_proj.weight", StringComparison.Ordinal)) nn.init.normal_(parameter, 0, std / Math.Sqrt(2.0 * Math.Max(1, Config.NLayer)));
            else nn.init.normal_(parameter, 0, std);
        }
    }

    // IDecoderLanguageModel
    public nn.Module Module => this;
    public int HiddenSize => Config.NEmbd;
    public int LayerCount => Config.NLayer;
    public int VocabSize => Config.VocabSize;
    public int? MaxPositions => Config.MaxPositions;
    public long? FrozenTokenRows { get; set; }
    public Tensor TokenEmbeddingWeight => transformer.TokenEmbeddings.weight!;

    public Tensor Embed(Tensor inputIds, Tensor positions) => transformer.Embed(inputIds, positions, FrozenTokenRows);

    public Tensor Layer(int index, Tensor hidden, DecoderContext context, LayerKeyValueCache? cache) =>
        cache is null ? transformer[index].forward(hidden, context.Mask) : transformer[index].ForwardCached(hidden, cache, context.Mask);

    public Tensor FinalNorm(Tensor hidden) => transformer.FinalNorm(hidden);

    public Tensor Logits(Tensor hidden) => nn.functional.linear(hidden, DecoderPass.PartiallyFrozen(TokenEmbeddingWeight, FrozenTokenRows));

    /// <summary>
    /// nanoGPT forward: idx [B, T]. With targets, logits at every position and the cross-entropy loss (positions whose
    /// target equals <paramref name="ignoreIndex"/> do not count); without, the inference path: logits of the last
    /// position only, [B, 1, vocab].
    /// </summary>
    public Gpt2Output forward(Tensor idx, Tensor? targets = null, long ignoreIndex = -1, bool keepHiddenStates = false)
    {
        var pass = DecoderPass.Run(this, idx, keepLayerOutputs: keepHiddenStates);
        if (targets is null)
            return new Gpt2Output(Logits(pass.Hidden.narrow(1, pass.Hidden.shape[1] - 1, 1)), null, pass.LayerOutputs);
        var logits = Logits(pass.Hidden);
        var loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), targets.reshape(-1), ignore_index: ignoreIndex);
        return new Gpt2Output(logits, loss, pass.LayerOutputs);
    }
}
