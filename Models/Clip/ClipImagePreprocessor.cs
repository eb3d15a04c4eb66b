using SkiaSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Clip;

/// <summary>
/// CLIP's image transform (clip.py _transform): resize the shorter side to the model resolution with bicubic
/// sampling, centre-crop a square, RGB in [0, 1], normalise with CLIP's mean and standard deviation. Skia's
/// Catmull-Rom cubic stands in for PIL's bicubic (PIL also antialiases when shrinking, so pixels can differ slightly).
/// </summary>
public sealed class ClipImagePreprocessor
{
    public static readonly float[] Mean = { 0.48145466f, 0.4578275f, 0.40821073f };
    public static readonly float[] Std = { 0.26862954f, 0.26130258f, 0.27577711f };

    public int Resolution { get; }

    public ClipImagePreprocessor(int resolution)
    {
        if (resolution <= 0) throw new ArgumentException($"resolution must be positive, got {resolution}");
        Resolution = resolution;
    }

    /// <summary>An image file (JPEG, PNG, WebP, BMP, GIF) → [3, R, R] float32. Unreadable files name the file.</summary>
    public Tensor Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such image file", path);
        using var bitmap = SKBitmap.Decode(path) ?? throw new InvalidDataException($"{path}: not an image SkiaSharp can decode (JPEG, PNG, WebP, BMP, GIF)");
        return Process(bitmap);
    }

    /// <summary>Several files → [N, 3, R, R].</summary>
    public Tensor Load(IReadOnlyList<string> paths)
    {
        if (paths.Count == 0) throw new ArgumentException("no image files given");
        var images = paths.Select(Load).ToArray();
        try { return stack(images); }
        finally { foreach (var image in images) image.Dispose(); }
    }

    public Tensor Process(SKBitmap source)
    {
        int width = source.Width, height = source.Height;
        if (width <= 0 || height <= 0) throw new InvalidDataException("the image is empty");
        double scale = (double)Resolution / Math.Min(width, height);
        int resizedWidth = Math.Max(Resolution, (int)Math.Round(width * scale)), resizedHeight = Math.Max(Resolution, (int)Math.Round(height * scale));
        using var rgba = new SKBitmap(new SKImageInfo(resizedWidth, resizedHeight, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        if (!source.ScalePixels(rgba, new SKSamplingOptions(SKCubicResampler.CatmullRom)))
            throw new InvalidDataException($"could not resize a {width}x{height} image");
        // Centre crop as torchvision rounds it.
        int left = (int)Math.Round((resizedWidth - Resolution) / 2.0), top = (int)Math.Round((resizedHeight - Resolution) / 2.0);
        var pixels = rgba.GetPixelSpan();
        var data = new float[3 * Resolution * Resolution];
        int plane = Resolution * Resolution;
        for (int y = 0; y < Resolution; y++)
        for (int x = 0; x < Resolution; x++)
        {
            int source4 = ((top + y) * resizedWidth + left + x) * 4, target = y * Resolution + x;
            for (int c = 0; c < 3; c++) data[c * plane + target] = (pixels[source4 + c] / 255f - Mean[c]) / Std[c];
        }
        return tensor(data).view(3, Resolution, Resolution);
    }
}
