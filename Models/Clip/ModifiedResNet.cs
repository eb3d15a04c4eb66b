using ModelZoo.Attention;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Clip;

/// <summary>
/// CLIP's anti-aliased ResNet bottleneck: 1x1, 3x3, then average pooling by the stride before the final 1x1
/// (all convolutions stride 1), BatchNorm after each convolution, and a pooled 1x1 projection shortcut.
/// </summary>
public sealed class ClipBottleneck : nn.Module<Tensor, Tensor>
{
    public const int Expansion = 4;

    readonly Conv2d conv1, conv2, conv3;
    readonly BatchNorm2d bn1, bn2, bn3;
    readonly ClipDownsample? downsample;
    readonly int stride;

    public ClipBottleneck(int inplanes, int planes, int stride = 1) : base("bottleneck")
    {
        this.stride = stride;
        conv1 = nn.Conv2d(inplanes, planes, 1, bias: false);
        bn1 = nn.BatchNorm2d(planes);
        conv2 = nn.Conv2d(planes, planes, 3, padding: 1, bias: false);
        bn2 = nn.BatchNorm2d(planes);
        conv3 = nn.Conv2d(planes, planes * Expansion, 1, bias: false);
        bn3 = nn.BatchNorm2d(planes * Expansion);
        if (stride > 1 || inplanes != planes * Expansion) downsample = new ClipDownsample(inplanes, planes * Expansion, stride);
        RegisterComponents();
    }

    /// <summary>The last BatchNorm (CLIP initialises its weight to zero so each block starts as the identity).</summary>
    internal BatchNorm2d LastNorm => bn3;

    public override Tensor forward(Tensor x)
    {
        var output = nn.functional.relu(bn1.forward(conv1.forward(x)));
        output = nn.functional.relu(bn2.forward(conv2.forward(output)));
        if (stride > 1) output = nn.functional.avg_pool2d(output, stride);
        output = bn3.forward(conv3.forward(output));
        var identity = downsample is null ? x : downsample.forward(x);
        return nn.functional.relu(output + identity);
    }
}

/// <summary>
/// The shortcut projection: average pooling by the stride (the reference's unnamed "-1" entry, no weights), then a
/// 1x1 convolution "0" and BatchNorm "1", so the keys are downsample.0.* and downsample.1.*.
/// </summary>
public sealed class ClipDownsample : nn.Module<Tensor, Tensor>
{
    protected override void RegisterComponents() { }

    readonly Conv2d conv;
    readonly BatchNorm2d norm;
    readonly int stride;

    public ClipDownsample(int inplanes, int outplanes, int stride) : base("downsample")
    {
        this.stride = stride;
        conv = nn.Conv2d(inplanes, outplanes, 1, bias: false);
        norm = nn.BatchNorm2d(outplanes);
        register_module("0", conv);
        register_module("1", norm);
    }

    public override Tensor forward(Tensor x)
    {
        if (stride > 1) x = nn.functional.avg_pool2d(x, stride);
        return norm.forward(conv.forward(x));
    }
}

/// <summary>
/// CLIP's attention pooling: the mean of the spatial tokens is prepended, a learned positional embedding added, and
/// that mean token attends over all tokens (q/k/v projections, output c_proj). Uses the shared attention core.
/// </summary>
public sealed class ClipAttentionPool : nn.Module
{
    protected override void RegisterComponents() { }

    Parameter positional_embedding;
    readonly MultiHeadAttention attention;

    public int EmbedDim { get; }

    public ClipAttentionPool(int spatialDim, int embedDim, int heads, int outputDim) : base("attnpool")
    {
        EmbedDim = embedDim;
        positional_embedding = new Parameter(randn(spatialDim * spatialDim + 1, embedDim) / Math.Sqrt(embedDim));
        attention = new MultiHeadAttention(new MultiHeadAttentionOptions
        {
            QueryDim = embedDim,
            Heads = heads,
            OutputDim = outputDim,
            Layout = ProjectionLayout.Separate,
            Names = AttentionNames.HuggingFace with { Output = "c_proj" },
        });
        register_parameter("positional_embedding", positional_embedding);
        // The projections sit directly on this module: attnpool.q_proj.weight, ..., attnpool.c_proj.bias.
        foreach (var (name, module) in attention.Projections().ToList()) register_module(name, module);
    }

    public MultiHeadAttention Attention => attention;

