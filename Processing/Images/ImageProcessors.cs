using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Processing.Images;

/// <summary>Which resampler resizes images: PIL's (the originals' preprocessing, bit for bit) or Skia's cubic.</summary>
public enum ImageResampler { Pil, Skia }

/// <summary>Images of a batch as model input: float32 pixels [B, 3, H, W] and, when sizes differ, a pixel mask.</summary>
/// <param name="Pixels">Normalised pixels; padding (where a batch mixes sizes) is 0.</param>
/// <param name="PixelMask">Int64 [B, H, W], 1 on the image and 0 on padding; null when every image fills the frame.</param>
public sealed record ImageBatch(Tensor Pixels, Tensor? PixelMask) : IDisposable
{
    public void Dispose()
    {
        Pixels.Dispose();
        PixelMask?.Dispose();
    }
}

/// <summary>
/// CLIP's preprocessing (openai/CLIP <c>_transform</c>): bicubic resize of the shorter side to <see cref="Size"/>
/// (the longer side to int(size * long / short)), centre crop to size x size, RGB, /255, CLIP mean and std.
/// </summary>
public sealed class ClipImageProcessor(int size = 224, ImageResampler resampler = ImageResampler.Pil)
{
    public static readonly float[] Mean = [0.48145466f, 0.4578275f, 0.40821073f];
    public static readonly float[] Std = [0.26862954f, 0.26130258f, 0.27577711f];

    public int Size { get; } = size > 0 ? size : throw new ArgumentException($"image size must be positive, not {size}");
    public ImageResampler Resampler { get; } = resampler;

    /// <summary>The resized and cropped 8-bit image (before normalisation).</summary>
    public RgbImage Prepare(RgbImage image)
    {
        // torchvision Resize(int): the shorter side becomes Size, the other int(Size * long / short).
        bool portrait = image.Width <= image.Height;
        int shortSide = portrait ? image.Width : image.Height, longSide = portrait ? image.Height : image.Width;
        int newLong = (int)((double)Size * longSide / shortSide);
        var (width, height) = portrait ? (Size, newLong) : (newLong, Size);
        var resized = Resize(image, width, height, Resampler);
        // CenterCrop: offsets round half to even (Python's round).
        int top = (int)Math.Round((height - Size) / 2.0, MidpointRounding.ToEven);
        int left = (int)Math.Round((width - Size) / 2.0, MidpointRounding.ToEven);
        return resized.Crop(left, top, Size, Size);
    }

    /// <summary>Float32 [3, Size, Size].</summary>
    public Tensor Process(RgbImage image) => Prepare(image).ToTensor(Mean, Std);

    /// <summary>Float32 [B, 3, Size, Size].</summary>
    public ImageBatch Process(IReadOnlyList<RgbImage> images)
    {
        using var scope = torch.NewDisposeScope();
        var stacked = torch.stack(images.Select(Process).ToArray());
        return new ImageBatch(stacked.MoveToOuterDisposeScope(), null);
    }

    public ImageBatch ProcessFiles(IEnumerable<string> paths) => Process(paths.Select(p => ImageDecoder.Load(p)).ToList());

    internal static RgbImage Resize(RgbImage image, int width, int height, ImageResampler resampler) => resampler == ImageResampler.Skia
        ? SkiaResampler.Resize(image, width, height)
        : PilResampler.Resize(image, width, height, PilResampler.Filter.Bicubic);
}

/// <summary>
/// ViLT's preprocessing (dandelin/ViLT <c>pixelbert_transform</c>, MinMaxResize): the shorter side to
/// <see cref="Shorter"/> (384), the longer side at most <see cref="Longer"/> (int(1333 / 800 * shorter) = 639),
/// both rounded to the nearest integer and then down to a multiple of 32 (<see cref="Multiple"/>: ViLT-B/32's patch size;
/// a model with smaller patches may round to its own patch size), bicubic; /255, mean and std 0.5.
/// Batches of different sizes are zero-padded at the bottom and right (as ViLT's collate does) with a pixel mask.
/// </summary>
public sealed class ViltImageProcessor
{
    public ViltImageProcessor(int shorter = 384, int? longer = null, ImageResampler resampler = ImageResampler.Pil, int multiple = 32)
    {
        if (shorter <= 0) throw new ArgumentException($"the shorter side must be positive, not {shorter}");
        if (multiple <= 0) throw new ArgumentException($"the size multiple must be positive, not {multiple}");
        Multiple = multiple;
        Shorter = shorter;
        Longer = longer ?? (int)(1333.0 / 800 * shorter);
        Resampler = resampler;
    }

    public static readonly float[] Mean = [0.5f, 0.5f, 0.5f];
    public static readonly float[] Std = [0.5f, 0.5f, 0.5f];

    public int Shorter { get; }
    public int Longer { get; }
    public ImageResampler Resampler { get; }
    /// <summary>Both sides are rounded down to a multiple of this (32 in ViLT).</summary>
    public int Multiple { get; }

    /// <summary>The size MinMaxResize gives an image of this size.</summary>
    public (int Width, int Height) TargetSize(int width, int height)
    {
        double scale = (double)Shorter / Math.Min(width, height);
        double newHeight, newWidth;
        if (height < width) (newHeight, newWidth) = (Shorter, scale * width);
        else (newHeight, newWidth) = (scale * height, Shorter);
        if (Math.Max(newHeight, newWidth) > Longer)
        {
            scale = Longer / Math.Max(newHeight, newWidth);
            newHeight *= scale;
            newWidth *= scale;
        }
        int h = (int)(newHeight + 0.5) / Multiple * Multiple, w = (int)(newWidth + 0.5) / Multiple * Multiple;
        if (h == 0 || w == 0) throw new ArgumentException($"a {width}x{height} image becomes {w}x{h} pixels under ViLT's resize (a side below {Multiple})");
        return (w, h);
    }

    public RgbImage Prepare(RgbImage image)
    {
        var (w, h) = TargetSize(image.Width, image.Height);
        return ClipImageProcessor.Resize(image, w, h, Resampler);
    }

    /// <summary>Float32 [3, H, W] of one image.</summary>
    public Tensor Process(RgbImage image) => Prepare(image).ToTensor(Mean, Std);

    /// <summary>Float32 [B, 3, maxH, maxW] zero-padded, and the Int64 pixel mask [B, maxH, maxW].</summary>
    public ImageBatch Process(IReadOnlyList<RgbImage> images)
    {
        if (images.Count == 0) throw new ArgumentException("no images to process");
        using var scope = torch.NewDisposeScope();
        var tensors = images.Select(Process).ToArray();
        long maxH = tensors.Max(t => t.shape[1]), maxW = tensors.Max(t => t.shape[2]);
        var pixels = torch.zeros(tensors.Length, 3, maxH, maxW, dtype: ScalarType.Float32);
        var mask = torch.zeros(tensors.Length, maxH, maxW, dtype: ScalarType.Int64);
        for (int b = 0; b < tensors.Length; b++)
        {
            long h = tensors[b].shape[1], w = tensors[b].shape[2];
            pixels[b, .., ..(int)h, ..(int)w] = tensors[b];
            mask[b, ..(int)h, ..(int)w] = 1;
        }
        return new ImageBatch(pixels.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope());
    }

    public ImageBatch ProcessFiles(IEnumerable<string> paths) => Process(paths.Select(p => ImageDecoder.Load(p)).ToList());
}
