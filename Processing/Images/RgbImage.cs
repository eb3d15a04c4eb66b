using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Processing.Images;

/// <summary>An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B (what PIL's "RGB" mode holds).</summary>
public sealed class RgbImage
{
    public RgbImage(int width, int height, byte[] pixels)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"an image needs a positive size, not {width}x{height}");
        if (pixels.Length != checked(width * height * 3))
            throw new ArgumentException($"a {width}x{height} RGB image has {width * height * 3} bytes, not {pixels.Length}");
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    public int Width { get; }
    public int Height { get; }

    /// <summary>R, G, B bytes of each pixel, row by row.</summary>
    public byte[] Pixels { get; }

    /// <summary>The pixel at (x, y) as (R, G, B).</summary>
    public (byte R, byte G, byte B) this[int x, int y]
    {
        get
        {
            int i = (y * Width + x) * 3;
            return (Pixels[i], Pixels[i + 1], Pixels[i + 2]);
        }
    }

    /// <summary>The rectangle at (left, top) of the given size; parts outside the image are black (as torchvision pads).</summary>
    public RgbImage Crop(int left, int top, int width, int height)
    {
        var output = new byte[checked(width * height * 3)];
        for (int y = 0; y < height; y++)
        {
            int sy = top + y;
            if (sy < 0 || sy >= Height) continue;
            int x0 = Math.Max(0, -left), x1 = Math.Min(width, Width - left);
            if (x1 <= x0) continue;
            Buffer.BlockCopy(Pixels, (sy * Width + left + x0) * 3, output, (y * width + x0) * 3, (x1 - x0) * 3);
        }
        return new RgbImage(width, height, output);
    }

    /// <summary>
    /// Float32 [3, H, W]: each channel as ToTensor gives it (value / 255), then (x - mean) / std per channel, both in
    /// float32 as torchvision computes them.
    /// </summary>
    public Tensor ToTensor(ReadOnlySpan<float> mean, ReadOnlySpan<float> std)
    {
        if (mean.Length != 3 || std.Length != 3) throw new ArgumentException("mean and std need three values (R, G, B)");
        int plane = Width * Height;
        var data = new float[3 * plane];
        for (int c = 0; c < 3; c++)
        {
            float m = mean[c], s = std[c];
            for (int i = 0; i < plane; i++) data[c * plane + i] = ((float)Pixels[i * 3 + c] / 255f - m) / s;
        }
        return torch.tensor(data, new long[] { 3, Height, Width }, dtype: ScalarType.Float32);
    }

    /// <summary>The image turned upright for an EXIF orientation (1-8; 1 and unknown values leave it unchanged).</summary>
    public RgbImage Orient(int exifOrientation)
    {
        if (exifOrientation is < 2 or > 8) return this;
        bool swap = exifOrientation >= 5;
        int w = swap ? Height : Width, h = swap ? Width : Height;
        var output = new byte[Pixels.Length];
        for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
        {
            var (sx, sy) = exifOrientation switch
            {
                2 => (Width - 1 - x, y),                 // mirrored
                3 => (Width - 1 - x, Height - 1 - y),    // rotated 180
                4 => (x, Height - 1 - y),                // flipped
                5 => (y, x),                             // transposed
                6 => (y, Height - 1 - x),                // rotated 90 clockwise to be upright
                7 => (Width - 1 - y, Height - 1 - x),    // transversed
                _ => (Width - 1 - y, x),                 // 8: rotated 90 counter-clockwise to be upright
            };
            Buffer.BlockCopy(Pixels, (sy * Width + sx) * 3, output, (y * w + x) * 3, 3);
        }
        return new RgbImage(w, h, output);
    }
}
