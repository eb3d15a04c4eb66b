using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Processing.Regions;

/// <summary>
/// Box location features as each family's data loader computes them, written once for the feature files and for the
/// models (float32 arithmetic with true divisions, as NumPy does on float32 arrays; tensors stay on the boxes' device):
/// LXMERT 4-d (x1/w, y1/h, x2/w, y2/h); ViLBERT 5-d (x1/w, y1/h, x2/w, y2/h, box area / image area) with a first
/// whole-image row [0, 0, 1, 1, 1] whose feature is the mean of the box features; UNITER 7-d (x1, y1, x2, y2, w, h
/// normalised, then w*h).
/// </summary>
public static class BoxFeatures
{
    /// <summary>LXMERT (src/tasks/vqa_data.py): pixel boxes [N, 4] (x1, y1, x2, y2) → [N, 4] float32.</summary>
    public static Tensor Lxmert(Tensor boxes, double imageWidth, double imageHeight)
    {
        var b = PixelBoxes(boxes, imageWidth, imageHeight);
        return b / Scale(b, imageWidth, imageHeight);
    }

    /// <summary>
    /// ViLBERT (vilbert/datasets/_image_features_reader.py): pixel boxes [N, 4] → locations [N, 5] float32 (x1/w, y1/h,
    /// x2/w, y2/h, box area / image area), without the whole-image row (<see cref="VilbertWholeImageLocation"/>).
    /// </summary>
    public static Tensor VilbertLocations(Tensor boxes, double imageWidth, double imageHeight)
    {
        var b = PixelBoxes(boxes, imageWidth, imageHeight);
        var imageArea = full(new long[] { 1 }, (float)(imageWidth * imageHeight), dtype: ScalarType.Float32, device: b.device);
        var area = (b.select(1, 3) - b.select(1, 1)) * (b.select(1, 2) - b.select(1, 0)) / imageArea;
        return cat(new[] { b / Scale(b, imageWidth, imageHeight), area.unsqueeze(1) }, 1);
    }

    /// <summary>ViLBERT's whole-image location [1, 5]: 0, 0, 1, 1, 1.</summary>
    public static Tensor VilbertWholeImageLocation(Device? device = null) =>
        tensor(new float[] { 0, 0, 1, 1, 1 }, new long[] { 1, 5 }, device: device ?? CPU);

    /// <summary>
    /// ViLBERT's whole-image feature [D]: the mean of the region features [N, D], summed row by row in float32 (as
    /// np.sum(axis=0)) and divided by N.
    /// </summary>
    public static Tensor VilbertMeanFeature(Tensor features)
    {
        if (features.dim() != 2 || features.shape[0] < 1)
            throw new ArgumentException($"ViLBERT needs at least one region feature for the mean, got [{string.Join(", ", features.shape)}]");
        var f = features.to(ScalarType.Float32);
        var sum = f[0].clone();
        for (long i = 1; i < f.shape[0]; i++) sum.add_(f[i]);
        return sum / full(new long[] { 1 }, (float)f.shape[0], dtype: ScalarType.Float32, device: f.device);
    }

    /// <summary>UNITER from pixel boxes [N, 4]: x1/w, y1/h, x2/w, y2/h, (x2 - x1)/w, (y2 - y1)/h, then their product → [N, 7] float32.</summary>
    public static Tensor Uniter(Tensor boxes, double imageWidth, double imageHeight)
    {
        var b = PixelBoxes(boxes, imageWidth, imageHeight);
        var scale = Scale(b, imageWidth, imageHeight);
        var size = (b.narrow(1, 2, 2) - b.narrow(1, 0, 2)) / scale.narrow(0, 0, 2);
        return UniterFromNormalized(cat(new[] { b / scale, size }, 1));
    }

    /// <summary>UNITER (data/data.py _get_img_feat): norm_bb [N, 6] (x1, y1, x2, y2, w, h) → [N, 7] with w*h appended.</summary>
    public static Tensor UniterFromNormalized(Tensor normalized) =>
        cat(new[] { normalized, normalized.narrow(1, 4, 1) * normalized.narrow(1, 5, 1) }, 1);

    /// <summary>LXMERT (src/tasks/vqa_data.py): [N, 4].</summary>
    public static float[] Lxmert(RegionFeatures r)
    {
        var (boxes, w, h) = PixelBoxes(r);
        using var scope = NewDisposeScope();
        return Lxmert(tensor(boxes, new long[] { r.BoxCount, 4 }), w, h).data<float>().ToArray();
    }

