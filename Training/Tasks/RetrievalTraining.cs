using ModelZoo.Evaluation.Retrieval;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Training.Tasks;

/// <summary>A retrieval model: a dual encoder (embeddings compared by dot product) or a cross encoder (a match score per pair).</summary>
public interface IRetrievalModel : IDisposable
{
    nn.Module Module { get; }
}

/// <summary>Separate image and text towers: L2-normalised embeddings and a (learned) logit scale, as CLIP.</summary>
public interface IDualEncoder : IRetrievalModel
{
    /// <summary>L2-normalised image embeddings [B, D].</summary>
    Tensor EncodeImages(IReadOnlyList<VisualInput> images);
    /// <summary>L2-normalised text embeddings [B, D].</summary>
    Tensor EncodeTexts(IReadOnlyList<string> texts);
    /// <summary>The multiplier of cosine similarities in the contrastive loss (exp of a learned log-scale).</summary>
    Tensor LogitScale();
}

/// <summary>One model over the joint (text, image) input: an image-text matching logit per pair (UNITER, ViLT).</summary>
public interface ICrossEncoder : IRetrievalModel
{
    /// <summary>Match logits [B] for (caption, image) pairs.</summary>
    Tensor MatchLogits(IReadOnlyList<string> captions, IReadOnlyList<VisualInput> images);
}

/// <summary>An image with its captions.</summary>
public sealed record CaptionItem(VisualInput Image, IReadOnlyList<string> Captions);

/// <summary>
/// Image-text retrieval fine-tuning. Training examples are (caption, image) pairs. Dual encoders learn with the
/// symmetric contrastive loss over the batch (each caption against every image of the batch and back); cross
/// encoders with image-text matching: each positive pair and <see cref="Negatives"/> sampled negatives (the caption
/// with another image, or the image with another image's caption), binary cross-entropy. Evaluation scores every
/// caption against every image of the validation set and reports R@1/5/10 (textbook definition).
/// </summary>
public sealed class RetrievalTraining : ITrainingTask
{
    readonly IRetrievalModel _model;
    readonly IReadOnlyList<CaptionItem> _train, _validation;
    readonly List<(int Image, int Caption)> _pairs = new();

    public int Negatives { get; init; } = 1;
    public int EvalBatchSize { get; init; } = 64;

    public RetrievalTraining(IRetrievalModel model, IReadOnlyList<CaptionItem> train, IReadOnlyList<CaptionItem> validation)
    {
        if (model is not (IDualEncoder or ICrossEncoder)) throw new ArgumentException("a retrieval model must be a dual encoder or a cross encoder");
        _model = model;
        _train = train;
        _validation = validation;
        for (int i = 0; i < train.Count; i++)
            for (int c = 0; c < train[i].Captions.Count; c++) _pairs.Add((i, c));
    }

    public nn.Module Model => _model.Module;
    public int TrainingExamples => _pairs.Count;

    public Tensor Loss(IReadOnlyList<int> batch, TrainingContext context)
    {
        var pairs = batch.Select(i => _pairs[i]).ToList();
        var captions = pairs.Select(p => _train[p.Image].Captions[p.Caption]).ToList();
        var images = pairs.Select(p => _train[p.Image].Image).ToList();
        if (_model is IDualEncoder dual)
        {
            var text = dual.EncodeTexts(captions).to(ScalarType.Float32);
            var image = dual.EncodeImages(images).to(ScalarType.Float32);
            var logits = dual.LogitScale().to(ScalarType.Float32) * text.matmul(image.t());
            // Pairs of the batch that share an image are all positives: soft targets spread over them.
            var owner = tensor(pairs.Select(p => (long)p.Image).ToArray(), device: logits.device);
            var same = owner.unsqueeze(1).eq(owner.unsqueeze(0)).to(ScalarType.Float32);
            var targets = same / same.sum(1, keepdim: true);
            var textToImage = -(targets * nn.functional.log_softmax(logits, 1)).sum(1).mean();
            var imageToText = -(targets * nn.functional.log_softmax(logits.t(), 1)).sum(1).mean();
            return (textToImage + imageToText) / 2;
        }
        var cross = (ICrossEncoder)_model;
        var allCaptions = new List<string>(captions);
        var allImages = new List<VisualInput>(images);
        var labels = Enumerable.Repeat(1f, pairs.Count).ToList();
        foreach (var (imageIndex, _) in pairs)
        {
            for (int n = 0; n < Negatives; n++)
            {
                int other = OtherImage(imageIndex, context);
                if (context.Random.NextInt(2) == 0)
                {
                    allCaptions.Add(_train[imageIndex].Captions[context.Random.NextInt(_train[imageIndex].Captions.Count)]);
                    allImages.Add(_train[other].Image);
                }
                else
                {
                    allCaptions.Add(_train[other].Captions[context.Random.NextInt(_train[other].Captions.Count)]);
                    allImages.Add(_train[imageIndex].Image);
                }
                labels.Add(0f);
            }
        }
        var scores = cross.MatchLogits(allCaptions, allImages).to(ScalarType.Float32);
        return nn.functional.binary_cross_entropy_with_logits(scores, tensor(labels.ToArray(), device: scores.device));
    }

