using ModelZoo.Models.Catalog;
using ModelZoo.Models.Clip;
using ModelZoo.Tests.Support;
using NUnit.Framework;

namespace ModelZoo.Tests.Clip;

public class ClipPresetTests
{
    /// <summary>A pre-norm CLIP block of width w: two LayerNorms, packed q/k/v with bias, out_proj, 4w MLP.</summary>
    static long Block(long w) => 2 * w + (3 * w * w + 3 * w) + (w * w + w) + 2 * w + (w * 4 * w + 4 * w) + (4 * w * w + w);

    static long BatchNorm(long c) => 2 * c; // weight and bias; running statistics are buffers

    static long Bottleneck(long inplanes, long planes, int stride)
    {
        long count = inplanes * planes + BatchNorm(planes) + 9 * planes * planes + BatchNorm(planes) + planes * 4 * planes + BatchNorm(4 * planes);
        if (stride > 1 || inplanes != 4 * planes) count += inplanes * 4 * planes + BatchNorm(4 * planes);
        return count;
    }

    /// <summary>Parameters of openai/CLIP's CLIP(...) worked out from its constructor arguments.</summary>
    public static long Parameters(ClipConfig c)
    {
        long text = (long)c.VocabSize * c.TransformerWidth + (long)c.ContextLength * c.TransformerWidth
                    + c.TransformerLayers * Block(c.TransformerWidth) + 2L * c.TransformerWidth + (long)c.TransformerWidth * c.EmbedDim + 1;
        long vision;
        if (!c.IsResNet)
        {
            long w = c.VisionWidth, p = c.VisionPatchSize!.Value, grid = c.ImageResolution / p;
            vision = 3 * w * p * p + w + (grid * grid + 1) * w + 2 * w + c.VisionLayers[0] * Block(w) + 2 * w + w * c.EmbedDim;
        }
        else
        {
            long w = c.VisionWidth, half = w / 2;
            vision = 3 * half * 9 + BatchNorm(half) + half * half * 9 + BatchNorm(half) + half * w * 9 + BatchNorm(w);
            long inplanes = w;
            for (int stage = 0; stage < 4; stage++)
            {
                long planes = w << stage;
                for (int b = 0; b < c.VisionLayers[stage]; b++)
                {
                    vision += Bottleneck(inplanes, planes, b == 0 && stage > 0 ? 2 : 1);
                    inplanes = 4 * planes;
                }
            }
            long d = 32 * w, spatial = c.ImageResolution / 32;
            vision += (spatial * spatial + 1) * d + 3 * (d * d + d) + d * c.EmbedDim + c.EmbedDim;
        }
        return text + vision;
    }

    [Test]
    public void PublishedSizes()
    {
        Assert.That(Parameters(ClipFamily.VitB32), Is.EqualTo(151_277_313L), "ViT-B/32 as published");
        Assert.That(Parameters(ClipFamily.VitB16), Is.EqualTo(149_620_737L), "ViT-B/16 as published");
        Assert.That(Parameters(ClipFamily.VitL14), Is.EqualTo(427_616_513L), "ViT-L/14 as published");
        Assert.That(Parameters(ClipFamily.RN50), Is.EqualTo(102_007_137L), "RN50 as published");
    }

    [TestCase("clip-vit-b32")]
    [TestCase("clip-vit-b16")]
    [TestCase("clip-vit-l14")]
    [TestCase("clip-vit-l14-336")]
    [TestCase("clip-rn50")]
    [TestCase("clip-rn101")]
    [TestCase("clip-tiny")]
    public void PresetCountEqualsTheArithmeticOfItsConfig(string name)
    {
        var description = ModelCatalog.Default.Describe(name);
        Assert.That(description.Preset.Family, Is.EqualTo("clip"));
        Assert.That(description.Parameters, Is.EqualTo(Parameters((ClipConfig)description.Preset.Config)));
    }

    [Test]
    public void RealInstancesCountLikeTheArithmetic()
    {
        foreach (var config in new[] { ClipModelTests.SmallVit, ClipModelTests.SmallResNet })
        {
            using var model = new ClipModel(config);
            Assert.That(model.parameters().Sum(p => p.numel()), Is.EqualTo(Parameters(config)));
        }
    }

    // The counts docs/clip-vatt.md publishes, pinned.
    [TestCase("clip-vit-b32", 151_277_313L)]
    [TestCase("clip-vit-b16", 149_620_737L)]
    [TestCase("clip-vit-l14", 427_616_513L)]
    [TestCase("clip-vit-l14-336", 427_944_193L)]
    [TestCase("clip-rn50", 102_007_137L)]
    [TestCase("clip-rn101", 119_688_033L)]
    [TestCase("clip-tiny", 3_703_361L)]
    public void DocumentedPresetCounts(string name, long parameters) =>
        Assert.That(ModelCatalog.Default.Describe(name).Parameters, Is.EqualTo(parameters));

    [Test]
    public void InfoJsonCountsTheModelThatCreateReturns()
    {
        var (code, output, error) = CliRunner.Run("info", "clip-tiny", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = System.Text.Json.JsonDocument.Parse(output);
        using var model = ModelCatalog.Default.Create("clip-tiny");
        Assert.That(json.RootElement.GetProperty("parameters").GetInt64(), Is.EqualTo(model.parameters().Sum(p => p.numel())));
        Assert.That(json.RootElement.GetProperty("parameters").GetInt64(), Is.EqualTo(3_703_361L));
    }

    [Test]
    public void TinyPresetCreatesAndRuns()
    {
        using var model = ModelCatalog.Default.Create<ClipModel>("clip-tiny");
        using var _ = TorchSharp.torch.no_grad();
        var logits = model.forward(TorchSharp.torch.randn(1, 3, 32, 32), ClipModelTests.Text(2, model.Config));
        Assert.That(logits.LogitsPerImage.shape, Is.EqualTo(new long[] { 1, 2 }));
    }
}
