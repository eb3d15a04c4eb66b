using ModelZoo.Models.Common;
using static TorchSharp.torch;

namespace ModelZoo.Models.TwoStream;

/// <summary>
/// One question about one image given as detector regions: token ids as the tokenizer made them, with [CLS] first
/// and [SEP] last (truncate to <see cref="IRegionVqaModel.MaxQuestionTokens"/>), region features [R, F] and boxes
/// [R, 4] in pixels (x1, y1, x2, y2) of an image of the given size.
/// </summary>
public sealed record RegionVqaInput(IReadOnlyList<long> TokenIds, Tensor Features, Tensor Boxes, int ImageWidth, int ImageHeight);

/// <summary>
/// What `modelzoo vqa` needs from a model that answers questions over region features (ViLBERT, LXMERT): the model
/// turns regions into its own spatial encoding (ViLBERT: a whole-image region first and 5-d locations; LXMERT:
/// boxes normalised to 0..1), pads a batch with masks, and returns one score per answer of its answer table.
/// </summary>
public interface IRegionVqaModel
{
    /// <summary>Number of answers the VQA head scores (3129 for the VQA v2 answer table).</summary>
    int AnswerCount { get; }
    /// <summary>Width of one region feature (2048 for bottom-up Faster R-CNN features).</summary>
    int RegionFeatureSize { get; }
    /// <summary>Longest token sequence, [CLS] and [SEP] included, that the model was trained with (truncate to it).</summary>
    int MaxQuestionTokens { get; }
    /// <summary>Most detector regions used per image (more are cut, in file order).</summary>
    int MaxRegions { get; }
    /// <summary>Answer logits [N, AnswerCount] (sigmoid gives the per-answer scores the models were trained for).</summary>
    Tensor AnswerLogits(IReadOnlyList<RegionVqaInput> questions);
}

/// <summary>Shared checks and padding for <see cref="IRegionVqaModel"/> implementations.</summary>
public static class RegionVqaBatch
{
    /// <summary>Pads token ids to the longest question: ids [N, L], attention mask [N, L] (1 = real), both int64.</summary>
    public static (Tensor Ids, Tensor Mask) PadTokens(IReadOnlyList<RegionVqaInput> questions, int maxTokens, Device device)
    {
        if (questions.Count == 0) throw new ArgumentException("no questions to answer");
        foreach (var q in questions)
        {
            if (q.TokenIds.Count < 2) throw new ArgumentException("a question needs at least [CLS] and [SEP]");
            if (q.TokenIds.Count > maxTokens)
                throw new ArgumentException($"a question has {q.TokenIds.Count} tokens, more than the {maxTokens} this model takes ([CLS] and [SEP] included); truncate it");
        }
        return TokenPadding.Pad(questions.Select(q => q.TokenIds).ToList(), device);
    }

    /// <summary>Checks one image's regions: features [R, featureSize], boxes [R, 4], a positive image size.</summary>
    public static void Check(RegionVqaInput q, int featureSize)
    {
        static string S(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
        if (q.Features.dim() != 2 || q.Features.shape[1] != featureSize)
            throw new ArgumentException($"region features must be [regions, {featureSize}], got {S(q.Features)}");
        if (q.Features.shape[0] < 1) throw new ArgumentException("the image has no regions");
        if (q.Boxes.dim() != 2 || q.Boxes.shape[1] != 4 || q.Boxes.shape[0] != q.Features.shape[0])
            throw new ArgumentException($"boxes must be [{q.Features.shape[0]}, 4] (x1, y1, x2, y2 in pixels), got {S(q.Boxes)}");
        if (q.ImageWidth <= 0 || q.ImageHeight <= 0)
            throw new ArgumentException($"image size must be positive, got {q.ImageWidth}x{q.ImageHeight}");
    }
}
