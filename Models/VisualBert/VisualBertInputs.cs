using ModelZoo.Models.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.VisualBert;

/// <summary>
/// Inputs of VisualBertModel: text ids [B, Lt] and mask (1 = real), region features [B, Nv, visual_embedding_dim]
/// and their mask, optional text and visual token types (visual default 1).
/// </summary>
public sealed record VisualBertInputs(Tensor InputIds, Tensor? TextMask, Tensor VisualEmbeds, Tensor? VisualMask,
                                      Tensor? TokenTypeIds = null, Tensor? VisualTokenTypeIds = null)
{
    /// <summary>Pads texts with 0 and region features with zero rows; each features tensor is [regions, dim].</summary>
    public static VisualBertInputs Collate(IReadOnlyList<long[]> texts, IReadOnlyList<Tensor> features, Device? device = null)
    {
        if (texts.Count == 0 || texts.Count != features.Count)
            throw new ArgumentException($"need one feature set per text (got {texts.Count} texts, {features.Count} feature sets)");
        var (ids, textMask) = TokenPadding.Pad(texts);
        var (visual, visualMask) = PadRegions(features);
        device ??= CPU;
        return new VisualBertInputs(ids.to(device), textMask.to(device), visual.to(device), visualMask.to(device));
    }

    /// <summary>[regions, dim] tensors → [B, max regions, dim] zero-padded and their mask [B, max regions].</summary>
    public static (Tensor Features, Tensor Mask) PadRegions(IReadOnlyList<Tensor> features)
    {
        for (int i = 0; i < features.Count; i++)
            if (features[i].dim() != 2 || features[i].shape[1] != features[0].shape[1])
                throw new ArgumentException($"features {i} must be [regions, {features[0].shape[^1]}], got [{string.Join(", ", features[i].shape)}]");
        long regions = Math.Max(1, features.Max(f => f.shape[0]));
        var padded = zeros(features.Count, regions, features[0].shape[1], dtype: features[0].dtype);
        var mask = zeros(features.Count, regions, dtype: ScalarType.Int64);
        using (no_grad())
        {
            for (int b = 0; b < features.Count; b++)
            {
                long n = features[b].shape[0];
                if (n == 0) continue;
                padded[b].narrow(0, 0, n).copy_(features[b]);
                mask[b].narrow(0, 0, n).fill_(1);
            }
        }
        return (padded, mask);
    }
}
