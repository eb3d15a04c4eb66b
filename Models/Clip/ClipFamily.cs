using ModelZoo.Models.Catalog;
using ModelZoo.Weights;

namespace ModelZoo.Models.Clip;

/// <summary>OpenAI CLIP at its published configurations (backbone only: both towers, projections and logit_scale).</summary>
public sealed class ClipFamily : ModelFamily
{
    public override string Name => "clip";

    public static ClipConfig VitB32 { get; } = new()
    {
        EmbedDim = 512, ImageResolution = 224, VisionLayers = new[] { 12 }, VisionWidth = 768, VisionPatchSize = 32,
        ContextLength = 77, VocabSize = 49408, TransformerWidth = 512, TransformerHeads = 8, TransformerLayers = 12,
    };
    public static ClipConfig VitB16 { get; } = VitB32 with { VisionPatchSize = 16 };
    public static ClipConfig VitL14 { get; } = VitB32 with
    {
        EmbedDim = 768, VisionLayers = new[] { 24 }, VisionWidth = 1024, VisionPatchSize = 14, TransformerWidth = 768, TransformerHeads = 12,
    };
    public static ClipConfig VitL14At336 { get; } = VitL14 with { ImageResolution = 336 };
    public static ClipConfig RN50 { get; } = VitB32 with
    {
        EmbedDim = 1024, VisionLayers = new[] { 3, 4, 6, 3 }, VisionWidth = 64, VisionPatchSize = null,
    };
    public static ClipConfig RN101 { get; } = RN50 with { EmbedDim = 512, VisionLayers = new[] { 3, 4, 23, 3 } };
    /// <summary>A small ViT CLIP with the real vocabulary and context, for tests and demos (random weights).</summary>
    public static ClipConfig Tiny { get; } = VitB32 with
    {
        EmbedDim = 64, ImageResolution = 32, VisionLayers = new[] { 2 }, VisionWidth = 128, VisionPatchSize = 8,
        TransformerWidth = 64, TransformerHeads = 2, TransformerLayers = 2,
    };

    const string Tokenizer = "clip-bpe (bpe_simple_vocab_16e6, context 77)";

    public override IEnumerable<ModelPreset> Presets
    {
        get
        {
            yield return Preset("clip-vit-b32", "CLIP ViT-B/32 (image 224, patch 32, 12x768; text 12x512; embed 512)", VitB32,
                "openai/CLIP release ViT-B-32.pt; Hugging Face openai/clip-vit-base-patch32");
            yield return Preset("clip-vit-b16", "CLIP ViT-B/16 (image 224, patch 16, 12x768; text 12x512; embed 512)", VitB16,
                "openai/CLIP release ViT-B-16.pt; Hugging Face openai/clip-vit-base-patch16");
            yield return Preset("clip-vit-l14", "CLIP ViT-L/14 (image 224, patch 14, 24x1024; text 12x768; embed 768)", VitL14,
                "openai/CLIP release ViT-L-14.pt; Hugging Face openai/clip-vit-large-patch14");
            yield return Preset("clip-vit-l14-336", "CLIP ViT-L/14@336px (image 336, patch 14, 24x1024; text 12x768; embed 768)", VitL14At336,
                "openai/CLIP release ViT-L-14-336px.pt; Hugging Face openai/clip-vit-large-patch14-336");
            yield return Preset("clip-rn50", "CLIP RN50 (ModifiedResNet [3,4,6,3], width 64, attention pool; text 12x512; embed 1024)", RN50,
                "openai/CLIP release RN50.pt");
            yield return Preset("clip-rn101", "CLIP RN101 (ModifiedResNet [3,4,23,3], width 64, attention pool; text 12x512; embed 512)", RN101,
                "openai/CLIP release RN101.pt");
            yield return Preset("clip-tiny", "Tiny CLIP ViT (image 32, patch 8, 2x128; text 2x64, real vocabulary; embed 64) for tests and demos", Tiny, null);
        }
    }

    static ModelPreset Preset(string name, string description, ClipConfig config, string? source) => new()
    {
        Name = name,
        Family = "clip",
        Description = description,
        Config = config,
        Build = () => new ClipModel(config),
        KeyMapFor = ClipKeyMaps.For,
        CheckpointFormats = config.IsResNet
            ? new[] { "openai/CLIP state_dict (visual.layer1.0.conv1.weight, transformer.resblocks.N.attn.in_proj_weight), safetensors or .pt", "openai/CLIP TorchScript release file (RN50.pt, ...)" }
            : new[]
            {
                "openai/CLIP state_dict (visual.transformer.resblocks.N.attn.in_proj_weight), safetensors or .pt",
                "openai/CLIP TorchScript release file (ViT-B-32.pt, ...)",
                "Hugging Face CLIPModel (vision_model.encoder.layers.N.self_attn.q_proj.weight), model.safetensors / pytorch_model.bin",
            },
        Tokenizer = Tokenizer,
        WeightsSource = source,
        // `convert --layout huggingface` writes CLIPModel's keys (ViT only: transformers has no ModifiedResNet CLIP).
        Layouts = config.IsResNet ? null : new Dictionary<string, KeyMap> { ["huggingface"] = ClipKeyMaps.HuggingFace },
    };
}
