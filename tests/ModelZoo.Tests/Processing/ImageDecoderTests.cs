using ModelZoo.Processing.Images;
using ModelZoo.Tests.Support;
using NUnit.Framework;
using SkiaSharp;

namespace ModelZoo.Tests.Processing;

public class ImageDecoderTests
{
    string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, true);

    static double MeanAbsoluteDifference(RgbImage a, RgbImage b)
    {
        Assert.That((b.Width, b.Height), Is.EqualTo((a.Width, a.Height)));
        long sum = 0;
        for (int i = 0; i < a.Pixels.Length; i++) sum += Math.Abs(a.Pixels[i] - b.Pixels[i]);
        return (double)sum / a.Pixels.Length;
    }

    [TestCase(SKEncodedImageFormat.Png, 0.0)]
    [TestCase(SKEncodedImageFormat.Jpeg, 6.0)]  // lossy codecs on a noisy image: the loss is the encoder's
    [TestCase(SKEncodedImageFormat.Webp, 3.0)]
    public void DecodesEachFormatToRgb(SKEncodedImageFormat format, double tolerance)
    {
        var image = TestImages.Synthetic(61, 47);
        var path = Path.Combine(_dir, "image." + format.ToString().ToLowerInvariant());
        File.WriteAllBytes(path, TestImages.Encode(image, format, 100));
        var decoded = ImageDecoder.Load(path);
        Assert.That((decoded.Width, decoded.Height), Is.EqualTo((61, 47)));
        Assert.That(MeanAbsoluteDifference(image, decoded), Is.LessThanOrEqualTo(tolerance));
    }

    [Test]
    public void DecodesBmpExactly()
    {
        var image = TestImages.Synthetic(13, 7);
        var path = Path.Combine(_dir, "image.bmp");
        File.WriteAllBytes(path, TestImages.EncodeBmp(image));
        Assert.That(ImageDecoder.Load(path).Pixels, Is.EqualTo(image.Pixels));
    }

    [Test]
    public void AlphaIsDroppedWithoutBlending()
    {
        // RGBA PNG: an opaque, a half-transparent, a fully transparent and a nearly transparent pixel. PIL's
        // convert("RGB") keeps the stored colour of each (no blending with black or white, no premultiplication).
        byte[] rgba = [200, 100, 50, 255, 37, 201, 99, 128, 250, 3, 77, 0, 13, 17, 241, 1];
        var path = Path.Combine(_dir, "alpha.png");
        File.WriteAllBytes(path, TestImages.Png(4, 1, 6, rgba));
        var image = ImageDecoder.Load(path);
        Assert.That((image.Width, image.Height), Is.EqualTo((4, 1)));
        Assert.That(image.Pixels, Is.EqualTo(new byte[] { 200, 100, 50, 37, 201, 99, 250, 3, 77, 13, 17, 241 }));

        // Gray + alpha: R = G = B = the stored gray.
        File.WriteAllBytes(path, TestImages.Png(2, 1, 4, [90, 128, 240, 0]));
        Assert.That(ImageDecoder.Load(path).Pixels, Is.EqualTo(new byte[] { 90, 90, 90, 240, 240, 240 }));
    }

    [Test]
    public void GrayscalePngAndJpegBecomeEqualChannels()
    {
        const int width = 23, height = 11;
        var gray = new byte[width * height];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++) gray[y * width + x] = (byte)((x * 11 + y * 7) % 256);

        var png = Path.Combine(_dir, "gray.png");
        File.WriteAllBytes(png, TestImages.Png(width, height, 0, gray));
        var fromPng = ImageDecoder.Load(png);
        Assert.That((fromPng.Width, fromPng.Height), Is.EqualTo((width, height)));
        Assert.That(fromPng.Pixels, Is.EqualTo(gray.SelectMany(v => new[] { v, v, v }).ToArray()), "a lossless gray PNG is exact");

        var jpegBytes = TestImages.GrayJpeg(width, height, gray);
        Assert.That(TestImages.JpegComponents(jpegBytes), Is.EqualTo(1), "a one-component JPEG");
        var jpeg = Path.Combine(_dir, "gray.jpg");
        File.WriteAllBytes(jpeg, jpegBytes);
        var fromJpeg = ImageDecoder.Load(jpeg);
        Assert.That((fromJpeg.Width, fromJpeg.Height), Is.EqualTo((width, height)));
        double error = 0;
        for (int i = 0; i < gray.Length; i++)
        {
            var (r, g, b) = (fromJpeg.Pixels[3 * i], fromJpeg.Pixels[3 * i + 1], fromJpeg.Pixels[3 * i + 2]);
            Assert.That(g == r && b == r, $"pixel {i}: ({r}, {g}, {b}) is not gray");
            error += Math.Abs(r - gray[i]);
        }
        Assert.That(error / gray.Length, Is.LessThan(3.0), "quality-100 JPEG stays close to the samples");
    }

    [Test]
    public void ExifOrientationTurnsTheImageUpright()
    {
        var image = TestImages.Quadrants(64, 32);
        // Orientation 6: the camera was turned; the upright image is the stored one rotated 90 degrees clockwise.
        var rotated = ImageDecoder.Decode(TestImages.JpegWithOrientation(image, 6), "rotated.jpg");
        Assert.That((rotated.Width, rotated.Height), Is.EqualTo((32, 64)));
        Assert.That(Near(rotated[2, 2], (0, 0, 255)), "top-left was bottom-left (blue)");
        Assert.That(Near(rotated[29, 2], (255, 0, 0)), "top-right was top-left (red)");
        Assert.That(Near(rotated[29, 61], (0, 255, 0)), "bottom-right was top-right (green)");
        Assert.That(Near(rotated[2, 61], (255, 255, 255)), "bottom-left was bottom-right (white)");

        var stored = ImageDecoder.Decode(TestImages.JpegWithOrientation(image, 6), "rotated.jpg", applyExifOrientation: false);
        Assert.That((stored.Width, stored.Height), Is.EqualTo((64, 32)));

        var mirrored = ImageDecoder.Decode(TestImages.JpegWithOrientation(image, 2), "mirrored.jpg");
        Assert.That(Near(mirrored[2, 2], (0, 255, 0)), "orientation 2 mirrors left and right");
        var upsideDown = ImageDecoder.Decode(TestImages.JpegWithOrientation(image, 3), "180.jpg");
        Assert.That(Near(upsideDown[2, 2], (255, 255, 255)), "orientation 3 rotates by 180 degrees");
        var left = ImageDecoder.Decode(TestImages.JpegWithOrientation(image, 8), "270.jpg");
        Assert.That(Near(left[2, 2], (0, 255, 0)), "orientation 8: top-left was top-right");
    }

    [Test]
    public void EveryOrientationMatchesItsDefinition()
    {
        // A 3x2 image with distinct pixels: where pixel (x, y) lands for each EXIF orientation (PIL's exif_transpose).
        var image = new RgbImage(3, 2, Enumerable.Range(0, 18).Select(i => (byte)(i / 3)).ToArray());
        byte At(RgbImage im, int x, int y) => im[x, y].R;
        Assert.That(Grid(image.Orient(1)), Is.EqualTo("0 1 2|3 4 5"));
        Assert.That(Grid(image.Orient(2)), Is.EqualTo("2 1 0|5 4 3"));
        Assert.That(Grid(image.Orient(3)), Is.EqualTo("5 4 3|2 1 0"));
        Assert.That(Grid(image.Orient(4)), Is.EqualTo("3 4 5|0 1 2"));
        Assert.That(Grid(image.Orient(5)), Is.EqualTo("0 3|1 4|2 5"));
        Assert.That(Grid(image.Orient(6)), Is.EqualTo("3 0|4 1|5 2"));
        Assert.That(Grid(image.Orient(7)), Is.EqualTo("5 2|4 1|3 0"));
        Assert.That(Grid(image.Orient(8)), Is.EqualTo("2 5|1 4|0 3"));

        string Grid(RgbImage im) => string.Join("|", Enumerable.Range(0, im.Height).Select(y => string.Join(" ", Enumerable.Range(0, im.Width).Select(x => At(im, x, y)))));
    }

    [Test]
    public void CorruptOrUnsupportedFilesAreClearErrorsNamingTheFile()
    {
        var garbage = Path.Combine(_dir, "garbage.jpg");
        File.WriteAllBytes(garbage, Enumerable.Range(0, 500).Select(i => (byte)(i * 37)).ToArray());
        var e = Assert.Throws<InvalidDataException>(() => ImageDecoder.Load(garbage));
        Assert.That(e!.Message, Does.Contain(garbage));

        var text = Path.Combine(_dir, "notes.png");
        File.WriteAllText(text, "not an image at all");
        Assert.That(Assert.Throws<InvalidDataException>(() => ImageDecoder.Load(text))!.Message, Does.Contain(text));

        var empty = Path.Combine(_dir, "empty.webp");
        File.WriteAllBytes(empty, []);
        Assert.That(Assert.Throws<InvalidDataException>(() => ImageDecoder.Load(empty))!.Message, Does.Contain(empty).And.Contain("empty"));

        var png = TestImages.Encode(TestImages.Synthetic(64, 64), SKEncodedImageFormat.Png);
        var truncated = Path.Combine(_dir, "truncated.png");
        File.WriteAllBytes(truncated, png[..(png.Length / 2)]);
        Assert.That(Assert.Throws<InvalidDataException>(() => ImageDecoder.Load(truncated))!.Message, Does.Contain(truncated));

        var missing = Path.Combine(_dir, "missing.jpg");
        Assert.That(Assert.Throws<FileNotFoundException>(() => ImageDecoder.Load(missing))!.Message, Does.Contain(missing));
    }

    static bool Near((byte R, byte G, byte B) pixel, (int R, int G, int B) expected) =>
        Math.Abs(pixel.R - expected.R) < 40 && Math.Abs(pixel.G - expected.G) < 40 && Math.Abs(pixel.B - expected.B) < 40;
}
