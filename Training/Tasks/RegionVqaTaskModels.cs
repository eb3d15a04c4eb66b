using System.Collections.Concurrent;
using System.Text.Json;
using ModelZoo.Evaluation.Data;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.TwoStream;
using ModelZoo.Tokenization;
using ModelZoo.Tokenization.Bert;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Training.Tasks;

/// <summary>
/// VQA over detector regions for every preset whose model implements <see cref="IRegionVqaModel"/> and whose family
/// has no adapter of its own (ViLBERT, LXMERT): questions are tokenized with the BERT WordPiece vocabulary the preset
/// declares (a cased one from --vocab), regions come from region files. The model's answer head keeps its size (3129
/// for the published heads); a vocabulary of K answers uses its first K outputs, so a fine-tuned folder reloads into
/// the same preset.
/// </summary>
public sealed class RegionVqaTaskModels : IFallbackTaskModelProvider
{
    static readonly ConcurrentDictionary<string, bool> IsRegionVqa = new(StringComparer.OrdinalIgnoreCase);

    public bool Handles(string model, ModelPreset? preset) => preset is { Unavailable: null } && IsRegionVqa.GetOrAdd(preset.Name, _ => BuildsRegionVqa(preset));

    public IReadOnlyList<string> Tasks(string model, ModelPreset? preset) => new[] { "vqa" };

    public IVqaModel CreateVqa(TaskModelRequest request)
    {
        var preset = request.Preset ?? throw new ArgumentException($"'{request.Model}' is not a catalog preset");
        var answers = request.Answers ?? throw new ArgumentException("VQA needs an answer vocabulary");
        var module = ModelCatalog.Default.Create(preset.Name, new ModelCreateOptions { Training = true, Seed = request.Seed, Device = request.Device });
        // Pre-trained backbones (model_LXRT.pth, ViLBERT's pretrained_model.bin) lack the VQA head or have another
        // size of it: the backbone must load, the heads load where they fit.
        return RegionVqaAdapter.ForTask(module, preset, request, answers, reader => preset.KeyMapFor?.Invoke(reader) ?? KeyMap.Identity, HeadPrefixes(module));
    }

    public IRetrievalModel CreateRetrieval(TaskModelRequest request) =>
        throw new NotSupportedException($"'{request.Model}' has no retrieval adapter here (region VQA only)");

    public JsonElement Describe(IDisposable taskModel) => JsonSerializer.SerializeToElement(new { tokenizer = ((RegionVqaAdapter)taskModel).TokenizerName });

    /// <summary>
    /// Every top-level module except the backbone (the child holding the most parameters) is a head; ViLBERT's task
    /// token embeddings are new when fine-tuning from pretrained_model.bin, which has none, so they may be missing too.
    /// </summary>
    static string[] HeadPrefixes(nn.Module model)
    {
        var children = model.named_children().Select(c => (c.name, Count: c.module.parameters().Sum(p => p.numel()))).ToList();
        var backbone = children.MaxBy(c => c.Count).name;
        var taskTokens = model.named_parameters().Select(p => p.name).Where(n => n.Contains(".task_embeddings.", StringComparison.Ordinal));
        return children.Where(c => c.name != backbone).Select(c => c.name + ".").Concat(taskTokens).ToArray();
    }

    static bool BuildsRegionVqa(ModelPreset preset)
    {
        // Build on the meta device: no memory, just the type.
        lock (IsRegionVqa)
        {
            var previous = get_default_device();
            set_default_device(META);
            try
            {
                using var model = preset.Build();
                return model is IRegionVqaModel;
            }
            catch (Exception e) when (e is NotSupportedException or InvalidOperationException or ArgumentException)
            {
                return false;
            }
            finally
            {
                set_default_device(previous);
            }
        }
    }
}

/// <summary>An <see cref="IRegionVqaModel"/> as the VQA task uses it: questions tokenized, regions read, the first <c>answers</c> logits.</summary>
public sealed class RegionVqaAdapter : IVqaModel, IUsesVocabularyFile
{
    readonly IRegionVqaModel _model;
    readonly ITextTokenizer _tokenizer;

    public RegionVqaAdapter(nn.Module module, int answers, ITextTokenizer tokenizer)
    {
        _model = module as IRegionVqaModel ?? throw new ArgumentException($"{module.GetType().Name} does not answer questions over regions (IRegionVqaModel)");
        if (answers > _model.AnswerCount)
            throw new ArgumentException($"the vocabulary has {answers} answers but the model's answer head has {_model.AnswerCount}: use --answers {_model.AnswerCount} or fewer");
        Module = module;
        Answers = answers;
        _tokenizer = tokenizer;
    }

    public nn.Module Module { get; }
    public int Answers { get; }
    public string? VocabularyFile { get; init; }

    /// <summary>
    /// A new task model as a provider hands it out: the request's pre-trained weights loaded with the task heads under
    /// <paramref name="headPrefixes"/> where they fit (<see cref="TaskWeights.LoadWithTaskHead"/>; not when rebuilding a
    /// fine-tuned folder), train mode, the preset's WordPiece vocabulary. Disposes the model when anything fails.
    /// </summary>
    public static RegionVqaAdapter ForTask(nn.Module model, ModelPreset preset, TaskModelRequest request, AnswerVocabulary answers,
        Func<ICheckpointReader, KeyMap> keyMap, params string[] headPrefixes)
    {
        try
        {
            if (request.Saved is null && request.WeightsPath is string path) TaskWeights.LoadWithTaskHead(model, path, keyMap, headPrefixes);
            model.train();
            var (tokenizer, vocab) = BertTaskTokenizer.For(preset, request.VocabPath, request.Saved is null ? request.WeightsPath : null,
                BertTaskTokenizer.WordEmbeddingRows(model));
            return new RegionVqaAdapter(model, answers.Count, tokenizer) { VocabularyFile = vocab };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
    public string TokenizerName => _tokenizer.Name;

    public Tensor Logits(IReadOnlyList<string> questions, IReadOnlyList<VisualInput> images)
    {
        var options = new EncodeOptions { MaxLength = _model.MaxQuestionTokens, Padding = ModelZoo.Tokenization.Padding.None };
        var inputs = questions.Select((q, i) =>
        {
            var ids = _tokenizer.Encode(q, options).InputIds.Select(x => (long)x).ToList();
            var (features, boxes, width, height) = images[i].Regions();
            return new RegionVqaInput(ids, features, boxes, width, height);
        }).ToList();
        var logits = _model.AnswerLogits(inputs);
        return Answers == _model.AnswerCount ? logits : logits.narrow(1, 0, Answers);
    }

    public void Dispose() => Module.Dispose();
}
