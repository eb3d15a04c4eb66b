using ModelZoo.Processing.Images;
using NUnit.Framework;
using SkiaSharp;

namespace ModelZoo.Tests.Processing;

public class ResamplingTests
{
    [Test]
    public void BicubicUpscaleOfATwoPixelRowFollowsPilsArithmetic()
    {
        // Worked by hand from Resample.c: scale 0.5, support 2; output 1 has taps 0.8671875 and 0.2265625 at
        // inputs 0 and 1, normalised to 0.79286 / 0.20714: 255 * 0.20714 = 52.8 -> 53; output 0 goes negative -> 0.
        var row = new RgbImage(2, 1, [0, 0, 0, 255, 255, 255]);
        var up = PilResampler.Resize(row, 4, 1);
        Assert.That(Enumerable.Range(0, 4).Select(x => up[x, 0].R), Is.EqualTo(new byte[] { 0, 53, 202, 255 }));
    }

    [Test]
    public void ConstantImagesStayConstantAndSameSizeIsACopy()
    {
        var gray = TestImages.Constant(37, 23, 200, 100, 7);
        foreach (var (w, h) in new[] { (11, 5), (80, 61), (37, 9), (5, 23) })
            Assert.That(PilResampler.Resize(gray, w, h).Pixels, Is.All.AnyOf((byte)200, (byte)100, (byte)7), $"{w}x{h}");
        var image = TestImages.Synthetic(30, 20);
        Assert.That(PilResampler.Resize(image, 30, 20).Pixels, Is.EqualTo(image.Pixels));
    }

    [TestCase(640, 480, 224, 168)]
    [TestCase(333, 500, 224, 336)]
    [TestCase(100, 80, 256, 204)]
    [TestCase(640, 480, 640, 200)]
    public void AgreesWithAFloatingPointFormulationOfTheSameFilter(int inW, int inH, int outW, int outH)
    {
        // An independent double-precision separable filter (PIL's bicubic, support widened by the downscale factor,
        // normalised weights, each pass rounded to 8 bits): PIL's 22-bit fixed point may differ by 1 on rare ties.
        var image = TestImages.Synthetic(inW, inH, seed: 3);
        var pil = PilResampler.Resize(image, outW, outH);
        var reference = FloatReference(image, outW, outH);
        int differing = 0;
        for (int i = 0; i < pil.Pixels.Length; i++)
        {
            int d = Math.Abs(pil.Pixels[i] - reference[i]);
            Assert.That(d, Is.LessThanOrEqualTo(1), $"byte {i}");
            if (d > 0) differing++;
        }
        Assert.That(differing, Is.LessThan(pil.Pixels.Length / 200 + 1));
    }

    static byte[] FloatReference(RgbImage image, int outW, int outH)
    {
        static double Cubic(double x)
        {
            x = Math.Abs(x);
            return x < 1 ? 1.5 * x * x * x - 2.5 * x * x + 1 : x < 2 ? -0.5 * x * x * x + 2.5 * x * x - 4 * x + 2 : 0;
        }
        static (int First, double[] Weights)[] Taps(int inSize, int outSize)
        {
            double scale = (double)inSize / outSize, widen = Math.Max(1, scale), support = 2 * widen;
            var taps = new (int, double[])[outSize];
            for (int o = 0; o < outSize; o++)
            {
                double center = (o + 0.5) * scale;
                int first = Math.Max(0, (int)Math.Floor(center - support + 0.5));
                int last = Math.Min(inSize, (int)Math.Floor(center + support + 0.5));
                var w = Enumerable.Range(first, last - first).Select(i => Cubic((i + 0.5 - center) / widen)).ToArray();
                double sum = w.Sum();
                taps[o] = (first, w.Select(x => x / sum).ToArray());
            }
            return taps;
        }
        static byte Round(double v) => (byte)Math.Clamp((int)Math.Floor(v + 0.5), 0, 255);

        var horizontal = Taps(image.Width, outW);
        var mid = new byte[outW * image.Height * 3];
        for (int y = 0; y < image.Height; y++)
        for (int x = 0; x < outW; x++)
        for (int c = 0; c < 3; c++)
        {
            double s = 0;
            var (first, w) = horizontal[x];
            for (int k = 0; k < w.Length; k++) s += image.Pixels[(y * image.Width + first + k) * 3 + c] * w[k];
            mid[(y * outW + x) * 3 + c] = Round(s);
        }
        if (outH == image.Height) return mid;
        var vertical = Taps(image.Height, outH);
        var output = new byte[outW * outH * 3];
        for (int y = 0; y < outH; y++)
        for (int x = 0; x < outW; x++)
        for (int c = 0; c < 3; c++)
        {
            double s = 0;
            var (first, w) = vertical[y];
            for (int k = 0; k < w.Length; k++) s += mid[((first + k) * outW + x) * 3 + c] * w[k];
            output[(y * outW + x) * 3 + c] = Round(s);
        }
        return output;
    }

