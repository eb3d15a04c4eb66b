using SkiaSharp;

namespace ModelZoo.Processing.Images;

/// <summary>Resizing with Skia's samplers (what SkiaSharp's own scaling gives; see docs/processing.md for how far it is from PIL).</summary>
public static class SkiaResampler
{
    /// <summary>Catmull-Rom (B=0, C=0.5): the same cubic as PIL's bicubic (a = -0.5), sampled without PIL's widening of the filter when downscaling.</summary>
    public static SKSamplingOptions CatmullRom { get; } = new(SKCubicResampler.CatmullRom);

    /// <summary>Bilinear between mipmap levels: Skia's closest to PIL's bicubic when shrinking (see docs/processing.md).</summary>
    public static SKSamplingOptions LinearMipmaps { get; } = new(SKFilterMode.Linear, SKMipmapMode.Linear);

    /// <summary>
    /// Resizes with <paramref name="sampling"/>, by default the Skia sampler nearest to PIL's bicubic: Catmull-Rom
    /// when enlarging, bilinear with mipmaps when shrinking.
    /// </summary>
    public static RgbImage Resize(RgbImage image, int width, int height, SKSamplingOptions? sampling = null)
    {
        sampling ??= width >= image.Width && height >= image.Height ? CatmullRom : LinearMipmaps;
        if (width <= 0 || height <= 0) throw new ArgumentException($"cannot resize to {width}x{height}");
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        var rgba = new byte[image.Width * image.Height * 4];
        for (int i = 0, j = 0; i < image.Pixels.Length; i += 3, j += 4)
        {
            rgba[j] = image.Pixels[i];
            rgba[j + 1] = image.Pixels[i + 1];
            rgba[j + 2] = image.Pixels[i + 2];
            rgba[j + 3] = 255;
        }
        using var source = new SKBitmap();
        var handle = System.Runtime.InteropServices.GCHandle.Alloc(rgba, System.Runtime.InteropServices.GCHandleType.Pinned);
        try
        {
            source.InstallPixels(info, handle.AddrOfPinnedObject(), info.RowBytes);
            using var target = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
            if (!source.ScalePixels(target, sampling.Value)) throw new InvalidOperationException($"Skia could not scale {image.Width}x{image.Height} to {width}x{height}");
            var scaled = target.Bytes;
            var rgb = new byte[width * height * 3];
            for (int i = 0, j = 0; i < rgb.Length; i += 3, j += 4)
            {
                rgb[i] = scaled[j];
                rgb[i + 1] = scaled[j + 1];
                rgb[i + 2] = scaled[j + 2];
            }
            return new RgbImage(width, height, rgb);
        }
        finally
        {
            handle.Free();
        }
    }
}
