using SkiaSharp;
using static TorchSharp.torch;

namespace ModelZoo.Cli.Commands;

/// <summary>
/// CLIP-style image preprocessing for `modelzoo generate`: shortest side resized to the model's size (bicubic),
/// centre crop, RGB scaled to [0, 1] and normalised with CLIP's mean and std. (Skia's bicubic does not low-pass
/// before downscaling as PIL does, so pixels differ slightly from open_clip's transform.)
/// </summary>
public static class GenerateImages
{
    static readonly float[] Mean = { 0.48145466f, 0.4578275f, 0.40821073f };
    static readonly float[] Std = { 0.26862954f, 0.26130258f, 0.27577711f };

    /// <summary>[3, size, size] float32.</summary>
    public static Tensor Load(string path, int size)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"image not found: {path}", path);
        using var decoded = SKBitmap.Decode(path) ?? throw new InvalidDataException($"{path}: not an image this build can decode (PNG, JPEG, WebP, GIF, BMP)");
        int width = decoded.Width, height = decoded.Height;
        if (width <= 0 || height <= 0) throw new InvalidDataException($"{path}: the image is empty ({width}x{height})");
        double scale = size / (double)Math.Min(width, height);
        int resizedWidth = width <= height ? size : Math.Max(size, (int)(width * scale));
        int resizedHeight = height < width ? size : Math.Max(size, (int)(height * scale));
        using var rgba = decoded.Copy(SKColorType.Rgba8888) ?? throw new InvalidDataException($"{path}: cannot convert the image to RGBA");
        using var resized = rgba.Resize(new SKImageInfo(resizedWidth, resizedHeight, SKColorType.Rgba8888, SKAlphaType.Unpremul),
            new SKSamplingOptions(SKCubicResampler.CatmullRom)) ?? throw new InvalidDataException($"{path}: cannot resize the image");
        int left = (int)Math.Round((resizedWidth - size) / 2.0), top = (int)Math.Round((resizedHeight - size) / 2.0);
        var bytes = resized.Bytes;
        var pixels = new float[3 * size * size];
        for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++)
        {
            int source = ((top + y) * resizedWidth + left + x) * 4;
            for (int c = 0; c < 3; c++)
                pixels[(c * size + y) * size + x] = (bytes[source + c] / 255f - Mean[c]) / Std[c];
        }
        return tensor(pixels, new long[] { 3, size, size });
    }
}
