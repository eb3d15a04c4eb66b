using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Vatt;

/// <summary>
/// DropToken (VATT): in training, N − ⌊rate·N⌋ of the N tokens are kept, one random subset for the whole batch (the
/// reference shuffles one index order and tiles it over the batch), kept in their grid order. Position embeddings are
/// added before, so the kept tokens still know where they came from. In evaluation every token is kept.
/// </summary>
public sealed class DropToken : nn.Module<Tensor, Tensor>
{
    public double Rate { get; }

    public DropToken(double rate) : base("drop_token")
    {
        if (rate < 0 || rate >= 1) throw new ArgumentException($"DropToken rate must be in [0, 1), got {rate}");
        Rate = rate;
    }

    /// <summary>How many of <paramref name="tokens"/> tokens survive in training.</summary>
    public long Kept(long tokens) => tokens - (long)Math.Floor(Rate * tokens + 1e-9);

    /// <summary>
    /// tokens [B, N, D] → [B, kept, D] and the kept positions (int64 [kept], ascending, shared by the batch) in
    /// training; unchanged and null in evaluation or when nothing would be dropped.
    /// </summary>
    public (Tensor Tokens, Tensor? Kept) Drop(Tensor tokens)
    {
        if (!training || Rate == 0) return (tokens, null);
        long count = tokens.shape[1], keep = Kept(count);
        if (keep == count) return (tokens, null);
        var kept = randperm(count, dtype: ScalarType.Int64, device: tokens.device).narrow(0, 0, keep).sort().Values;
        return (tokens.index_select(1, kept), kept);
    }

    public override Tensor forward(Tensor tokens) => Drop(tokens).Tokens;
}
