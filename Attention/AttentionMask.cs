using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Attention;

/// <summary>
/// What a query may attend to. All parts are optional and combine: a key padding mask per batch row, a boolean
/// "allowed" pattern, an additive bias, and causality. Shapes broadcast to [batch, heads, queries, keys].
/// </summary>
public sealed record AttentionMask
{
    /// <summary>[batch, keys]; true (or non-zero) = a real key, false (or 0) = padding.</summary>
    public Tensor? KeyPadding { get; init; }

    /// <summary>Boolean, broadcastable to [batch, heads, queries, keys]; true = may attend.</summary>
    public Tensor? Allowed { get; init; }

    /// <summary>Additive scores, broadcastable to [batch, heads, queries, keys] (e.g. ALiBi or relative position biases).</summary>
    public Tensor? Bias { get; init; }

    /// <summary>
    /// Query i may only see keys up to its own position. When there are fewer queries than keys (decoding with a
    /// key/value cache) the queries are the last ones: query i sits at absolute position keys - queries + i.
    /// </summary>
    public bool Causal { get; init; }

    public static AttentionMask None { get; } = new();

    public static AttentionMask FromPadding(Tensor? keyPadding) => new() { KeyPadding = keyPadding };

    public static AttentionMask CausalOnly { get; } = new() { Causal = true };

    public bool IsEmpty => KeyPadding is null && Allowed is null && Bias is null && !Causal;

    /// <summary>
    /// Boolean [.., queries, keys] combining padding, the allowed pattern and causality (true = may attend), or null
    /// when nothing restricts attention. Bias is not part of it.
    /// </summary>
    public Tensor? BuildAllowed(long queries, long keys, Device device)
    {
        Tensor? allowed = null;
        if (KeyPadding is not null)
        {
            if (KeyPadding.dim() != 2 || KeyPadding.shape[1] != keys)
                throw new ArgumentException($"key padding mask must be [batch, {keys}], got [{string.Join(", ", KeyPadding.shape)}]");
            var padding = KeyPadding.dtype == ScalarType.Bool ? KeyPadding : KeyPadding.ne(0);
            allowed = padding.to(device).unsqueeze(1).unsqueeze(1); // [B, 1, 1, Lk]
        }
        if (Allowed is not null)
        {
            var pattern = Allowed.dtype == ScalarType.Bool ? Allowed : Allowed.ne(0);
            pattern = pattern.to(device);
            allowed = allowed is null ? pattern : allowed.logical_and(pattern);
        }
        if (Causal)
        {
            var causal = CausalPattern(queries, keys, device);
            allowed = allowed is null ? causal : allowed.logical_and(causal);
        }
        return allowed;
    }

    /// <summary>[queries, keys] lower-triangular pattern aligned at the bottom right (see <see cref="Causal"/>).</summary>
    public static Tensor CausalPattern(long queries, long keys, Device device)
    {
        if (queries > keys) throw new ArgumentException($"causal attention needs at least as many keys as queries ({queries} > {keys})");
        return ones(queries, keys, dtype: ScalarType.Bool, device: device).tril(keys - queries);
    }
}
