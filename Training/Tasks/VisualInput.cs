using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Training.Tasks;

/// <summary>
/// One image as task code hands it to a model adapter: RGB pixels in [0, 1] ([3, H, W], unnormalised), a file to
/// decode, or detector regions (features [n, D] and boxes [n, 4] as x1, y1, x2, y2 in [0, 1]). Each adapter takes
/// the form its family needs and resizes / normalises it itself.
/// </summary>
public sealed record VisualInput
{
    public Tensor? Pixels { get; init; }
    public string? Path { get; init; }
    public Tensor? RegionFeatures { get; init; }
    public Tensor? RegionBoxes { get; init; }
    /// <summary>Size of the image the boxes refer to (pixels).</summary>
    public int ImageWidth { get; init; }
    public int ImageHeight { get; init; }
    /// <summary>A region file read on demand (<see cref="RegionFiles"/>): features, boxes and image size.</summary>
    public string? RegionFile { get; init; }
    /// <summary>Reads the regions on demand from another source (a line of a bottom-up TSV file).</summary>
    public Func<(Tensor Features, Tensor Boxes, int Width, int Height)>? RegionLoader { get; init; }

    public static VisualInput FromPixels(Tensor pixels) => new() { Pixels = pixels };
    public static VisualInput FromFile(string path) => new() { Path = path };

    /// <summary>Detector regions: features [n, D], boxes [n, 4] in pixels, and the image size; given, or read from the region file.</summary>
    public (Tensor Features, Tensor Boxes, int Width, int Height) Regions()
    {
        if (RegionFeatures is not null && RegionBoxes is not null) return (RegionFeatures, RegionBoxes, ImageWidth, ImageHeight);
        if (RegionFile is not null) return RegionFiles.Read(RegionFile);
        if (RegionLoader is not null) return RegionLoader();
        throw new InvalidOperationException("this model needs detector region features, but the input is an image; give \"features\" (a folder of region files) in the data manifest");
    }

    /// <summary>RGB pixels [3, H, W] in [0, 1]: the given tensor, or the decoded file.</summary>
    public Tensor RgbPixels()
    {
        if (Pixels is not null)
        {
            if (Pixels.dim() != 3 || Pixels.shape[0] != 3) throw new ArgumentException($"pixels must be [3, H, W], got [{string.Join(", ", Pixels.shape)}]");
            return Pixels;
        }
        if (Path is not null) return ImageFiles.ReadRgb(Path);
        throw new InvalidOperationException("this model needs image pixels, but the input has only region features; give images (an image folder) instead");
    }
}

/// <summary>
/// One image's detector regions as a file: this library's safetensors layout (<c>features</c> [n, D] float,
/// <c>boxes</c> [n, 4] float as x1, y1, x2, y2 in pixels, <c>image_size</c> [2] int64 width and height), or a UNITER
/// <c>.npz</c> (read by the Processing library; its boxes are normalised, so the image size is 1 x 1).
/// </summary>
public static class RegionFiles
{
    public static (Tensor Features, Tensor Boxes, int Width, int Height) Read(string path)
    {
        if (path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase)) return FromRegionFeatures(Processing.Regions.UniterNpz.Read(path), path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: region file not found", path);
        using var reader = new Weights.SafetensorsReader(path);
        foreach (var name in new[] { "features", "boxes", "image_size" })
            if (!reader.Entries.Any(e => e.Name == name))
                throw new InvalidDataException($"{path}: no \"{name}\" tensor (a region file holds features [n, D], boxes [n, 4], image_size [2])");
        var features = reader.Read("features").to(ScalarType.Float32);
        var boxes = reader.Read("boxes").to(ScalarType.Float32);
        using var size = reader.Read("image_size").to(ScalarType.Int64);
        if (features.dim() != 2 || boxes.dim() != 2 || boxes.shape[1] != 4 || boxes.shape[0] != features.shape[0] || size.numel() != 2)
            throw new InvalidDataException($"{path}: expected features [n, D], boxes [n, 4], image_size [2]; got [{string.Join(", ", features.shape)}], " +
                                           $"[{string.Join(", ", boxes.shape)}], [{string.Join(", ", size.shape)}]");
        var wh = size.data<long>().ToArray();
        return (features, boxes, (int)wh[0], (int)wh[1]);
    }