    int OtherImage(int image, TrainingContext context)
    {
        if (_train.Count < 2) throw new InvalidOperationException("image-text matching needs at least two training images for negatives");
        int other = context.Random.NextInt(_train.Count - 1);
        return other >= image ? other + 1 : other;
    }

    public IReadOnlyDictionary<string, double> Evaluate(TrainingContext context)
    {
        if (_validation.Count == 0) return new Dictionary<string, double>();
        var recall = EvaluateRecall(_model, _validation, EvalBatchSize);
        return new Dictionary<string, double>
        {
            ["txt_r1"] = recall.TxtR1, ["txt_r5"] = recall.TxtR5, ["txt_r10"] = recall.TxtR10,
            ["img_r1"] = recall.ImgR1, ["img_r5"] = recall.ImgR5, ["img_r10"] = recall.ImgR10, ["r_mean"] = recall.RMean,
        };
    }

    /// <summary>Recall over a set of images and their captions.</summary>
    public static RetrievalRecall EvaluateRecall(IRetrievalModel model, IReadOnlyList<CaptionItem> items, int batchSize = 64)
    {
        using var scope = NewDisposeScope();
        var scores = ScoreMatrix(model, items, batchSize, out var owner);
        return RetrievalMetrics.Compute(scores, RetrievalMapping.FromCaptionImages(owner, items.Count));
    }

    /// <summary>The [captions x images] score matrix of a set (captions in item order), and each caption's image.</summary>
    public static Tensor ScoreMatrix(IRetrievalModel model, IReadOnlyList<CaptionItem> items, int batchSize, out List<int> captionImage)
    {
        var captions = new List<string>();
        captionImage = new List<int>();
        for (int i = 0; i < items.Count; i++)
            foreach (var c in items[i].Captions) { captions.Add(c); captionImage.Add(i); }
        bool training = model.Module.training;
        model.Module.eval();
        using var _ = no_grad();
        try
        {
            if (model is IDualEncoder dual)
            {
                // One scope per chunk: only the embeddings outlive it, not the towers' activations.
                static Tensor Embed<T>(IReadOnlyList<T> all, int size, Func<IReadOnlyList<T>, Tensor> encode) => cat(Chunks(all, size).Select(chunk =>
                {
                    using var chunkScope = NewDisposeScope();
                    return encode(chunk).to(ScalarType.Float32).cpu().MoveToOuterDisposeScope();
                }).ToList(), 0);
                var text = Embed(captions, batchSize, dual.EncodeTexts);
                var image = Embed(items.Select(i => i.Image).ToList(), batchSize, dual.EncodeImages);
                return text.matmul(image.t());
            }
            var cross = (ICrossEncoder)model;
            var matrix = new float[captions.Count * items.Count];
            var pairs = Enumerable.Range(0, captions.Count).SelectMany(c => Enumerable.Range(0, items.Count).Select(i => (c, i))).ToList();
            foreach (var chunk in Chunks(pairs, batchSize))
            {
                using var chunkScope = NewDisposeScope();
                var logits = cross.MatchLogits(chunk.Select(p => captions[p.c]).ToList(), chunk.Select(p => items[p.i].Image).ToList()).to(ScalarType.Float32).cpu();
                var values = logits.data<float>().ToArray();
                for (int k = 0; k < chunk.Count; k++) matrix[chunk[k].c * items.Count + chunk[k].i] = values[k];
            }
            return tensor(matrix, new long[] { captions.Count, items.Count });
        }
        finally
        {
            if (training) model.Module.train();
        }
    }

    static IEnumerable<List<T>> Chunks<T>(IReadOnlyList<T> items, int size)
    {
        for (int start = 0; start < items.Count; start += size) yield return items.Skip(start).Take(size).ToList();
    }
}
