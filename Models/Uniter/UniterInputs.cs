using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Uniter;

/// <summary>One text–image pair before batching: token ids ([CLS] ... [SEP]), region features [N, img_dim], boxes [N, 7].</summary>
public sealed record UniterExample(long[] TokenIds, Tensor Features, Tensor Boxes);

/// <summary>
/// A batch laid out as UNITER's collate functions lay it out (data/vqa.py vqa_collate): input_ids padded with 0,
/// position_ids [1, max_txt], features and boxes zero-padded to the most regions, attention_mask [B, max(txt+regions)]
/// with 1 on each item's real positions, and gather_index mapping the compact joint sequence into
/// cat([text, regions]) (data/data.py get_gather_index).
/// </summary>
public sealed record UniterInputs(Tensor InputIds, Tensor PositionIds, Tensor ImgFeat, Tensor ImgPosFeat, Tensor AttentionMask,
                                  Tensor GatherIndex, int[] TextLengths, int[] RegionCounts)
{
    /// <summary>Pads and gathers a list of examples. Tensors are created on <paramref name="device"/> (default CPU).</summary>
    public static UniterInputs Collate(IReadOnlyList<UniterExample> examples, Device? device = null)
    {
        if (examples.Count == 0) throw new ArgumentException("no examples to collate");
        device ??= CPU;
        int batch = examples.Count;
        var textLengths = examples.Select(e => e.TokenIds.Length).ToArray();
        var regionCounts = new int[batch];
        long featureDim = -1;
        for (int i = 0; i < batch; i++)
        {
            var e = examples[i];
            if (e.TokenIds.Length == 0) throw new ArgumentException($"example {i} has no tokens");
            if (e.Features.dim() != 2) throw new ArgumentException($"example {i}: features must be [regions, img_dim], got [{string.Join(", ", e.Features.shape)}]");
            if (e.Boxes.dim() != 2 || e.Boxes.shape[0] != e.Features.shape[0] || e.Boxes.shape[1] != UniterConfig.BoxFeatureDim)
                throw new ArgumentException($"example {i}: boxes must be [{e.Features.shape[0]}, {UniterConfig.BoxFeatureDim}], got [{string.Join(", ", e.Boxes.shape)}]");
            if (featureDim >= 0 && e.Features.shape[1] != featureDim)
                throw new ArgumentException($"example {i}: feature width {e.Features.shape[1]} differs from {featureDim}");
            featureDim = e.Features.shape[1];
            regionCounts[i] = (int)e.Features.shape[0];
        }
        int maxText = textLengths.Max(), maxRegions = Math.Max(1, regionCounts.Max());
        int outLength = Enumerable.Range(0, batch).Max(i => textLengths[i] + regionCounts[i]);

        var ids = new long[batch, maxText];
        var mask = new long[batch, outLength];
        var gather = new long[batch, outLength];
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < textLengths[b]; t++) ids[b, t] = examples[b].TokenIds[t];
            for (int p = 0; p < outLength; p++) gather[b, p] = p;
            for (int r = 0; r < regionCounts[b]; r++) gather[b, textLengths[b] + r] = maxText + r;
            for (int p = 0; p < textLengths[b] + regionCounts[b]; p++) mask[b, p] = 1;
        }
        var features = zeros(batch, maxRegions, featureDim, dtype: examples[0].Features.dtype);
        var boxes = zeros(batch, maxRegions, UniterConfig.BoxFeatureDim, dtype: examples[0].Boxes.dtype);
        using (no_grad())
        {
            for (int b = 0; b < batch; b++)
            {
                if (regionCounts[b] == 0) continue;
                features[b].narrow(0, 0, regionCounts[b]).copy_(examples[b].Features);
                boxes[b].narrow(0, 0, regionCounts[b]).copy_(examples[b].Boxes);
            }
        }
        return new UniterInputs(tensor(ids).to(device), arange(maxText, dtype: ScalarType.Int64).unsqueeze(0).to(device),
            features.to(device), boxes.to(device), tensor(mask).to(device), tensor(gather).to(device), textLengths, regionCounts);
    }

    /// <summary>
    /// UNITER's 7-d box features from pixel corners (<see cref="Processing.Regions.BoxFeatures.Uniter(Tensor, double, double)"/>,
    /// as its feature extraction writes norm_bb): x1, y1, x2, y2 divided by the image width/height, the width and height
    /// over the image's, and their product. boxes [N, 4] (x1, y1, x2, y2 in pixels) → [N, 7].
    /// </summary>
    public static Tensor BoxFeatures(Tensor corners, double imageWidth, double imageHeight) =>
        Processing.Regions.BoxFeatures.Uniter(corners, imageWidth, imageHeight);
}
