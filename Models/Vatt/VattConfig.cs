using System.Text.Json.Serialization;
using ModelZoo.Attention;
using ModelZoo.Attention.Layers;

namespace ModelZoo.Models.Vatt;

/// <summary>Size of one VATT transformer (google-research vatt configs: d_model, d_kv, d_ff, num_layers, num_heads).</summary>
public sealed record VattTransformerConfig
{
    public int DModel { get; init; } = 768;
    public int DKv { get; init; } = 64;
    public int DFf { get; init; } = 3072;
    public int NumLayers { get; init; } = 12;
    public int NumHeads { get; init; } = 12;
    /// <summary>T5 text transformer of VATT-MS only: relative position buckets (half per direction) of its attention bias.</summary>
    public int NumRelativeBuckets { get; init; } = 32;
    /// <summary>T5 text transformer of VATT-MS only: distance beyond which relative positions share the last bucket.</summary>
    public int MaxRelativeDistance { get; init; } = 64;

    public static VattTransformerConfig Base { get; } = new();
    public static VattTransformerConfig Medium { get; } = new() { DModel = 1024, DFf = 4096, NumLayers = 12, NumHeads = 16 };
    public static VattTransformerConfig Large { get; } = new() { DModel = 1024, DFf = 4096, NumLayers = 24, NumHeads = 16 };
    /// <summary>The text transformer of VATT-MS: the repo's t5_small (512 wide, 6 layers, 8 heads of 64, MLP 2048, 32 relative buckets up to distance 64).</summary>
    public static VattTransformerConfig Small { get; } = new() { DModel = 512, DFf = 2048, NumLayers = 6, NumHeads = 8 };

    /// <param name="t5">The T5 text transformer, whose attention may be wider or narrower than d_model (heads x d_kv).</param>
    internal void Validate(string what, bool t5 = false)
    {
        if (DModel <= 0 || DKv <= 0 || DFf <= 0 || NumLayers < 0 || NumHeads <= 0)
            throw new ArgumentException($"VATT config: {what} sizes must be positive ({DModel}/{DKv}/{DFf}/{NumLayers}/{NumHeads})");
        if (!t5 && DKv * NumHeads != DModel)
            throw new ArgumentException($"VATT config: {what} d_kv {DKv} x num_heads {NumHeads} must equal d_model {DModel}");
        if (t5 && (NumRelativeBuckets < 4 || MaxRelativeDistance <= NumRelativeBuckets / 4))
            throw new ArgumentException($"VATT config: {what} needs at least 4 relative buckets and max_relative_distance above a quarter of them ({NumRelativeBuckets}, {MaxRelativeDistance})");
    }
}

/// <summary>Which backbone: separate video/audio/text transformers, or one transformer shared by all three.</summary>
public enum VattBackbone
{
    /// <summary>VATT-MS: one transformer per modality.</summary>
    ModalitySpecific,
    /// <summary>VATT-MA: one transformer behind three modality tokenizers (the repo's "unified" UniversalVATT).</summary>
    ModalityAgnostic,
}

/// <summary>
/// VATT (Akbari et al. 2021) with field names after the google-research vatt configs. Video: voxel patches of
/// temporal_patch × spatial_patch² RGB pixels; audio: raw waveform patches; text: word embeddings (a frozen 300-d
/// word2vec table in the paper) projected to the model width. DropToken keeps a random subset of the video and audio
/// tokens in training. VATT-MS reads text with a T5-style transformer (the repo's t5_small); VATT-MA with the shared
/// one. The common spaces follow MMV's fine-and-coarse design.
/// </summary>
public sealed record VattConfig
{
    [JsonConverter(typeof(JsonStringEnumConverter))]
    public VattBackbone Backbone { get; init; } = VattBackbone.ModalitySpecific;
    /// <summary>VATT-MS transformers (ignored by VATT-MA).</summary>
    public VattTransformerConfig Video { get; init; } = VattTransformerConfig.Base;
    public VattTransformerConfig Audio { get; init; } = VattTransformerConfig.Base;
    public VattTransformerConfig Text { get; init; } = VattTransformerConfig.Small;
    /// <summary>The VATT-MA transformer (ignored by VATT-MS).</summary>
    public VattTransformerConfig Unified { get; init; } = VattTransformerConfig.Medium;

