using System.Text.Json.Serialization;
using ModelZoo.Attention.Layers;

namespace ModelZoo.Models.Gpt2;

/// <summary>
/// GPT-2 configuration. Reads both nanoGPT's GPTConfig (block_size, vocab_size, n_layer, n_head, n_embd, dropout,
/// bias) and Hugging Face GPT2Config (n_positions, n_ctx, n_embd, n_layer, n_head, n_inner, activation_function,
/// layer_norm_epsilon, *_pdrop). The activation defaults to nanoGPT's exact erf GELU when the file does not name one;
/// Hugging Face configs say "gelu_new" (the tanh approximation of OpenAI's GPT-2).
/// </summary>
public sealed record Gpt2Config
{
    public int VocabSize { get; init; } = 50257;
    /// <summary>Hugging Face: number of position embeddings.</summary>
    public int? NPositions { get; init; }
    /// <summary>Hugging Face (older files): context size, same as n_positions.</summary>
    public int? NCtx { get; init; }
    /// <summary>nanoGPT: number of position embeddings.</summary>
    public int? BlockSize { get; init; }
    public int NEmbd { get; init; } = 768;
    public int NLayer { get; init; } = 12;
    public int NHead { get; init; } = 12;
    /// <summary>MLP width; null = 4 × n_embd.</summary>
    public int? NInner { get; init; }
    /// <summary>"gelu_new" (tanh, OpenAI / Hugging Face) or "gelu" (erf, nanoGPT); null = erf.</summary>
    public string? ActivationFunction { get; init; }
    public double LayerNormEpsilon { get; init; } = 1e-5;
    /// <summary>nanoGPT: one dropout rate for embeddings, attention and residuals.</summary>
    public double? Dropout { get; init; }
    public double? EmbdPdrop { get; init; }
    public double? AttnPdrop { get; init; }
    public double? ResidPdrop { get; init; }
    /// <summary>nanoGPT: biases in Linear layers and LayerNorms (null = true, as GPT-2).</summary>
    public bool? Bias { get; init; }
    public double InitializerRange { get; init; } = 0.02;
    public int? BosTokenId { get; init; }
    public int? EosTokenId { get; init; }

    [JsonIgnore] public int MaxPositions => NPositions ?? BlockSize ?? NCtx ?? 1024;
    [JsonIgnore] public int InnerDim => NInner ?? 4 * NEmbd;
    [JsonIgnore] public Activation Activation => ActivationFunction is null ? Activation.GeluErf : Activations.Parse(ActivationFunction);
    [JsonIgnore] public bool HasBias => Bias ?? true;
    [JsonIgnore] public double EmbeddingDropout => EmbdPdrop ?? Dropout ?? 0.0;
    [JsonIgnore] public double AttentionDropout => AttnPdrop ?? Dropout ?? 0.0;
    [JsonIgnore] public double ResidualDropout => ResidPdrop ?? Dropout ?? 0.0;

    public void Validate()
    {
        if (NEmbd <= 0 || NLayer < 0 || NHead <= 0 || VocabSize <= 0 || MaxPositions <= 0)
            throw new ArgumentException($"invalid GPT-2 config: n_embd {NEmbd}, n_layer {NLayer}, n_head {NHead}, vocab_size {VocabSize}, positions {MaxPositions}");
        if (NEmbd % NHead != 0) throw new ArgumentException($"n_embd {NEmbd} is not divisible by n_head {NHead}");
        _ = Activation;
    }

    public PreNormLayerOptions LayerOptions() => new()
    {
        Hidden = NEmbd,
        Heads = NHead,
        MlpDim = InnerDim,
        Activation = Activation,
        LayerNormEps = LayerNormEpsilon,
        Bias = HasBias,
        LayerNormBias = HasBias,
        AttentionDropout = AttentionDropout,
        ResidualDropout = ResidualDropout,
        Names = PreNormLayerNames.Gpt2,
    };

    /// <summary>OpenAI / Hugging Face "gpt2" (124M).</summary>
    public static Gpt2Config Gpt2Small { get; } = new()
    {
        VocabSize = 50257, NPositions = 1024, NCtx = 1024, NEmbd = 768, NLayer = 12, NHead = 12,
        ActivationFunction = "gelu_new", EmbdPdrop = 0.1, AttnPdrop = 0.1, ResidPdrop = 0.1, BosTokenId = 50256, EosTokenId = 50256,
    };
}
