using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Evaluation.Data;

/// <summary>Batch order and padding: seeded shuffling per epoch, fixed-size batches, sequences and feature sets padded with masks.</summary>
public static class Batching
{
    /// <summary>
    /// The example order of one epoch: a seeded permutation that depends only on (seed, epoch), so a run resumed at
    /// (epoch, batch) sees exactly the batches an uninterrupted run would. Without shuffling, 0..count-1.
    /// </summary>
    public static int[] EpochOrder(int count, long seed, int epoch, bool shuffle = true) =>
        shuffle ? SeededRandom.For(seed, epoch).Permutation(count) : Enumerable.Range(0, count).ToArray();

    /// <summary>Consecutive batches of <paramref name="order"/>; the last one may be short unless <paramref name="dropLast"/>.</summary>
    public static List<int[]> Batches(IReadOnlyList<int> order, int batchSize, bool dropLast = false)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), "batch size must be positive");
        var batches = new List<int[]>();
        for (int start = 0; start < order.Count; start += batchSize)
        {
            int size = Math.Min(batchSize, order.Count - start);
            if (size < batchSize && dropLast) break;
            batches.Add(Enumerable.Range(start, size).Select(i => order[i]).ToArray());
        }
        return batches;
    }

    /// <summary>
    /// Right-pads id sequences to the longest (or <paramref name="maxLength"/>, truncating longer rows):
    /// int64 ids [B, L] and mask [B, L] (1 = real token).
    /// </summary>
    public static (Tensor Ids, Tensor Mask) PadSequences(IReadOnlyList<IReadOnlyList<int>> rows, int padId = 0, int? maxLength = null)
    {
        int length = maxLength ?? (rows.Count == 0 ? 0 : rows.Max(r => r.Count));
        var ids = new long[rows.Count * length];
        var mask = new long[rows.Count * length];
        for (int b = 0; b < rows.Count; b++)
        {
            int n = Math.Min(rows[b].Count, length);
            for (int t = 0; t < length; t++)
            {
                ids[b * length + t] = t < n ? rows[b][t] : padId;
                mask[b * length + t] = t < n ? 1 : 0;
            }
        }
        return (tensor(ids, new long[] { rows.Count, length }), tensor(mask, new long[] { rows.Count, length }));
    }

    /// <summary>
    /// Pads per-example feature sets [n_i, D] (e.g. detector regions) to [B, max n, D] with zeros, and a mask [B, max n].
    /// </summary>
    public static (Tensor Features, Tensor Mask) PadFeatures(IReadOnlyList<Tensor> sets)
    {
        if (sets.Count == 0) throw new ArgumentException("no feature sets to pad");
        long dim = sets[0].shape[^1];
        foreach (var (s, i) in sets.Select((s, i) => (s, i)))
            if (s.dim() != 2 || s.shape[1] != dim)
                throw new ArgumentException($"feature set {i} has shape [{string.Join(", ", s.shape)}], expected [n, {dim}]");
        long longest = sets.Max(s => s.shape[0]);
        var features = zeros(new long[] { sets.Count, longest, dim }, dtype: sets[0].dtype);
        var mask = zeros(new long[] { sets.Count, longest }, dtype: ScalarType.Int64);
        using var _ = no_grad();
        for (int b = 0; b < sets.Count; b++)
        {
            long n = sets[b].shape[0];
            if (n == 0) continue;
            features[b].narrow(0, 0, n).copy_(sets[b]);
            mask[b].narrow(0, 0, n).fill_(1);
        }
        return (features, mask);
    }
}