    /// <summary>x [B, C, H, W] → [B, output_dim].</summary>
    public Tensor forward(Tensor x)
    {
        if (x.shape[2] * x.shape[3] + 1 != positional_embedding.shape[0])
            throw new ArgumentException($"the attention pool was built for {positional_embedding.shape[0] - 1} spatial positions, got {x.shape[2]}x{x.shape[3]}");
        var tokens = x.flatten(2).transpose(1, 2);                         // [B, HW, C]
        tokens = cat(new[] { tokens.mean(new long[] { 1 }, keepdim: true), tokens }, 1) + positional_embedding.to(tokens.dtype);
        return attention.forward(tokens.narrow(1, 0, 1), tokens).squeeze(1);
    }

    /// <summary>CLIP's initialisation: every projection normal with std = in_features^-0.5.</summary>
    internal void InitializeLikeClip()
    {
        double std = Math.Pow(EmbedDim, -0.5);
        using var _ = no_grad();
        foreach (var (name, parameter) in named_parameters())
            if (name.EndsWith(".weight", StringComparison.Ordinal)) nn.init.normal_(parameter, 0, std);
    }
}

/// <summary>
/// CLIP's ModifiedResNet image tower: a three-convolution stem (stride 2, then two stride-1 convolutions) with
/// BatchNorm and ReLU, 2x2 average pooling, four stages of anti-aliased bottlenecks, and attention pooling.
/// </summary>
public sealed class ClipModifiedResNet : nn.Module, IClipImageTower
{
    readonly Conv2d conv1, conv2, conv3;
    readonly BatchNorm2d bn1, bn2, bn3;
    readonly Sequential layer1, layer2, layer3, layer4;
    readonly ClipAttentionPool attnpool;

    public int InputResolution { get; }
    public int OutputDim { get; }

    public ClipModifiedResNet(IReadOnlyList<int> layers, int outputDim, int heads, int inputResolution = 224, int width = 64) : base("visual")
    {
        if (layers.Count != 4) throw new ArgumentException($"ModifiedResNet needs four stage depths, got {layers.Count}");
        (InputResolution, OutputDim) = (inputResolution, outputDim);
        conv1 = nn.Conv2d(3, width / 2, 3, stride: 2, padding: 1, bias: false);
        bn1 = nn.BatchNorm2d(width / 2);
        conv2 = nn.Conv2d(width / 2, width / 2, 3, padding: 1, bias: false);
        bn2 = nn.BatchNorm2d(width / 2);
        conv3 = nn.Conv2d(width / 2, width, 3, padding: 1, bias: false);
        bn3 = nn.BatchNorm2d(width);
        int inplanes = width;
        Sequential Stage(int planes, int blocks, int stride)
        {
            var list = new List<nn.Module<Tensor, Tensor>> { new ClipBottleneck(inplanes, planes, stride) };
            inplanes = planes * ClipBottleneck.Expansion;
            for (int i = 1; i < blocks; i++) list.Add(new ClipBottleneck(inplanes, planes));
            return nn.Sequential(list);
        }
        layer1 = Stage(width, layers[0], 1);
        layer2 = Stage(width * 2, layers[1], 2);
        layer3 = Stage(width * 4, layers[2], 2);
        layer4 = Stage(width * 8, layers[3], 2);
        attnpool = new ClipAttentionPool(inputResolution / 32, width * 32, heads, outputDim);
        RegisterComponents();
    }

    /// <summary>CLIP's initialisation: attention-pool projections scaled by width, the last BatchNorm of each block zero.</summary>
    public void InitializeLikeClip()
    {
        attnpool.InitializeLikeClip();
        using var _ = no_grad();
        foreach (var (_, module) in named_modules())
            if (module is ClipBottleneck block) nn.init.zeros_(block.LastNorm.weight!);
    }

    public ClipImageOutput Encode(Tensor image)
    {
        if (image.dim() != 4 || image.shape[1] != 3)
            throw new ArgumentException($"CLIP ResNet expects images [batch, 3, {InputResolution}, {InputResolution}], got [{string.Join(", ", image.shape)}]");
        if (image.shape[2] != InputResolution || image.shape[3] != InputResolution)
            throw new ArgumentException($"CLIP ResNet was built for {InputResolution}x{InputResolution} images (its attention pool has a fixed grid), got {image.shape[2]}x{image.shape[3]}");
        var x = image.to(conv1.weight!.dtype);
        x = nn.functional.relu(bn1.forward(conv1.forward(x)));
        x = nn.functional.relu(bn2.forward(conv2.forward(x)));
        x = nn.functional.relu(bn3.forward(conv3.forward(x)));
        x = nn.functional.avg_pool2d(x, 2);
        var stages = new List<Tensor>(4);
        foreach (var stage in new[] { layer1, layer2, layer3, layer4 })
        {
            x = stage.forward(x);
            stages.Add(x);
        }
        return new ClipImageOutput(attnpool.forward(x), Array.Empty<Tensor>(), stages);
    }
}
