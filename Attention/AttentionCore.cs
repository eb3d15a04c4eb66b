using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Attention;

/// <summary>Which implementation computes softmax(QKᵀ·scale + mask)V.</summary>
public enum AttentionKernel
{
    /// <summary>torch.nn.functional.scaled_dot_product_attention (flash / memory-efficient kernels where available).</summary>
    Fused,
    /// <summary>Plain matrix math with an explicit score matrix; exists to check the fused path in tests.</summary>
    Reference,
}

/// <summary>
/// The one attention core every model uses. Inputs are already projected; this splits heads, applies the mask,
/// runs the kernel and merges heads. A query whose keys are all masked gets a zero output (never NaN), and its
/// gradients are zero too.
/// </summary>
public static class AttentionCore
{
    /// <summary>[batch, length, heads·dim] → [batch, heads, length, dim].</summary>
    public static Tensor SplitHeads(Tensor x, int heads)
    {
        if (x.dim() != 3) throw new ArgumentException($"expected [batch, length, width], got [{string.Join(", ", x.shape)}]");
        long width = x.shape[2];
        if (width % heads != 0) throw new ArgumentException($"width {width} is not divisible by {heads} heads");
        return x.view(x.shape[0], x.shape[1], heads, width / heads).transpose(1, 2);
    }

    /// <summary>[batch, heads, length, dim] → [batch, length, heads·dim].</summary>
    public static Tensor MergeHeads(Tensor x) =>
        x.transpose(1, 2).reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]);

    /// <summary>
    /// q [B, Lq, H·Dk], k [B, Lk, H·Dk], v [B, Lk, H·Dv] → [B, Lq, H·Dv].
    /// <paramref name="scale"/> defaults to 1/√Dk. Dropout on the attention weights applies only when <paramref name="training"/>.
    /// </summary>
    public static Tensor Attend(Tensor q, Tensor k, Tensor v, int heads, AttentionMask? mask = null, double dropout = 0,
                                bool training = false, double? scale = null, AttentionKernel kernel = AttentionKernel.Fused)
    {
        var output = AttendHeads(SplitHeads(q, heads), SplitHeads(k, heads), SplitHeads(v, heads), mask, dropout, training, scale, kernel);
        return MergeHeads(output);
    }

    /// <summary>Same as <see cref="Attend"/> on inputs already split into heads: [B, H, L, D].</summary>
    public static Tensor AttendHeads(Tensor q, Tensor k, Tensor v, AttentionMask? mask = null, double dropout = 0,
                                     bool training = false, double? scale = null, AttentionKernel kernel = AttentionKernel.Fused)
    {
        long queries = q.shape[^2], keys = k.shape[^2], dim = q.shape[^1];
        if (k.shape[^1] != dim) throw new ArgumentException($"query head dim {dim} differs from key head dim {k.shape[^1]}");
        if (v.shape[^2] != keys) throw new ArgumentException($"{keys} keys but {v.shape[^2]} values");
        mask ??= AttentionMask.None;
        double defaultScale = 1.0 / Math.Sqrt(dim);
        if (scale is double s && Math.Abs(s - defaultScale) > 1e-12 * defaultScale)
            q = q * (s / defaultScale); // the fused kernel always scales by 1/√D
        double p = training ? dropout : 0.0;

        // A causal mask alone on a square score matrix can use the kernel's own causal path.
        bool kernelCausal = mask.Causal && mask.KeyPadding is null && mask.Allowed is null && mask.Bias is null && queries == keys;
        Tensor? allowed = kernelCausal ? null : mask.BuildAllowed(queries, keys, q.device);
        Tensor? bias = mask.Bias?.to(q.dtype).to(q.device);
        // A key counts only where it is allowed and its bias is not -inf; a row with no such key would be NaN.
        Tensor? usableKeys = bias is null ? allowed
            : allowed is null ? bias.gt(float.NegativeInfinity) : allowed.logical_and(bias.gt(float.NegativeInfinity));
        Tensor? rowHasKey = usableKeys?.any(-1, keepdim: true);

        Tensor? kernelMask;
        if (bias is null)
            kernelMask = allowed?.logical_or(rowHasKey!.logical_not()); // finite scores everywhere; those rows are zeroed below
        else
        {
            var zero = tensor(0f, q.dtype, q.device);
            kernelMask = allowed is null ? bias : where(allowed, bias, tensor(float.NegativeInfinity, q.dtype, q.device));
            kernelMask = where(rowHasKey!, kernelMask, zero); // rows without a key: finite scores, zeroed below
        }

        Tensor output = kernel == AttentionKernel.Fused
            ? nn.functional.scaled_dot_product_attention(q, k, v, kernelMask, p, kernelCausal)
            : Reference(q, k, v, kernelMask, kernelCausal, p);

        return rowHasKey is null ? output : output.masked_fill(rowHasKey.logical_not(), 0);
    }

    static Tensor Reference(Tensor q, Tensor k, Tensor v, Tensor? mask, bool causal, double dropout)
    {
        var scores = matmul(q, k.transpose(-2, -1)) / Math.Sqrt(q.shape[^1]);
        if (causal)
            scores = scores.masked_fill(AttentionMask.CausalPattern(q.shape[^2], k.shape[^2], q.device).logical_not(), float.NegativeInfinity);
        if (mask is not null)
            scores = mask.dtype == ScalarType.Bool ? scores.masked_fill(mask.logical_not(), float.NegativeInfinity) : scores + mask;
        var weights = scores.softmax(-1);
        if (dropout > 0) weights = nn.functional.dropout(weights, dropout, training: true);
        return matmul(weights, v);
    }
}
