using ModelZoo.Attention.Layers;
using TorchSharp;
using ModelZoo.Models.Clip;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Flamingo;

/// <summary>
/// The image tower Flamingo reads: images → patch features. OpenFlamingo uses open_clip's visual tower with
/// output_tokens=True and takes its second output (the patch tokens after the class token). Any CLIP-style vision
/// transformer can stand behind this interface.
/// </summary>
public interface IVisionEncoder
{
    nn.Module Module { get; }
    /// <summary>Width of the patch features (the perceiver's dim).</summary>
    int Width { get; }
    /// <summary>Side of the square input images, in pixels.</summary>
    int ImageSize { get; }
    /// <summary>images [N, 3, H, W] (normalised) → patch features [N, patches, Width].</summary>
    Tensor PatchFeatures(Tensor images);
}

/// <summary>open_clip / OpenAI CLIP vision transformer shape (vision_cfg).</summary>
public sealed record VisionTransformerConfig
{
    public int ImageSize { get; init; } = 224;
    public int PatchSize { get; init; } = 14;
    public int Width { get; init; } = 1024;
    public int Layers { get; init; } = 24;
    /// <summary>null = width / 64 (open_clip head_width 64).</summary>
    public int? Heads { get; init; }
    public double MlpRatio { get; init; } = 4.0;
    /// <summary>Width of the pooled CLIP embedding (proj).</summary>
    public int OutputDim { get; init; } = 768;
    /// <summary>x·sigmoid(1.702x) (OpenAI weights) instead of erf GELU.</summary>
    public bool QuickGelu { get; init; } = true;
    /// <summary>
    /// Apply ln_post to the patch tokens. open_clip before 2.23 (what OpenFlamingo was trained with) returns them
    /// without ln_post; later versions normalise them. Default false.
    /// </summary>
    public bool TokensAfterLnPost { get; init; }

    public int ResolvedHeads => Heads ?? Math.Max(1, Width / 64);
    public int GridSize => ImageSize / PatchSize;
}

/// <summary>
/// The CLIP family's ViT image tower (OpenAI / open_clip names: conv1, class_embedding, positional_embedding, ln_pre,
/// transformer.resblocks.N, ln_post, proj) as Flamingo's vision encoder: the same layout as OpenFlamingo's
/// vision_encoder.*. Flamingo reads the patch tokens after the last block, without the class token.
/// </summary>
public sealed class ClipVisionEncoder : IVisionEncoder
{
    public ClipVisionTransformer Tower { get; }
    public VisionTransformerConfig Config { get; }

    public ClipVisionEncoder(VisionTransformerConfig config)
    {
        if (config.ImageSize <= 0 || config.PatchSize <= 0 || config.ImageSize % config.PatchSize != 0)
            throw new ArgumentException($"image_size {config.ImageSize} must be a positive multiple of patch_size {config.PatchSize}");
        if (config.OutputDim <= 0) throw new ArgumentException($"output_dim must be positive, got {config.OutputDim}");
        Config = config;
        var layer = new PreNormLayerOptions
        {
            Hidden = config.Width, Heads = config.ResolvedHeads, MlpDim = (int)(config.Width * config.MlpRatio),
            Activation = config.QuickGelu ? Activation.QuickGelu : Activation.GeluErf, Names = PreNormLayerNames.Clip,
        };
        Tower = new ClipVisionTransformer(config.ImageSize, config.PatchSize, config.Width, config.Layers, config.ResolvedHeads, config.OutputDim, layer);
    }

    public nn.Module Module => Tower;
    public int Width => Config.Width;
    public int ImageSize => Config.ImageSize;

    public Tensor PatchFeatures(Tensor images)
    {
        var tokens = Tower.Embed(images);
        var hidden = Tower.Transformer.forward(tokens);
        var last = hidden.Count > 0 ? hidden[^1] : tokens;
        if (Config.TokensAfterLnPost)
        {
            var lnPost = (LayerNorm)Tower.named_children().First(c => c.name == "ln_post").module;
            last = lnPost.forward(last);
        }
        return last.narrow(1, 1, last.shape[1] - 1);
    }
}
