namespace ModelZoo.Processing.Regions;

/// <summary>
/// Detector region features of one image (bottom-up attention Faster R-CNN): one feature vector per box, row-major
/// arrays. What a file does not hold is null (a UNITER .npz has normalised boxes but no pixel boxes or image size).
/// </summary>
public sealed record RegionFeatures
{
    public required string ImageId { get; init; }

    /// <summary>Image size in pixels; 0 when the source does not say (UNITER .npz).</summary>
    public int ImageWidth { get; init; }
    public int ImageHeight { get; init; }

    public required int BoxCount { get; init; }
    public required int FeatureSize { get; init; }

    /// <summary>[BoxCount, FeatureSize].</summary>
    public required float[] Features { get; init; }

    /// <summary>[BoxCount, 4]: x1, y1, x2, y2 in pixels.</summary>
    public float[]? Boxes { get; init; }

    /// <summary>[BoxCount, 6]: x1, y1, x2, y2, width, height divided by the image size (UNITER's norm_bb).</summary>
    public float[]? NormalizedBoxes { get; init; }

    public long[]? ObjectIds { get; init; }
    public float[]? ObjectConfidences { get; init; }
    public long[]? AttributeIds { get; init; }
    public float[]? AttributeConfidences { get; init; }

    /// <summary>[BoxCount, SoftLabelSize]: the detector's class distribution per box (UNITER's soft_labels).</summary>
    public float[]? SoftLabels { get; init; }
    public int SoftLabelSize { get; init; }

    /// <summary>The feature row of box <paramref name="box"/>.</summary>
    public ReadOnlySpan<float> Feature(int box) => Features.AsSpan(box * FeatureSize, FeatureSize);

    /// <summary>
    /// The number of boxes UNITER keeps: those with confidence above <paramref name="threshold"/>, at least
    /// <paramref name="min"/> and at most <paramref name="max"/> (its compute_num_bb; defaults are UNITER's).
    /// </summary>
    public int UniterBoxCount(float threshold = 0.2f, int min = 10, int max = 100)
    {
        var confidences = ObjectConfidences ?? throw new InvalidOperationException($"image {ImageId}: no box confidences to count");
        int above = confidences.Count(c => c > threshold);
        return Math.Min(max, Math.Max(min, above));
    }
}
