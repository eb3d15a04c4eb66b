using ModelZoo.Evaluation.Data;
using ModelZoo.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Training.Tasks;

/// <summary>
/// CLIP's contrastive pre-training over image-caption data, for any dual encoder (CLIP presets, demo-clip). A
/// training example is an image; each time it is drawn, one of its captions is picked at random (the task's
/// SeededRandom, so resumes are exact). The loss is CLIP's symmetric InfoNCE over the batch: logits =
/// exp(logit_scale) x cos(image, caption) [B, B], the mean of the image-to-text and text-to-image cross-entropies
/// against the diagonal. The learnable logit_scale is clamped to [0, ln 100] in place before every step (the clamp
/// OpenCLIP applies after each optimizer step, so the temperature never goes below 0.01) and clamped again where
/// used. Evaluation: image-text retrieval recall on the validation images (textbook R@1/5/10) and the current scale.
/// </summary>
public sealed class ContrastiveImageTextPretraining : ITrainingTask
{
    public const string TaskName = "clip-contrastive";
    public static readonly double MaxLogitScale = Math.Log(100);

    readonly IDualEncoder _model;
    readonly IReadOnlyList<CaptionItem> _train, _validation;
    readonly Parameter? _logitScale;

    public int EvalBatchSize { get; init; } = 64;

    public ContrastiveImageTextPretraining(IDualEncoder model, IReadOnlyList<CaptionItem> train, IReadOnlyList<CaptionItem> validation)
    {
        _model = model;
        _train = train;
        _validation = validation;
        foreach (var (item, i) in train.Select((item, i) => (item, i)))
            if (item.Captions.Count == 0) throw new InvalidDataException($"training image {i} ({item.Image.Path ?? "pixels"}) has no caption");
        _logitScale = model.Module.named_parameters().Where(p => p.name == "logit_scale" || p.name.EndsWith(".logit_scale", StringComparison.Ordinal))
            .Select(p => p.parameter).FirstOrDefault();
    }

    public nn.Module Model => _model.Module;
    public int TrainingExamples => _train.Count;

    /// <summary>The parameter holding log(1/τ), when the model names one logit_scale.</summary>
    public Parameter? LogitScaleParameter => _logitScale;

    /// <summary>Clamps logit_scale to [0, ln 100] in place (before every step, and once more before the model is saved).</summary>
    public void ClampLogitScale()
    {
        if (_logitScale is null) return;
        using var _ = no_grad();
        _logitScale.clamp_(0, MaxLogitScale);
    }

    public Tensor Loss(IReadOnlyList<int> batch, TrainingContext context)
    {
        ClampLogitScale();
        var indices = batch.ToList();
        // A contrastive loss needs negatives: a lone image (an epoch's short last batch) borrows another.
        if (indices.Count == 1 && _train.Count > 1)
        {
            int other = context.Random.NextInt(_train.Count - 1);
            indices.Add(other >= indices[0] ? other + 1 : other);
        }
        batch = indices;
        var captions = batch.Select(i => _train[i].Captions[context.Random.NextInt(_train[i].Captions.Count)]).ToList();
        var image = _model.EncodeImages(batch.Select(i => _train[i].Image).ToList()).to(ScalarType.Float32);
        var text = _model.EncodeTexts(captions).to(ScalarType.Float32);
        var scale = _model.LogitScale().to(ScalarType.Float32).clamp(max: 100);
        return ContrastiveLosses.SymmetricInfoNce(scale * image.matmul(text.t()));
    }

    public IReadOnlyDictionary<string, double> Evaluate(TrainingContext context)
    {
        var metrics = new Dictionary<string, double>();
        using (var scope = NewDisposeScope()) metrics["logit_scale"] = _model.LogitScale().to(ScalarType.Float32).clamp(max: 100).item<float>();
        if (_validation.Count == 0) return metrics;
        var recall = RetrievalTraining.EvaluateRecall(_model, _validation, EvalBatchSize);
        metrics["txt_r1"] = recall.TxtR1;
        metrics["txt_r5"] = recall.TxtR5;
        metrics["txt_r10"] = recall.TxtR10;
        metrics["img_r1"] = recall.ImgR1;
        metrics["img_r5"] = recall.ImgR5;
        metrics["img_r10"] = recall.ImgR10;
        metrics["r_mean"] = recall.RMean;
        return metrics;
    }

    /// <summary>
    /// Image-caption data: a retrieval manifest (<c>{"task": "retrieval", "captions": "dataset_coco.json", "splits":
    /// ["train"], "images": "folder"}</c>: the Karpathy layout, as `modelzoo demo --write-data` writes it), or an image
    /// folder with a caption file beside each image (<see cref="CaptionFolder"/>).
    /// </summary>
    public static List<CaptionItem> ReadData(string path)
    {
        if (Directory.Exists(path))
            return CaptionFolder.Scan(path).Select(i => new CaptionItem(VisualInput.FromFile(i.Image), i.Captions)).ToList();
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such data manifest or image folder", path);
        var items = TaskManifest.Load(path).ReadRetrieval();
        if (items.Count == 0) throw new InvalidDataException($"{path}: the manifest's splits hold no images");
        return items;
    }
}
