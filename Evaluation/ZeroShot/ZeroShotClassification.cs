using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Evaluation.ZeroShot;

/// <summary>Top-1 and top-5 accuracy (fractions) of a zero-shot classifier.</summary>
public sealed record TopKAccuracy(double Top1, double Top5, int Count);

/// <summary>
/// Zero-shot classification as CLIP does it: class embeddings from prompt texts (each prompt embedding L2-normalised,
/// averaged over a class's prompts, normalised again), logits = scale * normalised image features . class embeddings,
/// and top-k accuracy from the logits.
/// </summary>
public static class ZeroShotClassification
{
    /// <summary>
    /// Class weights [classes, dim] from prompt embeddings [classes, prompts, dim] (or [classes, dim] for one prompt).
    /// </summary>
    public static Tensor ClassWeights(Tensor promptEmbeddings)
    {
        using var scope = NewDisposeScope();
        var e = promptEmbeddings.dim() == 2 ? promptEmbeddings.unsqueeze(1) : promptEmbeddings;
        if (e.dim() != 3) throw new ArgumentException($"prompt embeddings must be [classes, prompts, dim] or [classes, dim], got [{string.Join(", ", promptEmbeddings.shape)}]");
        var normalised = nn.functional.normalize(e.to(ScalarType.Float32), p: 2, dim: -1);
        return nn.functional.normalize(normalised.mean(new long[] { 1 }), p: 2, dim: -1).MoveToOuterDisposeScope();
    }

    /// <summary>Logits [images, classes] = scale * normalize(imageFeatures) . classWeights^T.</summary>
    public static Tensor Logits(Tensor imageFeatures, Tensor classWeights, double scale = 100.0)
    {
        using var scope = NewDisposeScope();
        var image = nn.functional.normalize(imageFeatures.to(ScalarType.Float32), p: 2, dim: -1);
        return (scale * image.matmul(classWeights.to(ScalarType.Float32).t())).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The fraction of rows whose label is among the k highest logits (equal logits rank by class index).
    /// </summary>
    public static double TopK(Tensor logits, IReadOnlyList<long> labels, int k)
    {
        if (logits.dim() != 2) throw new ArgumentException($"logits must be [samples, classes], got [{string.Join(", ", logits.shape)}]");
        int rows = (int)logits.shape[0], classes = (int)logits.shape[1];
        if (labels.Count != rows) throw new ArgumentException($"{labels.Count} labels for {rows} rows of logits");
        if (rows == 0) return 0;
        using var cpu = logits.detach().to(ScalarType.Float32, CPU).contiguous();
        var values = cpu.data<float>().ToArray();
        int hits = 0;
        for (int r = 0; r < rows; r++)
        {
            long label = labels[r];
            if (label < 0 || label >= classes) throw new ArgumentException($"label {label} of row {r} is outside 0..{classes - 1}");
            var row = values.AsSpan(r * classes, classes);
            float target = row[(int)label];
            if (float.IsNaN(target)) throw new ArgumentException($"row {r} has a NaN logit");
            int rank = 0;
            for (int c = 0; c < classes; c++)
                if (row[c] > target || row[c] == target && c < label) rank++;
            if (rank < k) hits++;
        }
        return (double)hits / rows;
    }

    public static TopKAccuracy Accuracy(Tensor logits, IReadOnlyList<long> labels) =>
        new(TopK(logits, labels, 1), TopK(logits, labels, 5), labels.Count);
}
