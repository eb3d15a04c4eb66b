using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Vatt;

/// <summary>
/// How VATT resizes a position table to an input with another number of positions (the reference's
/// ExpandableEmbedding): the B learned rows sit at x = j / B, the S wanted rows are read at x = i / S, through the
/// order-3 polyharmonic spline (kernel |x − c|³ plus a linear term, no smoothing) that passes through every learned row,
/// as tensorflow_addons' interpolate_spline computes it. In one dimension that spline is the natural cubic spline,
/// continued linearly past the last learned row. The map is linear in the table, so it is a matrix [S, B] applied to
/// it: gradients reach the table as in the reference.
/// </summary>
public static class PositionInterpolation
{
    const int CacheLimit = 64;
    // Keyed by dtype and device too, so a forward pass on a GPU or in bfloat16 does not copy the matrix from the host
    // each time. Guarded by the lock; callers get their own handle (a detached view sharing the storage), so an
    // evicted entry can be disposed while a caller still uses the matrix.
    static readonly Dictionary<(long Buckets, long Size, ScalarType Dtype, DeviceType DeviceType, int DeviceIndex), Tensor> Cache = new();
    static readonly object CacheLock = new();

    /// <summary>table [B, D] → [S, D]: the table itself when S = B, else the spline read at S evenly spaced points.</summary>
    public static Tensor Resize(Tensor table, long size)
    {
        if (table.dim() != 2) throw new ArgumentException($"a position table must be [buckets, width], got [{string.Join(", ", table.shape)}]");
        if (size <= 0) throw new ArgumentException($"cannot resize a position table to {size} positions");
        long buckets = table.shape[0];
        if (size == buckets) return table;
        // One learned row: the spline degenerates (its linear system is singular); every position gets that row.
        if (buckets == 1) return table.expand(size, table.shape[1]);
        using var matrix = Matrix(buckets, size, table.dtype, table.device);
        return matmul(matrix, table);
    }

    /// <summary>The [size, buckets] float64 CPU matrix taking the learned rows to the resized ones (the caller's handle).</summary>
    public static Tensor Matrix(long buckets, long size) => Matrix(buckets, size, ScalarType.Float64, CPU);

    /// <summary>The resize matrix [size, buckets] in <paramref name="dtype"/> on <paramref name="device"/> (the caller's handle).</summary>
    public static Tensor Matrix(long buckets, long size, ScalarType dtype, Device device)
    {
        var key = (buckets, size, dtype, device.type, device.index);
        lock (CacheLock)
        {
            if (!Cache.TryGetValue(key, out var cached))
            {
                if (Cache.Count >= CacheLimit)
                {
                    foreach (var evicted in Cache.Values) evicted.Dispose();
                    Cache.Clear();
                }
                cached = Build(buckets, size, dtype, device);
                Cache[key] = cached;
            }
            return cached.detach();
        }
    }

    /// <summary>The cached matrices with their keys (for tests).</summary>
    internal static List<((long Buckets, long Size, ScalarType Dtype, DeviceType DeviceType, int DeviceIndex) Key, Tensor Matrix)> CacheSnapshot()
    {
        lock (CacheLock) return Cache.Select(kv => (kv.Key, kv.Value)).ToList();
    }

    static Tensor Build(long buckets, long size, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var centers = arange(buckets, dtype: ScalarType.Float64) / buckets;  // [B]
        var queries = arange(size, dtype: ScalarType.Float64) / size;        // [S]
        // Interpolation system [[A, P], [Pᵀ, 0]] with A_ij = |c_i − c_j|³ and P = [c, 1].
        var a = (centers.unsqueeze(1) - centers.unsqueeze(0)).abs().pow(3);
        var p = stack(new[] { centers, ones_like(centers) }, 1);           // [B, 2]
        var system = cat(new[]
        {
            cat(new[] { a, p }, 1),
            cat(new[] { p.t(), zeros(2, 2, dtype: ScalarType.Float64) }, 1),
        }, 0);                                                               // [B + 2, B + 2]
        // Spline coefficients per unit table row: solve(system, [I; 0]) → [B + 2, B].
        var unit = cat(new[] { eye(buckets, dtype: ScalarType.Float64), zeros(2, buckets, dtype: ScalarType.Float64) }, 0);
        var coefficients = linalg.solve(system, unit);
        // Evaluation at the queries: [|q − c|³, q, 1] · coefficients → [S, B].
        var basis = cat(new[]
        {
            (queries.unsqueeze(1) - centers.unsqueeze(0)).abs().pow(3),
            queries.unsqueeze(1),
            ones(size, 1, dtype: ScalarType.Float64),
        }, 1);
        var matrix = matmul(basis, coefficients).to(dtype, device);
        // Cached across calls: it must outlive every caller's dispose scope.
        return matrix.DetachFromDisposeScope();
    }
}
