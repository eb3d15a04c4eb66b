using ModelZoo.Attention.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Clip;

/// <summary>
/// CLIP's ViT image tower (openai/CLIP VisionTransformer): patch convolution without bias, class embedding,
/// positional embedding, ln_pre, transformer, ln_post on the class token, then the projection <c>proj</c>.
/// </summary>
public sealed class ClipVisionTransformer : nn.Module, IClipImageTower
{
    // Registered explicitly; parameter fields carry their checkpoint names so Module.to() can update them.
    protected override void RegisterComponents() { }

    readonly Conv2d conv1;
    Parameter class_embedding;
    Parameter positional_embedding;
    readonly LayerNorm ln_pre;
    readonly ClipTransformer transformer;
    readonly LayerNorm ln_post;
    Parameter proj;

    public int InputResolution { get; }
    public int PatchSize { get; }
    public int Width { get; }
    public int OutputDim { get; }

    public ClipVisionTransformer(int inputResolution, int patchSize, int width, int layers, int heads, int outputDim, PreNormLayerOptions layerOptions)
        : base("visual")
    {
        (InputResolution, PatchSize, Width, OutputDim) = (inputResolution, patchSize, width, outputDim);
        double scale = Math.Pow(width, -0.5);
        int grid = inputResolution / patchSize;
        conv1 = nn.Conv2d(3, width, patchSize, stride: patchSize, bias: false);
        class_embedding = new Parameter(randn(width) * scale);
        positional_embedding = new Parameter(randn(grid * grid + 1, width) * scale);
        ln_pre = nn.LayerNorm(width, layerOptions.LayerNormEps);
        transformer = new ClipTransformer(layers, layerOptions with { Hidden = width, Heads = heads });
        ln_post = nn.LayerNorm(width, layerOptions.LayerNormEps);
        proj = new Parameter(randn(width, outputDim) * scale);
        register_module("conv1", conv1);
        register_parameter("class_embedding", class_embedding);
        register_parameter("positional_embedding", positional_embedding);
        register_module("ln_pre", ln_pre);
        register_module("transformer", transformer);
        register_module("ln_post", ln_post);
        register_parameter("proj", proj);
    }

    public ClipTransformer Transformer => transformer;

    /// <summary>image [B, 3, R, R] → tokens [B, 1 + grid², width] after ln_pre (class token first).</summary>
    public Tensor Embed(Tensor image)
    {
        if (image.dim() != 4 || image.shape[1] != 3)
            throw new ArgumentException($"CLIP ViT expects images [batch, 3, {InputResolution}, {InputResolution}], got [{string.Join(", ", image.shape)}]");
        if (image.shape[2] != InputResolution || image.shape[3] != InputResolution)
            throw new ArgumentException($"CLIP ViT was built for {InputResolution}x{InputResolution} images (its positional embedding has {positional_embedding.shape[0]} rows), got {image.shape[2]}x{image.shape[3]}");
        var patches = conv1.forward(image.to(conv1.weight!.dtype)); // [B, W, g, g]
        patches = patches.flatten(2).transpose(1, 2);                // [B, g², W]
        var cls = class_embedding.to(patches.dtype).expand(patches.shape[0], 1, Width);
        var tokens = cat(new[] { cls, patches }, 1) + positional_embedding.to(patches.dtype);
        return ln_pre.forward(tokens);
    }

    public ClipImageOutput Encode(Tensor image)
    {
        var tokens = Embed(image);
        var hidden = transformer.forward(tokens);
        var last = hidden.Count > 0 ? hidden[^1] : tokens;
        var pooled = ln_post.forward(last.select(1, 0));
        return new ClipImageOutput(matmul(pooled, proj), hidden, Array.Empty<Tensor>(), tokens);
    }
}
