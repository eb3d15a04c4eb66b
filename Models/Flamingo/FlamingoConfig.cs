using System.Text.Json.Serialization;
using ModelZoo.Models.Gpt2;
using ModelZoo.Models.Llama;
using ModelZoo.Models.Mpt;

namespace ModelZoo.Models.Flamingo;

/// <summary>
/// A Flamingo model: a CLIP-style vision tower, a Perceiver resampler over its patch features, and a frozen decoder
/// LM with a gated cross-attention block before every N-th layer (OpenFlamingo's create_model_and_transforms
/// arguments: cross_attn_every_n_layers, the perceiver at dim = vision width, blocks of dim_head 64 × 8 heads).
/// </summary>
public sealed record FlamingoConfig
{
    public required VisionTransformerConfig VisionEncoder { get; init; }
    /// <summary>The decoder LM (GPT-2 family). Its vocab_size includes the added tokens.</summary>
    public Gpt2Config? Gpt2 { get; init; }
    /// <summary>The decoder of the published OpenFlamingo checkpoints (MPT). Its vocab_size includes the added tokens.</summary>
    public MptConfig? Mpt { get; init; }
    /// <summary>A LLaMA-style decoder (OpenFlamingo's first 9B release used LLaMA-7B).</summary>
    public LlamaConfig? Llama { get; init; }
    /// <summary>Resampler; its dim must equal the vision width.</summary>
    public required PerceiverConfig Perceiver { get; init; }
    public int CrossAttnEveryNLayers { get; init; } = 1;
    public int CrossAttnDimHead { get; init; } = 64;
    public int CrossAttnHeads { get; init; } = 8;
    public int CrossAttnFfMult { get; init; } = 4;
    public bool OnlyAttendImmediateMedia { get; init; } = true;
    /// <summary>Size of the LM vocabulary before the Flamingo tokens were added; rows from here on are new.</summary>
    public required int BaseVocabSize { get; init; }
    /// <summary>Id of "&lt;image&gt;".</summary>
    public required int MediaTokenId { get; init; }
    /// <summary>Id of "&lt;|endofchunk|&gt;" (generation stops there by default).</summary>
    public required int EndOfChunkTokenId { get; init; }
    /// <summary>Id of the padding token ("&lt;PAD&gt;" for GPT-style tokenizers).</summary>
    public int? PadTokenId { get; init; }
    public int? EosTokenId { get; init; }

    [JsonIgnore] public int LanguageHidden => Gpt2?.NEmbd ?? Mpt?.DModel ?? Llama?.HiddenSize ?? throw new InvalidOperationException("no language model config");
    [JsonIgnore] public int LanguageLayers => Gpt2?.NLayer ?? Mpt?.NLayers ?? Llama?.NumHiddenLayers ?? throw new InvalidOperationException("no language model config");
    [JsonIgnore] public int LanguageVocab => Gpt2?.VocabSize ?? Mpt?.VocabSize ?? Llama?.VocabSize ?? throw new InvalidOperationException("no language model config");

    public CrossAttentionConfig CrossAttention => new()
    {
        Dim = LanguageHidden, DimVisual = Perceiver.Dim, DimHead = CrossAttnDimHead, Heads = CrossAttnHeads,
        FfMult = CrossAttnFfMult, OnlyAttendImmediateMedia = OnlyAttendImmediateMedia,
    };

    public void Validate()
    {
        if (new object?[] { Gpt2, Mpt, Llama }.Count(c => c is not null) != 1)
            throw new ArgumentException("a Flamingo config names exactly one language model (gpt2, mpt or llama)");
        if (Perceiver.Dim != VisionEncoder.Width)
            throw new ArgumentException($"perceiver dim {Perceiver.Dim} must equal the vision width {VisionEncoder.Width}");
        if (CrossAttnEveryNLayers <= 0) throw new ArgumentException($"cross_attn_every_n_layers must be positive, got {CrossAttnEveryNLayers}");
        int vocab = LanguageVocab;
        foreach (var (name, id) in new[] { ("media_token_id", MediaTokenId), ("end_of_chunk_token_id", EndOfChunkTokenId), ("pad_token_id", PadTokenId ?? 0) })
            if (id < 0 || id >= vocab) throw new ArgumentException($"{name} {id} is outside the vocabulary of {vocab}");
        if (BaseVocabSize <= 0 || BaseVocabSize > vocab) throw new ArgumentException($"base_vocab_size {BaseVocabSize} must be in 1..{vocab}");
    }
}
