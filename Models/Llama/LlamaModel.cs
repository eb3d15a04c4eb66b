using ModelZoo.Attention.Layers;
using ModelZoo.Attention;
using ModelZoo.Models.Generation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Llama;

/// <summary>Rotary position embeddings in the Hugging Face layout (rotate_half: the two halves of each head pair up).</summary>
public static class Rotary
{
    /// <summary>cos and sin [B, 1, L, head_dim] for absolute positions [B, L].</summary>
    public static (Tensor Cos, Tensor Sin) Angles(Tensor positions, int headDim, double theta, ScalarType dtype)
    {
        var inverse = (1.0 / pow(theta, arange(0, headDim, 2, dtype: ScalarType.Float32, device: positions.device) / headDim)).to(ScalarType.Float32);
        var freqs = positions.to(ScalarType.Float32).unsqueeze(-1) * inverse;        // [B, L, D/2]
        var angles = cat(new[] { freqs, freqs }, -1).unsqueeze(1);                     // [B, 1, L, D]
        return (angles.cos().to(dtype), angles.sin().to(dtype));
    }

    /// <summary>x [B, H, L, D] rotated: x·cos + rotate_half(x)·sin.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        var halves = x.chunk(2, -1);
        var rotated = cat(new[] { -halves[1], halves[0] }, -1);
        return x * cos + rotated * sin;
    }
}

/// <summary>SwiGLU MLP: down_proj(silu(gate_proj(x)) · up_proj(x)), no biases.</summary>
public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    readonly Linear gate_proj, up_proj, down_proj;

    public LlamaMlp(int hidden, int intermediate) : base("mlp")
    {
        gate_proj = nn.Linear(hidden, intermediate, hasBias: false);
        up_proj = nn.Linear(hidden, intermediate, hasBias: false);
        down_proj = nn.Linear(intermediate, hidden, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => down_proj.forward(nn.functional.silu(gate_proj.forward(x)) * up_proj.forward(x));
}

/// <summary>
/// One LLaMA layer: input_layernorm, self_attn (q_proj, k_proj, v_proj, o_proj with rotary q/k; the shared
/// MultiHeadAttention projects and attends), post_attention_layernorm, mlp.
/// </summary>
public sealed class LlamaDecoderLayer : nn.Module
{
    readonly RmsNorm input_layernorm, post_attention_layernorm;
    readonly MultiHeadAttention self_attn;
    readonly LlamaMlp mlp;
    readonly LlamaConfig config;

    public LlamaDecoderLayer(LlamaConfig config) : base("layer")
    {
        this.config = config;
        input_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps);
        self_attn = new MultiHeadAttention(new MultiHeadAttentionOptions
        {
            QueryDim = config.HiddenSize, Heads = config.NumAttentionHeads, ProjectionBias = config.AttentionBias, OutputBias = false,
            Layout = ProjectionLayout.Separate, Names = AttentionNames.HuggingFace with { Output = "o_proj" },
        });
        post_attention_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps);
        mlp = new LlamaMlp(config.HiddenSize, config.IntermediateSize);
        RegisterComponents();
    }

    public Tensor forward(Tensor x, DecoderContext context, LayerKeyValueCache? cache)
    {
        int heads = config.NumAttentionHeads, headDim = config.HiddenSize / heads;
        var (q, k, v) = self_attn.Project(input_layernorm.forward(x));
        var (cos, sin) = Rotary.Angles(context.Positions, headDim, config.RopeTheta, x.dtype);
        q = AttentionCore.MergeHeads(Rotary.Apply(AttentionCore.SplitHeads(q, heads), cos, sin));
        k = AttentionCore.MergeHeads(Rotary.Apply(AttentionCore.SplitHeads(k, heads), cos, sin));
        if (cache is not null) (k, v) = cache.Append(k, v);
        x = x + self_attn.AttendProjected(q, k, v, context.Mask);
        return x + mlp.forward(post_attention_layernorm.forward(x));
    }
}

/// <summary>The LLaMA trunk under "model": embed_tokens, layers.N, norm.</summary>
public sealed class LlamaModel : nn.Module
{
    readonly Embedding embed_tokens;
    readonly ModuleList<LlamaDecoderLayer> layers;
    readonly RmsNorm norm;

    public LlamaModel(LlamaConfig config) : base("model")
    {
        embed_tokens = nn.Embedding(config.VocabSize, config.HiddenSize);
        layers = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new LlamaDecoderLayer(config)).ToArray());
        norm = new RmsNorm(config.HiddenSize, config.RmsNormEps);
        RegisterComponents();
    }

    public Embedding TokenEmbeddings => embed_tokens;
    public LlamaDecoderLayer this[int index] => layers[index];
    public Tensor FinalNorm(Tensor hidden) => norm.forward(hidden);
}

/// <summary>
/// LLaMA causal LM in Hugging Face LlamaForCausalLM names (model.*, lm_head unless tie_word_embeddings): RMSNorm,
/// rotary positions, SwiGLU. Written from the architecture; no reference fixture checks it yet.
/// </summary>
public sealed class LlamaForCausalLM : nn.Module, IDecoderLanguageModel
{
    readonly LlamaModel model;
    readonly Linear? lm_head;

    public LlamaConfig Config { get; }

    public LlamaForCausalLM(LlamaConfig config) : base("llama")
    {
        config.Validate();
        Config = config;
        model = new LlamaModel(config);
        if (!config.TieWordEmbeddings) lm_head = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false);
        RegisterComponents();
        using var _ = no_grad();
        foreach (var (name, p) in named_parameters())
            if (!name.Contains("norm", StringComparison.Ordinal)) nn.init.normal_(p, 0, 0.02);
    }

    public nn.Module Module => this;
    public int HiddenSize => Config.HiddenSize;
    public int LayerCount => Config.NumHiddenLayers;
    public int VocabSize => Config.VocabSize;
    public int? MaxPositions => Config.MaxPositionEmbeddings;
    public long? FrozenTokenRows { get; set; }
    public Tensor TokenEmbeddingWeight => model.TokenEmbeddings.weight!;

    public Tensor Embed(Tensor inputIds, Tensor positions) => DecoderPass.EmbedTokens(model.TokenEmbeddings, inputIds, FrozenTokenRows);

    public Tensor Layer(int index, Tensor hidden, DecoderContext context, LayerKeyValueCache? cache) => model[index].forward(hidden, context, cache);

    public Tensor FinalNorm(Tensor hidden) => model.FinalNorm(hidden);

    public Tensor Logits(Tensor hidden) =>
        lm_head?.forward(hidden) ?? nn.functional.linear(hidden, DecoderPass.PartiallyFrozen(TokenEmbeddingWeight, FrozenTokenRows));
}
