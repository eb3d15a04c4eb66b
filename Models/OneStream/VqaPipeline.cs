using System.Diagnostics;
using ModelZoo.Attention;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Uniter;
using ModelZoo.Models.Vilt;
using ModelZoo.Models.VisualBert;
using ModelZoo.Tokenization;
using ModelZoo.Tokenization.Bert;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.OneStream;

/// <summary>One answer with its score (sigmoid for UNITER and ViLT, trained with binary cross-entropy; softmax for VisualBERT).</summary>
public sealed record VqaAnswer(string Answer, int Index, float Score);

/// <summary>
/// Region features of one image: [regions, dim] detector features and, for UNITER, the 7-d box features
/// (x1, y1, x2, y2 normalised, w, h, w·h; <see cref="UniterInputs.BoxFeatures"/> makes them from pixel corners).
/// </summary>
public sealed record RegionFeatures(Tensor Features, Tensor? Boxes = null);

/// <summary>
/// Visual question answering with a one-stream model: create by name, load weights, tokenize the question, run the
/// model on an image (ViLT: normalised pixels [3, H, W]) or on region features (UNITER, VisualBERT), and return the
/// top answers. The answer names come from the checkpoint's config.json id2label, else from a user file.
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
    /// <summary>ViLT reads pixels; UNITER and VisualBERT read region features.</summary>
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
    /// Creates <paramref name="modelName"/> (a VQA preset: uniter-*-vqa, vilt-b32-vqa, visualbert-vqa, the tiny
    /// ones), loads <paramref name="weightsPath"/> (null: random weights, for demos), and finds the answers: the
    /// checkpoint's config.json id2label, else <paramref name="answersPath"/>. UNITER's cased WordPiece vocabulary
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
                UniterForVisualQuestionAnswering uniter => Math.Min(UniterMaxTextLength, uniter.Config.MaxPositionEmbeddings),
                VisualBertForQuestionAnswering visualBert => Math.Min(VisualBertMaxTextLength, visualBert.Config.MaxPositionEmbeddings),
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

    /// <summary>UNITER's VQA data loader keeps 60 question tokens (max_txt_len).</summary>
    public const int UniterMaxTextLength = 60;
    /// <summary>Questions are short; VisualBERT's VQA reader allows 128 tokens.</summary>
    public const int VisualBertMaxTextLength = 128;

    static int AnswerCount(nn.Module model, ModelPreset preset) => model switch
    {
        UniterForVisualQuestionAnswering uniter => uniter.NumAnswer,
        ViltModel { Heads.VqaAnswers: int answers } => answers,
        VisualBertForQuestionAnswering visualBert => visualBert.Config.NumLabels!.Value,
        _ => throw new NotSupportedException($"{preset.Name} is not a VQA model (VQA presets: {string.Join(", ", VqaPresetNames())})"),
    };

    /// <summary>Names of the presets this pipeline can run.</summary>
    public static IEnumerable<string> VqaPresetNames(IModelCatalog? catalog = null) =>
        (catalog ?? ModelCatalog.Default).List()
            .Where(p => p.Family is "uniter" or "vilt" or "visualbert" && p.Heads.Any(h => h.Contains("vqa", StringComparison.OrdinalIgnoreCase)))
            .Select(p => p.Name);

    static ITextTokenizer TokenizerFor(ModelPreset preset, string? weightsPath, string? vocabPath)
    {
        bool cased = preset.Config is UniterConfig { VocabSize: not 30522 };
        string? besideWeights = weightsPath is null ? null
            : Path.Combine(Directory.Exists(weightsPath) ? weightsPath : Path.GetDirectoryName(Path.GetFullPath(weightsPath)) ?? ".", "vocab.txt");
        string? path = vocabPath ?? (besideWeights is not null && File.Exists(besideWeights) ? besideWeights : null);
        if (path is not null) return BertWordPieceTokenizer.FromVocabFile(path, lowerCase: !cased);
        if (cased)
            throw new FileNotFoundException($"{preset.Name} uses the cased bert-base-cased WordPiece vocabulary (28996 tokens), which is not bundled: " +
                                            "pass its vocab.txt (--vocab) or put it beside the weights");
        return BertWordPieceTokenizer.BaseUncased();
    }

    /// <summary>[CLS] question [SEP], truncated to <see cref="MaxTextLength"/>.</summary>
    public long[] EncodeQuestion(string question) =>
        Tokenizer.Encode(question, new EncodeOptions { MaxLength = MaxTextLength, Padding = ModelZoo.Tokenization.Padding.None }).InputIds.Select(i => (long)i).ToArray();

    /// <summary>ViLT: the top answers for normalised pixels [3, H, W] (any size; see the ViLT image processing).</summary>
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

    /// <summary>UNITER / VisualBERT: the top answers for one image's region features.</summary>
    public IReadOnlyList<VqaAnswer> Answer(RegionFeatures regions, string question, int top = 5) => Answer(new[] { regions }, new[] { question }, top)[0];

    /// <summary>UNITER / VisualBERT, batched: one image's regions per question; region counts may differ.</summary>
    public IReadOnlyList<IReadOnlyList<VqaAnswer>> Answer(IReadOnlyList<RegionFeatures> regions, IReadOnlyList<string> questions, int top = 5)
    {
        if (regions.Count != questions.Count) throw new ArgumentException($"{questions.Count} questions but {regions.Count} images");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var texts = questions.Select(EncodeQuestion).ToList();
        switch (_model)
        {
            case UniterForVisualQuestionAnswering uniter:
            {
                var examples = regions.Select((r, i) => new UniterExample(texts[i], r.Features.to(Dtype),
                    (r.Boxes ?? throw new ArgumentException("UNITER needs the 7-d box features of each region")).to(Dtype))).ToList();
                return TopAnswers(uniter.forward(UniterInputs.Collate(examples, Device)).sigmoid(), top);
            }
            case VisualBertForQuestionAnswering visualBert:
                return TopAnswers(visualBert.forward(VisualBertInputs.Collate(texts, regions.Select(r => r.Features.to(Dtype)).ToList(), Device)).softmax(-1), top);
            default:
                throw new InvalidOperationException($"{Preset.Name} reads pixels, not region features");
        }
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
