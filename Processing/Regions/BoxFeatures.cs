using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Processing.Regions;

/// <summary>
/// Box location features as each family's data loader computes them (float32 arithmetic, as NumPy does on float32
/// arrays):
/// LXMERT 4-d (x1/w, y1/h, x2/w, y2/h); ViLBERT 5-d (x1/w, y1/h, x2/w, y2/h, box area / image area) with a first
/// whole-image row [0, 0, 1, 1, 1] whose feature is the mean of the box features; UNITER 7-d (x1, y1, x2, y2, w, h
/// normalised, then w*h).
/// </summary>
public static class BoxFeatures
{
    /// <summary>LXMERT (src/tasks/vqa_data.py): [N, 4].</summary>
    public static float[] Lxmert(RegionFeatures r)
    {
        var (boxes, w, h) = PixelBoxes(r);
        var output = new float[r.BoxCount * 4];
        for (int i = 0; i < r.BoxCount; i++)
        {
            output[i * 4] = boxes[i * 4] / w;
            output[i * 4 + 1] = boxes[i * 4 + 1] / h;
            output[i * 4 + 2] = boxes[i * 4 + 2] / w;
            output[i * 4 + 3] = boxes[i * 4 + 3] / h;
        }
        return output;
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
        var features = new float[(n + 1) * d];
        for (int i = 0; i < n; i++)
        for (int k = 0; k < d; k++) features[k] += r.Features[i * d + k];    // row by row, float32, as np.sum(axis=0)
        for (int k = 0; k < d; k++) features[k] /= n;
        Array.Copy(r.Features, 0, features, d, n * d);

        var locations = new float[(n + 1) * 5];
        locations[0] = 0; locations[1] = 0; locations[2] = 1; locations[3] = 1; locations[4] = 1;
        float area = (float)((double)r.ImageWidth * r.ImageHeight);
        for (int i = 0; i < n; i++)
        {
            float x1 = boxes[i * 4], y1 = boxes[i * 4 + 1], x2 = boxes[i * 4 + 2], y2 = boxes[i * 4 + 3];
            int o = (i + 1) * 5;
            locations[o + 4] = (y2 - y1) * (x2 - x1) / area;
            locations[o] = x1 / w;
            locations[o + 1] = y1 / h;
            locations[o + 2] = x2 / w;
            locations[o + 3] = y2 / h;
        }
        return (features, locations, n + 1);
    }

    /// <summary>UNITER (data/data.py _get_img_feat): [N, 7] from norm_bb, or from pixel boxes and the image size.</summary>
    public static float[] Uniter(RegionFeatures r)
    {
        int n = r.BoxCount;
        var normalized = r.NormalizedBoxes ?? NormalizedFromPixels(r);
        var output = new float[n * 7];
        for (int i = 0; i < n; i++)
        {
            Array.Copy(normalized, i * 6, output, i * 7, 6);
            output[i * 7 + 6] = normalized[i * 6 + 4] * normalized[i * 6 + 5];
        }
        return output;
    }

    // UNITER's norm_bb from pixel boxes, as its feature extraction writes it.
    static float[] NormalizedFromPixels(RegionFeatures r)
    {
        var (boxes, w, h) = PixelBoxes(r);
        var output = new float[r.BoxCount * 6];
        for (int i = 0; i < r.BoxCount; i++)
        {
            float x1 = boxes[i * 4], y1 = boxes[i * 4 + 1], x2 = boxes[i * 4 + 2], y2 = boxes[i * 4 + 3];
            output[i * 6] = x1 / w;
            output[i * 6 + 1] = y1 / h;
            output[i * 6 + 2] = x2 / w;
            output[i * 6 + 3] = y2 / h;
            output[i * 6 + 4] = (x2 - x1) / w;
            output[i * 6 + 5] = (y2 - y1) / h;
        }
        return output;
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