    static double Mad(RgbImage a, RgbImage b) => a.Pixels.Zip(b.Pixels, (x, y) => (double)Math.Abs(x - y)).Average();

    [Test]
    public void SkiaBicubicAgainstPilBicubicIsMeasured()
    {
        // Mean absolute difference (0..255) between Skia's samplers and PIL's bicubic on generated images, for the
        // resizes CLIP (shorter side to 224) and ViLT (shorter side to 384) do. The numbers are in docs/processing.md.
        var cases = new (string Name, int W, int H, int OutW, int OutH)[]
        {
            ("upscale 2.24x (150x100 -> 336x224)", 150, 100, 336, 224),
            ("downscale 2.14x (640x480 -> 298x224)", 640, 480, 298, 224),
            ("downscale 1.95x (1000x750 -> 512x384)", 1000, 750, 512, 384),
            ("downscale 8.9x (2000x2000 -> 224x224)", 2000, 2000, 224, 224),
        };
        var samplers = new (string Name, SKSamplingOptions Options)[]
        {
            ("Skia Catmull-Rom", new SKSamplingOptions(SKCubicResampler.CatmullRom)),
            ("Skia Mitchell", new SKSamplingOptions(SKCubicResampler.Mitchell)),
            ("Skia linear+mipmaps", new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear)),
        };
        var results = new Dictionary<(string, string), double>();
        foreach (var c in cases)
        foreach (int noise in new[] { 12, 0 })
        {
            var image = TestImages.Synthetic(c.W, c.H, seed: 7, noise: noise);
            var pil = PilResampler.Resize(image, c.OutW, c.OutH);
            foreach (var s in samplers)
            {
                double mad = Mad(pil, SkiaResampler.Resize(image, c.OutW, c.OutH, s.Options));
                if (noise > 0) results[(c.Name, s.Name)] = mad;
                TestContext.Out.WriteLine($"{c.Name,-40} {(noise > 0 ? "noisy" : "smooth"),-7} {s.Name,-20} MAD {mad:F2}");
            }
            var production = ClipImageProcessor.Resize(image, c.OutW, c.OutH, ImageResampler.Skia);
            TestContext.Out.WriteLine($"{c.Name,-40} {(noise > 0 ? "noisy" : "smooth"),-7} {"ImageResampler.Skia",-20} MAD {Mad(pil, production):F2}");
        }
        // Same cubic when enlarging: only rounding and phase remain.
        Assert.That(results[(cases[0].Name, "Skia Catmull-Rom")], Is.LessThan(1.0));
        // Shrinking: Skia samples the cubic at 4x4 taps where PIL widens it, so the difference grows with the factor.
        Assert.That(results[(cases[3].Name, "Skia Catmull-Rom")], Is.GreaterThan(results[(cases[1].Name, "Skia Catmull-Rom")]));
        Assert.That(results.Values, Is.All.LessThan(40));
    }
}