    /// <summary>Regions read by the Processing library (TSV line, UNITER npz) as tensors.</summary>
    public static (Tensor Features, Tensor Boxes, int Width, int Height) FromRegionFeatures(Processing.Regions.RegionFeatures r, string source)
    {
        var features = tensor(r.Features, new long[] { r.BoxCount, r.FeatureSize });
        if (r.Boxes is not null && r.ImageWidth > 0 && r.ImageHeight > 0)
            return (features, tensor(r.Boxes, new long[] { r.BoxCount, 4 }), r.ImageWidth, r.ImageHeight);
        if (r.NormalizedBoxes is not null)
        {
            var normalized = tensor(r.NormalizedBoxes, new long[] { r.BoxCount, r.NormalizedBoxes.Length / Math.Max(1, r.BoxCount) });
            return (features, normalized.narrow(1, 0, 4).contiguous(), 1, 1);
        }
        throw new InvalidDataException($"{source}: image {r.ImageId} has no boxes");
    }

    public static void Write(string path, Tensor features, Tensor boxes, int width, int height)
    {
        using var size = tensor(new long[] { width, height });
        Weights.SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["features"] = features, ["boxes"] = boxes, ["image_size"] = size });
    }
}

/// <summary>Decodes image files to RGB tensors with SkiaSharp.</summary>
public static class ImageFiles
{
    /// <summary>[3, H, W] float32 in [0, 1] (decoded by the Processing library: EXIF orientation, size limits).</summary>
    public static Tensor ReadRgb(string path) => Processing.Images.ImageDecoder.Load(path).ToTensor(new float[] { 0, 0, 0 }, new float[] { 1, 1, 1 });

    public static Tensor FromBitmap(SKBitmap bitmap)
    {
        using var rgba = bitmap.ColorType == SKColorType.Rgba8888 ? null : bitmap.Copy(SKColorType.Rgba8888);
        var source = rgba ?? bitmap;
        int width = source.Width, height = source.Height;
        var bytes = source.GetPixelSpan();
        var data = new float[3 * height * width];
        int plane = height * width;
        for (int i = 0; i < plane; i++)
        {
            data[i] = bytes[4 * i] / 255f;
            data[plane + i] = bytes[4 * i + 1] / 255f;
            data[2 * plane + i] = bytes[4 * i + 2] / 255f;
        }
        return tensor(data, new long[] { 3, height, width });
    }

    /// <summary>RGB pixels [3, H, W] in [0, 1] as an 8-bit image (rounded), for the Processing library's preprocessors.</summary>
    public static Processing.Images.RgbImage ToRgbImage(Tensor pixels)
    {
        if (pixels.dim() != 3 || pixels.shape[0] != 3) throw new ArgumentException($"pixels must be [3, H, W], got [{string.Join(", ", pixels.shape)}]");
        using var scope = NewDisposeScope();
        var bytes = (pixels.detach().to(ScalarType.Float32).cpu().clamp(0, 1) * 255).round().to(ScalarType.Byte).permute(1, 2, 0).contiguous();
        return new Processing.Images.RgbImage((int)pixels.shape[2], (int)pixels.shape[1], bytes.data<byte>().ToArray());
    }

    /// <summary>Bilinear resize of [3, H, W] (or [B, 3, H, W]) to size x size.</summary>
    public static Tensor Resize(Tensor pixels, int size)
    {
        bool single = pixels.dim() == 3;
        var batch = single ? pixels.unsqueeze(0) : pixels;
        if (batch.shape[2] == size && batch.shape[3] == size) return pixels;
        var resized = nn.functional.interpolate(batch, new long[] { size, size }, mode: InterpolationMode.Bilinear, align_corners: false);
        return single ? resized.squeeze(0) : resized;
    }
}
