using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Vatt;

/// <summary>
/// DropToken (VATT): in training, each sample keeps a random subset of its tokens — N − ⌊rate·N⌋ of N — in their
/// original order; position embeddings are added before, so the kept tokens still know where they came from.
/// In evaluation every token is kept.
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

    /// <summary>tokens [B, N, D] → [B, kept, D] in training, unchanged in evaluation.</summary>
    public override Tensor forward(Tensor tokens)
    {
        if (!training || Rate == 0) return tokens;
        long batch = tokens.shape[0], count = tokens.shape[1], keep = Kept(count);
        if (keep == count) return tokens;
        // A random permutation per sample; its first `keep` entries, sorted, are the tokens kept.
        var kept = rand(batch, count, device: tokens.device).argsort(1).narrow(1, 0, keep).sort(1).Values;
        return tokens.gather(1, kept.unsqueeze(2).expand(batch, keep, tokens.shape[2]));
    }
}
