using System.Diagnostics;
using ModelZoo.Attention;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.TwoStream;
using ModelZoo.Models.Uniter;
using ModelZoo.Models.Vilt;
using ModelZoo.Models.VisualBert;
using ModelZoo.Processing.Images;
using ModelZoo.Processing.Regions;
using ModelZoo.Tokenization;
using ModelZoo.Tokenization.Bert;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.OneStream;

/// <summary>One answer with its score (sigmoid for UNITER and ViLT, trained with binary cross-entropy; softmax for VisualBERT).</summary>
public sealed record VqaAnswer(string Answer, int Index, float Score);

/// <summary>
/// Detector regions of one image: features [regions, dim] and boxes [regions, 4] (x1, y1, x2, y2) in pixels of an
/// image of <paramref name="ImageWidth"/> × <paramref name="ImageHeight"/> (boxes already normalised to 0..1: give
/// 1 × 1). Each model turns the boxes into its own location input (UNITER 7-d, ViLBERT 5-d, LXMERT 4-d); VisualBERT
/// reads the features alone and needs no boxes.
/// </summary>
public sealed record DetectorRegions(Tensor Features, Tensor? Boxes = null, int ImageWidth = 1, int ImageHeight = 1)
{
    /// <summary>
    /// Regions read by the Processing library (a bottom-up-attention TSV line, a UNITER .npz): pixel boxes with the
    /// image size when the file has them, else UNITER's normalised boxes (image size 1 × 1).
    /// </summary>
    public static DetectorRegions From(RegionFeatures regions)
    {
        var features = tensor(regions.Features, new long[] { regions.BoxCount, regions.FeatureSize });
        if (regions.Boxes is not null && regions.ImageWidth > 0 && regions.ImageHeight > 0)
            return new DetectorRegions(features, tensor(regions.Boxes, new long[] { regions.BoxCount, 4 }), regions.ImageWidth, regions.ImageHeight);
        if (regions.NormalizedBoxes is not null)
        {
            int columns = regions.NormalizedBoxes.Length / Math.Max(1, regions.BoxCount);
            return new DetectorRegions(features, tensor(regions.NormalizedBoxes, new long[] { regions.BoxCount, columns }).narrow(1, 0, 4).contiguous());
        }
        return new DetectorRegions(features);
    }

    /// <summary>The first <paramref name="count"/> regions.</summary>
    public DetectorRegions Take(int count) => count >= Features.shape[0] ? this
        : this with { Features = Features.narrow(0, 0, count), Boxes = Boxes?.narrow(0, 0, count) };
}

/// <summary>
/// Visual question answering by name: create the model, load weights, tokenize the question, run the model on an
/// image (ViLT: normalised pixels [3, H, W]) or on detector regions (every <see cref="IRegionVqaModel"/>: UNITER,
/// VisualBERT, ViLBERT, LXMERT), and return the top answers. The answer names come from the checkpoint's
/// config.json id2label, else from a user file.
/// </summary>
public sealed class VqaPipeline : IDisposable
{
    readonly nn.Module _model;

    public ModelPreset Preset { get; }
    public ITextTokenizer Tokenizer { get; }
    public AnswerVocabulary Answers { get; }
    public Device Device { get; }
    /// <summary>The model's parameter type; inputs are converted to it.</summary>
    public ScalarType Dtype { get; }
    /// <summary>ViLT reads pixels; the region models read detector features.</summary>
    public bool ReadsPixels => _model is ViltModel;
    /// <summary>Text tokens the model takes at most ([CLS] and [SEP] included).</summary>
    public int MaxTextLength { get; }

    VqaPipeline(nn.Module model, ModelPreset preset, ITextTokenizer tokenizer, AnswerVocabulary answers, Device device, ScalarType dtype, int maxTextLength)
    {
        Dtype = dtype;
        _model = model;
        Preset = preset;
        Tokenizer = tokenizer;
        Answers = answers;
        Device = device;
        MaxTextLength = maxTextLength;
    }

