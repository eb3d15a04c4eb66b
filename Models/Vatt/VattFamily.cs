using ModelZoo.Models.Catalog;

namespace ModelZoo.Models.Vatt;

/// <summary>
/// VATT at the published sizes (google-research vatt configs): VATT-MS with a Base / Medium / Large video
/// transformer, the Base waveform transformer and the t5_small text transformer (6 layers, 512 wide, relative
/// attention bias); VATT-MA-Medium with one shared Medium transformer. All include the frozen 65,536 x 300 word
/// table and the MMV common spaces. No weights are published in a format this library reads (the release is
/// TensorFlow checkpoints), so these are for training.
/// </summary>
public sealed class VattFamily : ModelFamily
{
    public override string Name => "vatt";

    public static VattConfig MsBase { get; } = new();
    public static VattConfig MsMedium { get; } = new() { Video = VattTransformerConfig.Medium };
    public static VattConfig MsLarge { get; } = new() { Video = VattTransformerConfig.Large };
    public static VattConfig MaMedium { get; } = new() { Backbone = VattBackbone.ModalityAgnostic, Unified = VattTransformerConfig.Medium };

    static readonly VattTransformerConfig TinyTransformer = new() { DModel = 64, DKv = 32, DFf = 128, NumLayers = 2, NumHeads = 2 };

    /// <summary>A small VATT-MS for tests and demos: 2x8x8 voxels, 32-sample audio patches, a 1,000-word table of 16-d vectors.</summary>
    public static VattConfig Tiny { get; } = new()
    {
        Video = TinyTransformer,
        Audio = TinyTransformer,
        Text = new VattTransformerConfig { DModel = 32, DKv = 16, DFf = 64, NumLayers = 2, NumHeads = 2 },
        VidTemporalPatchSize = 2, VidSpatialPatchSize = 8, AudTemporalPatchSize = 32,
        MaxVidTemporalBuckets = 4, MaxVidSpatialBuckets = 4, MaxAudTemporalBuckets = 64, MaxTxtTemporalBuckets = 16,
        TxtVocabSize = 1000, TxtEmbeddingDim = 16, VideoAudioDim = 32, VideoAudioTextDim = 16, DPostProj = 64,
    };

    public static VattConfig MaTiny { get; } = Tiny with { Backbone = VattBackbone.ModalityAgnostic, Unified = TinyTransformer };

    public override IEnumerable<ModelPreset> Presets
    {
        get
        {
            yield return Preset("vatt-ms-base", "VATT-MS Base: video 12x768, audio 12x768 (waveform), text T5 6x512; MMV common spaces 512/256", MsBase);
            yield return Preset("vatt-ms-medium", "VATT-MS Medium: video 12x1024, audio 12x768 (waveform), text T5 6x512; MMV common spaces 512/256", MsMedium);
            yield return Preset("vatt-ms-large", "VATT-MS Large: video 24x1024, audio 12x768 (waveform), text T5 6x512; MMV common spaces 512/256", MsLarge);
            yield return Preset("vatt-ma-medium", "VATT-MA Medium: one shared 12x1024 transformer for video, audio and text; MMV common spaces 512/256", MaMedium);
            yield return Preset("vatt-tiny", "Tiny VATT-MS (video/audio 2x64, T5 text 2x32) for tests and demos", Tiny);
            yield return Preset("vatt-ma-tiny", "Tiny VATT-MA (one shared 2x64 transformer) for tests and demos", MaTiny);
        }
    }

    static ModelPreset Preset(string name, string description, VattConfig config) => new()
    {
        Name = name,
        Family = "vatt",
        Description = description,
        Config = config,
        Build = () => new VattModel(config),
        CheckpointFormats = new[] { "safetensors in this library's layout (the reference's TensorFlow checkpoints are not read)" },
        Tokenizer = "word ids into a word2vec-style vocabulary (supply the table with LoadWordEmbeddings)",
        WeightsSource = "google-research/vatt (TensorFlow checkpoints; convert to this layout yourself)",
    };
}
