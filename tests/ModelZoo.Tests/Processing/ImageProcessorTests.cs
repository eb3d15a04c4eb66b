using ModelZoo.Attention.Diagnostics;
using ModelZoo.Processing.Images;
using ModelZoo.Tests.Support;
using NUnit.Framework;
using SkiaSharp;
using TorchSharp;

namespace ModelZoo.Tests.Processing;

public class ImageProcessorTests
{
    [Test]
    public void ClipGivesNormalisedSquareTensors()
    {
        var clip = new ClipImageProcessor(224);
        using var pixels = clip.Process(TestImages.Constant(500, 300, 255, 128, 0));
        Assert.That(pixels.shape, Is.EqualTo(new long[] { 3, 224, 224 }));
        Assert.That(pixels.dtype, Is.EqualTo(torch.ScalarType.Float32));
        // A constant image stays constant: each channel is (value / 255 - mean) / std in float32.
        float[] expected = [(255f / 255f - 0.48145466f) / 0.26862954f, (128f / 255f - 0.4578275f) / 0.26130258f, (0f / 255f - 0.40821073f) / 0.27577711f];
        for (int c = 0; c < 3; c++)
        {
            Assert.That(pixels[c].min().item<float>(), Is.EqualTo(expected[c]));
            Assert.That(pixels[c].max().item<float>(), Is.EqualTo(expected[c]));
        }
    }

    [Test]
    public void ClipResizesTheShorterSideAndCropsTheCentreWithPythonRounding()
    {
        // Rows hold their own index, so the first kept row tells the crop offset. 224 x 227: no resize, top =
        // round(1.5) = 2; 224 x 225: top = round(0.5) = 0 (half to even, as Python's round).
        RgbImage Rows(int w, int h) => new(w, h, Enumerable.Range(0, w * h * 3).Select(i => (byte)(i / 3 / w)).ToArray());
        var clip = new ClipImageProcessor(224);
        Assert.That(clip.Prepare(Rows(224, 227))[0, 0].R, Is.EqualTo(2));
        Assert.That(clip.Prepare(Rows(224, 225))[0, 0].R, Is.EqualTo(0));
        Assert.That(clip.Prepare(Rows(224, 229))[0, 0].R, Is.EqualTo(2), "round(2.5) = 2");

        // 640 x 480 -> 298 x 224 (int(224 * 640 / 480) = 298), crop left = round(37.0) = 37.
        var image = TestImages.Synthetic(640, 480);
        var resized = PilResampler.Resize(image, 298, 224);
        var prepared = clip.Prepare(image);
        Assert.That((prepared.Width, prepared.Height), Is.EqualTo((224, 224)));
        Assert.That(prepared.Pixels, Is.EqualTo(resized.Crop(37, 0, 224, 224).Pixels));
    }

    [Test]
    public void ClipBatchStacksImages()
    {
        var clip = new ClipImageProcessor(32);
        using var batch = clip.Process([TestImages.Synthetic(64, 48), TestImages.Synthetic(30, 90)]);
        Assert.That(batch.Pixels.shape, Is.EqualTo(new long[] { 2, 3, 32, 32 }));
        Assert.That(batch.PixelMask, Is.Null);
    }

    [TestCase(640, 480, 512, 384)]   // 384 x 512 fits under 639
    [TestCase(480, 640, 384, 512)]
    [TestCase(384, 384, 384, 384)]
    [TestCase(1000, 1000, 384, 384)]
    [TestCase(2000, 500, 608, 160)]  // 1536 > 639: scale to 639 x 159.75 -> 639 x 160 -> 608 x 160
    [TestCase(500, 375, 512, 384)]   // 512 x 384
    [TestCase(333, 500, 384, 576)]   // 576.58 -> 577 -> 576
    public void ViltMinMaxResizeSizes(int width, int height, int expectedWidth, int expectedHeight)
    {
        var vilt = new ViltImageProcessor();
        Assert.That(vilt.Longer, Is.EqualTo(639));
        Assert.That(vilt.TargetSize(width, height), Is.EqualTo((expectedWidth, expectedHeight)));
    }

    [Test]
    public void ViltBatchesOfDifferentSizesArePaddedWithAPixelMask()
    {
        var vilt = new ViltImageProcessor(shorter: 64);   // longer = int(1333 / 800 * 64) = 106
        using var batch = vilt.Process([TestImages.Synthetic(128, 96), TestImages.Synthetic(90, 200)]);
        // 128 x 96 -> 85.3 x 64 -> 85 x 64 -> 64 x 64; 90 x 200 -> 64 x 142.2 -> over 106: 47.7 x 106 -> 48 x 106 -> 32 x 96.
        Assert.That(batch.Pixels.shape, Is.EqualTo(new long[] { 2, 3, 96, 64 }));
        Assert.That(batch.PixelMask!.shape, Is.EqualTo(new long[] { 2, 96, 64 }));
        Assert.That(batch.PixelMask[0].sum().item<long>(), Is.EqualTo(64 * 64));
        Assert.That(batch.PixelMask[1].sum().item<long>(), Is.EqualTo(32 * 96));
        Assert.That(batch.PixelMask[0, 64..].sum().item<long>(), Is.EqualTo(0), "padding rows of image 0");
        Assert.That(batch.Pixels[0, .., 64..].abs().max().item<float>(), Is.EqualTo(0f), "padding is 0");
        Assert.That(batch.Pixels[1, .., .., 32..].abs().max().item<float>(), Is.EqualTo(0f));
        Assert.That(batch.Pixels.max().item<float>(), Is.LessThanOrEqualTo(1f));
        Assert.That(batch.Pixels.min().item<float>(), Is.GreaterThanOrEqualTo(-1f));
        using var alone = vilt.Process(TestImages.Synthetic(90, 200));
        Assert.That(batch.Pixels[1, .., ..96, ..32].sub(alone).abs().max().item<float>(), Is.EqualTo(0f));
    }

    [Test]
    public void ProcessFilesDecodesAndNamesABadFile()
    {
        var dir = TestPaths.TempDirectory();
        try
        {
            var good = Path.Combine(dir, "a.png");
            File.WriteAllBytes(good, TestImages.Encode(TestImages.Synthetic(40, 30), SKEncodedImageFormat.Png));
            var bad = Path.Combine(dir, "b.jpg");
            File.WriteAllText(bad, "broken");
            using var batch = new ClipImageProcessor(16).ProcessFiles([good]);
            Assert.That(batch.Pixels.shape, Is.EqualTo(new long[] { 1, 3, 16, 16 }));
            var e = Assert.Throws<InvalidDataException>(() => new ViltImageProcessor().ProcessFiles([good, bad]));
            Assert.That(e!.Message, Does.Contain(bad));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void RepeatedProcessingDoesNotGrowMemory()
    {
        var clip = new ClipImageProcessor(64);
        var vilt = new ViltImageProcessor(shorter: 64);
        var images = new[] { TestImages.Synthetic(120, 90), TestImages.Synthetic(90, 140) };
        void Pass()
        {
            using var a = clip.Process(images);
            using var b = vilt.Process(images);
        }
        for (int i = 0; i < 20; i++) Pass();
        GC.Collect();
        long before = ProcessMemory.ResidentBytes();
        for (int i = 0; i < 150; i++) Pass();
        GC.Collect();
        long after = ProcessMemory.ResidentBytes();
        Assume.That(before, Is.GreaterThan(0), "no /proc here");
        Assert.That((after - before) / (double)before, Is.LessThan(0.05), $"RSS {before / 1e6:0.0} MB -> {after / 1e6:0.0} MB");
    }
}