    /// <summary>
    /// Creates <paramref name="modelName"/> (a VQA preset: vilt-b32-vqa, uniter-*-vqa, visualbert-vqa, lxmert-vqa,
    /// vilbert-multitask, the tiny ones), loads <paramref name="weightsPath"/> (null: random weights, for demos), and finds the answers: the
    /// given <paramref name="answersPath"/> when there is one (it overrides), else the checkpoint's config.json id2label. UNITER's cased WordPiece vocabulary
    /// comes from <paramref name="vocabPath"/> or a vocab.txt beside the weights; the others use bert-base-uncased.
    /// </summary>
    public static VqaPipeline Load(string modelName, string? weightsPath, string? answersPath = null, string? vocabPath = null,
                                   ModelCreateOptions? options = null, IModelCatalog? catalog = null)
    {
        catalog ??= ModelCatalog.Default;
        options ??= ModelCreateOptions.Default;
        var preset = catalog.Get(modelName);
        var tokenizer = TokenizerFor(preset, weightsPath, vocabPath);
        var model = catalog.Create(preset.Name, options with { WeightsPath = weightsPath });
        try
        {
            int outputs = AnswerCount(model, preset);
            var answers = (answersPath is not null ? AnswerVocabulary.Load(answersPath) : null)
                          ?? (weightsPath is not null ? AnswerVocabulary.FromCheckpointConfig(weightsPath) : null)
                          ?? (weightsPath is null
                              ? new AnswerVocabulary(Enumerable.Range(0, outputs).Select(i => $"answer_{i}").ToList(), "placeholder names (random weights)")
                              : throw new InvalidDataException($"{weightsPath}: no answer names: its config.json has no id2label; pass an answer file (--answers: a JSON list, ans2label or id2label JSON, or one answer a line)"));
            if (answers.Count != outputs)
                throw new InvalidDataException($"{answers.Source}: {answers.Count} answers, but the {preset.Name} head has {outputs} outputs");
            int maxText = model switch
            {
                ViltModel vilt => vilt.Config.MaxPositionEmbeddings,
                IRegionVqaModel region => region.MaxQuestionTokens,
                _ => throw new UnreachableException(),
            };
            return new VqaPipeline(model, preset, tokenizer, answers, TorchRuntime.ParseDevice(options.Device), TorchRuntime.ParseDtype(options.Dtype), maxText);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    static int AnswerCount(nn.Module model, ModelPreset preset) => model switch
    {
        ViltModel { Heads.VqaAnswers: int answers } => answers,
        IRegionVqaModel region => region.AnswerCount,
        _ => throw new NotSupportedException($"{preset.Name} is not a VQA model (VQA presets: {string.Join(", ", VqaPresetNames())})"),
    };

    /// <summary>Names of the presets this pipeline can run.</summary>
    public static IEnumerable<string> VqaPresetNames(IModelCatalog? catalog = null) =>
        (catalog ?? ModelCatalog.Default).List()
            .Where(p => p.Unavailable is null && p.Heads.Any(h => h.Contains("vqa", StringComparison.OrdinalIgnoreCase)))
            .Select(p => p.Name);

    static ITextTokenizer TokenizerFor(ModelPreset preset, string? weightsPath, string? vocabPath)
    {
        bool cased = preset.Config is UniterConfig { VocabSize: not 30522 };
        string? besideWeights = weightsPath is null ? null
            : Path.Combine(Directory.Exists(weightsPath) ? weightsPath : Path.GetDirectoryName(Path.GetFullPath(weightsPath)) ?? ".", "vocab.txt");
        string? path = vocabPath ?? (besideWeights is not null && File.Exists(besideWeights) ? besideWeights : null);
        if (path is not null)
        {
            var fromFile = BertWordPieceTokenizer.FromVocabFile(path, lowerCase: !cased);
            int? rows = preset.Config switch
            {
                ModelZoo.Models.Common.BertTextConfig bert => bert.VocabSize,
                ViltConfig vilt => vilt.VocabSize,
                _ => null,
            };
            if (rows is not null && fromFile.VocabularySize > rows)
                throw new InvalidDataException($"{path}: {fromFile.VocabularySize} tokens, but {preset.Name}'s word embeddings have {rows} rows: give the model's own vocab.txt");
            return fromFile;
        }
        if (cased)
            throw new FileNotFoundException($"{preset.Name} uses the cased bert-base-cased WordPiece vocabulary (28996 tokens), which is not bundled: " +
                                            "pass its vocab.txt (--vocab) or put it beside the weights");
        return BertWordPieceTokenizer.BaseUncased();
    }

    /// <summary>[CLS] question [SEP], truncated to <see cref="MaxTextLength"/>.</summary>
    public long[] EncodeQuestion(string question) =>
        Tokenizer.Encode(question, new EncodeOptions { MaxLength = MaxTextLength, Padding = ModelZoo.Tokenization.Padding.None }).InputIds.Select(i => (long)i).ToArray();

    /// <summary>
    /// ViLT's image processing for this model: shorter side to the model's image_size (384), longer at most 1333/800
    /// of it, multiples of the patch size (32), bicubic as PIL; mean and std 0.5.
    /// </summary>
    public ViltImageProcessor? ImageProcessor => _model is ViltModel vilt ? new ViltImageProcessor(vilt.Config.ImageSize, multiple: vilt.Config.PatchSize) : null;

    /// <summary>ViLT: the top answers for an image file (JPEG, PNG, WebP, BMP, GIF).</summary>
    public IReadOnlyList<VqaAnswer> Answer(string imagePath, string question, int top = 5)
    {
        var processor = ImageProcessor ?? throw new InvalidOperationException($"{Preset.Name} reads detector region features, not images");
        using var scope = NewDisposeScope();
        return Answer(processor.Process(ImageDecoder.Load(imagePath)), question, top);
    }

    /// <summary>
    /// Region models: the top answers for regions read from a feature file. UNITER keeps the boxes its data loader
    /// keeps (confidence above 0.2, at least 10, at most 100, in file order) when the file has confidences.
    /// </summary>
    public IReadOnlyList<VqaAnswer> Answer(RegionFeatures regions, string question, int top = 5)
    {
        using var scope = NewDisposeScope();
        var detected = DetectorRegions.From(regions);
        if (_model is UniterForVisualQuestionAnswering && regions.ObjectConfidences is not null)
            detected = detected.Take(regions.UniterBoxCount());
        return Answer(detected, question, top);
    }

    /// <summary>ViLT: the top answers for normalised pixels [3, H, W] (any size; see <see cref="ImageProcessor"/>).</summary>
    public IReadOnlyList<VqaAnswer> Answer(Tensor pixels, string question, int top = 5) => Answer(new[] { pixels }, new[] { question }, top)[0];

    /// <summary>ViLT, batched: one image per question; images may differ in size.</summary>
    public IReadOnlyList<IReadOnlyList<VqaAnswer>> Answer(IReadOnlyList<Tensor> pixels, IReadOnlyList<string> questions, int top = 5)
    {
        if (_model is not ViltModel vilt) throw new InvalidOperationException($"{Preset.Name} reads region features, not pixels");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var texts = questions.Select(EncodeQuestion).ToList();
        var inputs = ViltInputs.Collate(texts, pixels.Select(p => p.to(Dtype)).ToList(), Device);
        return TopAnswers(vilt.VqaLogits(inputs).sigmoid(), top);
    }

    /// <summary>Region models: the top answers for one image's detector regions.</summary>
    public IReadOnlyList<VqaAnswer> Answer(DetectorRegions regions, string question, int top = 5) => Answer(new[] { regions }, new[] { question }, top)[0];

    /// <summary>Region models, batched: one image's regions per question; region counts may differ.</summary>
    public IReadOnlyList<IReadOnlyList<VqaAnswer>> Answer(IReadOnlyList<DetectorRegions> regions, IReadOnlyList<string> questions, int top = 5)
    {
        if (_model is not IRegionVqaModel model) throw new InvalidOperationException($"{Preset.Name} reads pixels, not region features");
        if (regions.Count != questions.Count) throw new ArgumentException($"{questions.Count} questions but {regions.Count} images");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var inputs = regions.Select((r, i) =>
        {
            var boxes = r.Boxes ?? (_model is VisualBertForQuestionAnswering
                ? zeros(r.Features.shape[0], 4)
                : throw new ArgumentException($"{Preset.Name} needs each region's box (x1, y1, x2, y2)"));
            return new RegionVqaInput(EncodeQuestion(questions[i]), r.Features.to(Dtype), boxes.to(ScalarType.Float32), r.ImageWidth, r.ImageHeight);
        }).ToList();
        var logits = model.AnswerLogits(inputs);
        // VisualBERT was trained with a softmax over the answers; the others with a sigmoid per answer.
        return TopAnswers(_model is VisualBertForQuestionAnswering ? logits.softmax(-1) : logits.sigmoid(), top);
    }

    IReadOnlyList<IReadOnlyList<VqaAnswer>> TopAnswers(Tensor scores, int top)
    {
        if (top <= 0) throw new ArgumentException($"top must be positive, got {top}");
        var (values, indices) = scores.to(ScalarType.Float32).cpu().topk(Math.Min(top, Answers.Count), dim: -1);
        var result = new List<IReadOnlyList<VqaAnswer>>();
        for (int b = 0; b < scores.shape[0]; b++)
        {
            var v = values[b].data<float>().ToArray();
            var ix = indices[b].data<long>().ToArray();
            result.Add(ix.Select((index, k) => new VqaAnswer(Answers[(int)index], (int)index, v[k])).ToList());
        }
        return result;
    }

    public void Dispose() => _model.Dispose();
}