    /// <summary>
    /// ViLBERT (vilbert/datasets/_image_features_reader.py): N + 1 rows. Features [N+1, D] with the mean feature
    /// first; locations [N+1, 5] with [0, 0, 1, 1, 1] first.
    /// </summary>
    public static (float[] Features, float[] Locations, int Count) Vilbert(RegionFeatures r)
    {
        var (boxes, w, h) = PixelBoxes(r);
        int n = r.BoxCount, d = r.FeatureSize;
        if (n == 0) throw new InvalidDataException($"image {r.ImageId}: ViLBERT needs at least one box for the mean feature");
        using var scope = NewDisposeScope();
        var regionFeatures = tensor(r.Features, new long[] { n, d });
        var features = cat(new[] { VilbertMeanFeature(regionFeatures).unsqueeze(0), regionFeatures }, 0);
        var locations = cat(new[] { VilbertWholeImageLocation(), VilbertLocations(tensor(boxes, new long[] { n, 4 }), w, h) }, 0);
        return (features.data<float>().ToArray(), locations.data<float>().ToArray(), n + 1);
    }

    /// <summary>UNITER (data/data.py _get_img_feat): [N, 7] from norm_bb, or from pixel boxes and the image size.</summary>
    public static float[] Uniter(RegionFeatures r)
    {
        using var scope = NewDisposeScope();
        if (r.NormalizedBoxes is not null)
            return UniterFromNormalized(tensor(r.NormalizedBoxes, new long[] { r.BoxCount, 6 })).data<float>().ToArray();
        var (boxes, w, h) = PixelBoxes(r);
        return Uniter(tensor(boxes, new long[] { r.BoxCount, 4 }), w, h).data<float>().ToArray();
    }

    // The divisor (w, h, w, h) as a float32 tensor on the boxes' device: an elementwise true division, as NumPy's.
    static Tensor Scale(Tensor boxes, double w, double h) =>
        tensor(new[] { (float)w, (float)h, (float)w, (float)h }, dtype: ScalarType.Float32, device: boxes.device);

    static Tensor PixelBoxes(Tensor boxes, double imageWidth, double imageHeight)
    {
        if (boxes.dim() != 2 || boxes.shape[1] != 4) throw new ArgumentException($"boxes must be [N, 4] (x1, y1, x2, y2 in pixels), got [{string.Join(", ", boxes.shape)}]");
        if (imageWidth <= 0 || imageHeight <= 0) throw new ArgumentException($"image size must be positive, got {imageWidth}x{imageHeight}");
        return boxes.to(ScalarType.Float32);
    }

    static (float[] Boxes, float Width, float Height) PixelBoxes(RegionFeatures r)
    {
        var boxes = r.Boxes ?? throw new InvalidDataException($"image {r.ImageId}: no pixel boxes (x1, y1, x2, y2) in this feature file");
        if (r.ImageWidth <= 0 || r.ImageHeight <= 0) throw new InvalidDataException($"image {r.ImageId}: the image size is unknown ({r.ImageWidth}x{r.ImageHeight})");
        if (boxes.Length != r.BoxCount * 4) throw new InvalidDataException($"image {r.ImageId}: {boxes.Length} box values for {r.BoxCount} boxes");
        return (boxes, r.ImageWidth, r.ImageHeight);
    }
}

/// <summary>Region inputs of a batch, zero-padded to the most boxes: features [B, N, D], locations [B, N, K], mask [B, N] (Int64, 1 = box).</summary>
public sealed record RegionBatch(Tensor Features, Tensor Locations, Tensor Mask) : IDisposable
{
    /// <summary>Pads rows of (features [n, featureSize], locations [n, locationSize], n) into one batch.</summary>
    public static RegionBatch Create(IReadOnlyList<(float[] Features, float[] Locations, int Count)> images, int featureSize, int locationSize)
    {
        if (images.Count == 0) throw new ArgumentException("no images in the batch");
        int maxBoxes = images.Max(i => i.Count);
        var features = new float[images.Count * maxBoxes * featureSize];
        var locations = new float[images.Count * maxBoxes * locationSize];
        var mask = new long[images.Count * maxBoxes];
        for (int b = 0; b < images.Count; b++)
        {
            var (f, l, n) = images[b];
            if (f.Length != n * featureSize || l.Length != n * locationSize)
                throw new ArgumentException($"image {b}: {f.Length} feature and {l.Length} location values for {n} boxes of {featureSize} and {locationSize}");
            Array.Copy(f, 0, features, b * maxBoxes * featureSize, f.Length);
            Array.Copy(l, 0, locations, b * maxBoxes * locationSize, l.Length);
            for (int i = 0; i < n; i++) mask[b * maxBoxes + i] = 1;
        }
        return new RegionBatch(
            torch.tensor(features, new long[] { images.Count, maxBoxes, featureSize }, dtype: ScalarType.Float32),
            torch.tensor(locations, new long[] { images.Count, maxBoxes, locationSize }, dtype: ScalarType.Float32),
            torch.tensor(mask, new long[] { images.Count, maxBoxes }, dtype: ScalarType.Int64));
    }

    public void Dispose()
    {
        Features.Dispose();
        Locations.Dispose();
        Mask.Dispose();
    }
}
