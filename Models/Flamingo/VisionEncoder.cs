using ModelZoo.Attention.Layers;
using TorchSharp;
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
    /// <summary>Width of the pooled CLIP embedding (proj); 0 = no projection.</summary>
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
/// A CLIP vision transformer in OpenAI / open_clip names (conv1, class_embedding, positional_embedding, ln_pre,
/// transformer.resblocks.N, ln_post, proj), built from the shared pre-norm layer. Small enough for tests as
/// flamingo-tiny's tower; the same layout as OpenFlamingo's vision_encoder.*.
/// </summary>
public sealed class VisionTransformer : nn.Module, IVisionEncoder
{
    protected override void RegisterComponents() { }

    readonly Conv2d conv1;
    // Parameter fields carry their state-dict names: Module.to() replaces them by name.
    Parameter class_embedding, positional_embedding;
    Parameter? proj;
    readonly LayerNorm lnPre, lnPost;
    readonly ModuleList<PreNormTransformerLayer> resblocks;

    public VisionTransformerConfig Config { get; }

    public VisionTransformer(VisionTransformerConfig config) : base("vision_encoder")
    {
        if (config.ImageSize <= 0 || config.PatchSize <= 0 || config.ImageSize % config.PatchSize != 0)
            throw new ArgumentException($"image_size {config.ImageSize} must be a positive multiple of patch_size {config.PatchSize}");
        Config = config;
        int width = config.Width;
        double scale = Math.Pow(width, -0.5);
        conv1 = nn.Conv2d(3, width, config.PatchSize, stride: config.PatchSize, bias: false);
        class_embedding = new Parameter(randn(width) * scale);
        positional_embedding = new Parameter(randn(config.GridSize * config.GridSize + 1, width) * scale);
        lnPre = nn.LayerNorm(width);
        var layer = new PreNormLayerOptions
        {
            Hidden = width, Heads = config.ResolvedHeads, MlpDim = (int)(width * config.MlpRatio),
            Activation = config.QuickGelu ? Activation.QuickGelu : Activation.GeluErf, Names = PreNormLayerNames.Clip,
        };
        resblocks = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(_ => new PreNormTransformerLayer(layer)).ToArray());
        lnPost = nn.LayerNorm(width);
        register_module("conv1", conv1);
        register_parameter("class_embedding", class_embedding);
        register_parameter("positional_embedding", positional_embedding);
        register_module("ln_pre", lnPre);
        var transformer = new TransformerBlocks(resblocks);
        register_module("transformer", transformer);
        register_module("ln_post", lnPost);
        if (config.OutputDim > 0)
        {
            proj = new Parameter(randn(width, config.OutputDim) * scale);
            register_parameter("proj", proj);
        }
    }

    public nn.Module Module => this;
    public int Width => Config.Width;
    public int ImageSize => Config.ImageSize;

    /// <summary>images [N, 3, S, S] → every token after the transformer [N, 1 + patches, width] (class token first).</summary>
    public Tensor Tokens(Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] != 3 || images.shape[2] != Config.ImageSize || images.shape[3] != Config.ImageSize)
            throw new ArgumentException($"images must be [N, 3, {Config.ImageSize}, {Config.ImageSize}], got [{string.Join(", ", images.shape)}]");
        long n = images.shape[0];
        var x = conv1.forward(images);                                   // [N, W, g, g]
        x = x.reshape(n, Config.Width, -1).permute(0, 2, 1);             // [N, g·g, W]
        var cls = class_embedding.to(x.dtype).expand(n, 1, Config.Width);
        x = cat(new[] { cls, x }, 1) + positional_embedding.to(x.dtype);
        x = lnPre.forward(x);
        foreach (var block in resblocks) x = block.forward(x);
        return x;
    }

    public Tensor PatchFeatures(Tensor images)
    {
        var x = Tokens(images);
        if (Config.TokensAfterLnPost) x = lnPost.forward(x);
        return x.narrow(1, 1, x.shape[1] - 1);
    }

    /// <summary>The CLIP image embedding: ln_post(class token) @ proj.</summary>
    public Tensor Pooled(Tensor images)
    {
        var pooled = lnPost.forward(Tokens(images).select(1, 0));
        return proj is null ? pooled : pooled.matmul(proj);
    }

    /// <summary>Holds the blocks under "resblocks" (transformer.resblocks.N).</summary>
    sealed class TransformerBlocks : nn.Module
    {
        protected override void RegisterComponents() { }
        public TransformerBlocks(ModuleList<PreNormTransformerLayer> blocks) : base("transformer") => register_module("resblocks", blocks);
    }
}
