using System.Text.Json.Serialization;
using ModelZoo.Attention.Layers;

namespace ModelZoo.Models.Mpt;

/// <summary>MPT attn_config fields.</summary>
public sealed record MptAttentionConfig
{
    public bool Alibi { get; init; } = true;
    public double AlibiBiasMax { get; init; } = 8;
    public double AttnPdrop { get; init; }
    /// <summary>null = 1/√head_dim.</summary>
    public double? SoftmaxScale { get; init; }
    public double? ClipQkv { get; init; }
    /// <summary>
    /// QK LayerNorm (llm-foundry attn_config.qk_ln; mosaic_gpt's flat attn_qk_ln, on in MPT-1B-RedPajama): LayerNorms
    /// attn.q_ln / attn.k_ln over the full d_model width of q and k after the Wqkv split, before the heads are split.
    /// They follow no_bias like every other LayerNorm (MPT-1B: weight only).
    /// </summary>
    public bool QkLn { get; init; }
}

/// <summary>
/// MosaicML MPT configuration (config.json of mosaicml/mpt-7b: d_model, n_heads, n_layers, expansion_ratio,
/// max_seq_len, vocab_size, no_bias, attn_config, emb_pdrop, resid_pdrop, learned_pos_emb, logit_scale).
/// </summary>
public sealed record MptConfig
{
    public int DModel { get; init; } = 2048;
    public int NHeads { get; init; } = 16;
    public int NLayers { get; init; } = 24;
    public int ExpansionRatio { get; init; } = 4;
    public int MaxSeqLen { get; init; } = 2048;
    public int VocabSize { get; init; } = 50368;
    /// <summary>No biases in Linear layers and LayerNorms.</summary>
    public bool NoBias { get; init; } = true;
    public MptAttentionConfig AttnConfig { get; init; } = new();
    public double EmbPdrop { get; init; }
    public double ResidPdrop { get; init; }
    /// <summary>Learned position embeddings (wpe); MPT turns them off when ALiBi is on.</summary>
    public bool LearnedPosEmb { get; init; }
    public double? LogitScale { get; init; }
    public double LayerNormEpsilon { get; init; } = 1e-5;

    [JsonIgnore] public bool UsesPositionEmbeddings => LearnedPosEmb && !AttnConfig.Alibi;

    public void Validate()
    {
        if (DModel <= 0 || NHeads <= 0 || NLayers < 0 || VocabSize <= 0 || MaxSeqLen <= 0 || ExpansionRatio <= 0)
            throw new ArgumentException($"invalid MPT config: d_model {DModel}, n_heads {NHeads}, n_layers {NLayers}, vocab_size {VocabSize}");
        if (DModel % NHeads != 0) throw new ArgumentException($"d_model {DModel} is not divisible by n_heads {NHeads}");
        if (AttnConfig.ClipQkv is not null)
            throw new NotSupportedException($"MPT with clip_qkv ({AttnConfig.ClipQkv}) is not supported (mpt-7b and mpt-1b do not use it)");
        if (AttnConfig.SoftmaxScale is double s && Math.Abs(s - 1 / Math.Sqrt(DModel / NHeads)) > 1e-12)
            throw new NotSupportedException($"MPT softmax_scale {s} other than 1/sqrt(head_dim) is not supported");
    }

    public PreNormLayerOptions LayerOptions() => new()
    {
        Hidden = DModel,
        Heads = NHeads,
        MlpDim = ExpansionRatio * DModel,
        Activation = Activation.GeluErf,
        LayerNormEps = LayerNormEpsilon,
        Bias = !NoBias,
        LayerNormBias = !NoBias,
        AttentionDropout = AttnConfig.AttnPdrop,
        ResidualDropout = ResidPdrop,
        QueryKeyNorm = AttnConfig.QkLn,
        Names = Mpt,
    };

    /// <summary>llm-foundry MPTBlock names: norm_1, attn.Wqkv, attn.out_proj, norm_2, ffn.up_proj, ffn.down_proj.</summary>
    public static PreNormLayerNames Mpt { get; } = new()
    {
        Norm1 = "norm_1", Norm2 = "norm_2", Mlp = "ffn", MlpIn = "up_proj", MlpOut = "down_proj",
        AttentionNames = new ModelZoo.Attention.AttentionNames { QueryKeyValue = "Wqkv", Output = "out_proj" },
        Layout = ModelZoo.Attention.ProjectionLayout.FusedQkv,
    };

    /// <summary>
    /// mosaicml/mpt-1b-redpajama-200b (anas-awadalla's copy is OpenFlamingo-3B's decoder): mosaic_gpt config d_model 2048,
    /// n_heads 16, n_layers 24, mlp_ratio 4, max_seq_len 2048, vocab_size 50432, alibi, attn_qk_ln, no_bias.
    /// </summary>
    public static MptConfig Mpt1B { get; } = new()
    {
        DModel = 2048, NHeads = 16, NLayers = 24, VocabSize = 50432, MaxSeqLen = 2048, AttnConfig = new MptAttentionConfig { QkLn = true },
    };

    /// <summary>mosaicml/mpt-7b.</summary>
    public static MptConfig Mpt7B { get; } = new() { DModel = 4096, NHeads = 32, NLayers = 32, VocabSize = 50432, MaxSeqLen = 2048 };
}
