namespace ModelZoo.Processing.Regions;

/// <summary>
/// UNITER's per-image feature files (<c>&lt;image&gt;.npz</c>, the input of its convert_imgdir.py): features
/// [N, D], norm_bb [N, 6] (x1, y1, x2, y2, w, h over the image size), conf [N], soft_labels [N, classes]; float32,
/// or float16 as UNITER's own dumps store them. Only features and norm_bb are required.
/// </summary>
public static class UniterNpz
{
    public static RegionFeatures Read(string path)
    {
        var arrays = NpyArray.LoadNpz(path);
        NpyArray Required(string key) => arrays.TryGetValue(key, out var a) ? a
            : throw new InvalidDataException($"{path}: no '{key}' array (it holds {string.Join(", ", arrays.Keys)})");
        var features = Required("features");
        if (features.Rank != 2) throw new InvalidDataException($"{path}: features has shape ({string.Join(", ", features.Shape)}), expected (boxes, dim)");
        int n = (int)features.Shape[0];
        var normalized = Required("norm_bb");
        if (normalized.Rank != 2 || normalized.Shape[0] != n || normalized.Shape[1] < 6)
            throw new InvalidDataException($"{path}: norm_bb has shape ({string.Join(", ", normalized.Shape)}), expected ({n}, 6)");
        var boxes6 = normalized.Shape[1] == 6 ? normalized.ToFloats() : TakeColumns(normalized.ToFloats(), n, (int)normalized.Shape[1], 6);

        float[]? conf = null;
        if (arrays.TryGetValue("conf", out var c))
        {
            if (c.Count != n) throw new InvalidDataException($"{path}: conf has {c.Count} values for {n} boxes");
            conf = c.ToFloats();
        }
        float[]? soft = null;
        int classes = 0;
        if (arrays.TryGetValue("soft_labels", out var s))
        {
            if (s.Rank != 2 || s.Shape[0] != n) throw new InvalidDataException($"{path}: soft_labels has shape ({string.Join(", ", s.Shape)}), expected ({n}, classes)");
            soft = s.ToFloats();
            classes = (int)s.Shape[1];
        }
        return new RegionFeatures
        {
            ImageId = Path.GetFileNameWithoutExtension(path),
            BoxCount = n,
            FeatureSize = (int)features.Shape[1],
            Features = features.ToFloats(),
            NormalizedBoxes = boxes6,
            ObjectConfidences = conf,
            SoftLabels = soft,
            SoftLabelSize = classes,
        };
    }

    static float[] TakeColumns(float[] values, int rows, int columns, int keep)
    {
        var result = new float[rows * keep];
        for (int r = 0; r < rows; r++) Array.Copy(values, r * columns, result, r * keep, keep);
        return result;
    }
}
