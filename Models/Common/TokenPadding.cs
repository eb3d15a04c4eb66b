using static TorchSharp.torch;

namespace ModelZoo.Models.Common;

/// <summary>Right-padding of token id lists into a batch, as every BERT-style collate does it.</summary>
public static class TokenPadding
{
    /// <summary>Token ids padded with 0 to the longest text, and their mask (1 = real token); both int64 [B, L].</summary>
    public static (Tensor Ids, Tensor Mask) Pad(IReadOnlyList<IReadOnlyList<long>> texts, Device? device = null)
    {
        int length = texts.Count == 0 ? 0 : texts.Max(t => t.Count);
        if (length == 0) throw new ArgumentException("every text is empty");
        var ids = new long[texts.Count, length];
        var mask = new long[texts.Count, length];
        for (int b = 0; b < texts.Count; b++)
        for (int t = 0; t < texts[b].Count; t++)
        {
            ids[b, t] = texts[b][t];
            mask[b, t] = 1;
        }
        return (tensor(ids, device: device), tensor(mask, device: device));
    }
}