    public int VidTemporalPatchSize { get; init; } = 4;
    public int VidSpatialPatchSize { get; init; } = 16;
    public int AudTemporalPatchSize { get; init; } = 128;
    public int MaxVidTemporalBuckets { get; init; } = 8;   // 32 frames / 4
    public int MaxVidSpatialBuckets { get; init; } = 14;   // 224 / 16
    public int MaxAudTemporalBuckets { get; init; } = 1200; // 3.2 s at 48 kHz / 128
    /// <summary>VATT-MA text positions (VATT-MS text has no absolute positions: its T5 attention bias is relative).</summary>
    public int MaxTxtTemporalBuckets { get; init; } = 16;
    public int TxtVocabSize { get; init; } = 1 << 16;
    public int TxtEmbeddingDim { get; init; } = 300;
    /// <summary>false (the paper): the word table is frozen (supply word2vec vectors with LoadWordEmbeddings).</summary>
    public bool TxtEmbeddingTrainable { get; init; }

    /// <summary>DropToken: the fraction of video and audio tokens dropped in training (0.5 in the paper).</summary>
    public double DropTokenRate { get; init; } = 0.5;
    public double DropoutRate { get; init; } = 0.1;
    public double LayerNormEpsilon { get; init; } = 1e-6;
    /// <summary>VATT-MA: width of each modality's post-transformer projection (Dense + GELU).</summary>
    public int DPostProj { get; init; } = 1024;

    /// <summary>MMV fine-and-coarse spaces: video and audio meet at this width...</summary>
    public int VideoAudioDim { get; init; } = 512;
    /// <summary>...and text meets (video, audio) at this one.</summary>
    public int VideoAudioTextDim { get; init; } = 256;
    /// <summary>Temperature of NCE and MIL-NCE.</summary>
    public double Temperature { get; init; } = 0.07;

    public void Validate()
    {
        if (Backbone == VattBackbone.ModalitySpecific) { Video.Validate("video"); Audio.Validate("audio"); Text.Validate("text", t5: true); }
        else Unified.Validate("unified");
        if (VidTemporalPatchSize <= 0 || VidSpatialPatchSize <= 0 || AudTemporalPatchSize <= 0)
            throw new ArgumentException("VATT config: patch sizes must be positive");
        if (MaxVidTemporalBuckets <= 0 || MaxVidSpatialBuckets <= 0 || MaxAudTemporalBuckets <= 0 || MaxTxtTemporalBuckets <= 0)
            throw new ArgumentException("VATT config: position bucket counts must be positive");
        if (DropTokenRate < 0 || DropTokenRate >= 1) throw new ArgumentException($"VATT config: drop_token_rate must be in [0, 1), got {DropTokenRate}");
        if (TxtVocabSize <= 0 || TxtEmbeddingDim <= 0) throw new ArgumentException("VATT config: the word table needs a positive size");
    }

    internal PreNormLayerOptions LayerOptions(VattTransformerConfig t) => new()
    {
        Hidden = t.DModel,
        Heads = t.NumHeads,
        MlpDim = t.DFf,
        Activation = Activation.GeluErf,
        LayerNormEps = LayerNormEpsilon,
        AttentionDropout = DropoutRate,
        ResidualDropout = DropoutRate,
        Names = LayerNames,
    };

    /// <summary>Our own state-dict names inside a VATT layer (the TF checkpoints do not load directly).</summary>
    internal static PreNormLayerNames LayerNames { get; } = new()
    {
        Norm1 = "attention_norm", Attention = "attention", Norm2 = "mlp_norm", Mlp = "mlp", MlpIn = "wi", MlpOut = "wo",
        AttentionNames = new AttentionNames { Query = "q", Key = "k", Value = "v", Output = "o" },
        Layout = ProjectionLayout.Separate,
    };
}
