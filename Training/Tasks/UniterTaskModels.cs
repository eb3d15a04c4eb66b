using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Uniter;
using ModelZoo.Tokenization;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Training.Tasks;

/// <summary>
/// UNITER (every uniter preset) over region files. VQA: <see cref="UniterForVisualQuestionAnswering"/> with
/// <c>vqa_output</c> sized to the vocabulary (loaded when the checkpoint has a head of that size, else new: the
/// pre-trained backbone uniter-base.pt is the usual start), through <see cref="RegionVqaAdapter"/>. Retrieval: a cross
/// encoder trained with image-text matching and sampled negatives: the score is <c>rank_output</c> for the retrieval
/// presets (started from <c>itm_output</c>'s "match" row when the checkpoint has none, as UNITER's init_output does),
/// else the <c>itm_output</c> log-odds. The published models use bert-base-cased: give its vocab.txt with --vocab.
/// </summary>
public sealed class UniterTaskModels : ITaskModelProvider
{
    public bool Handles(string model, ModelPreset? preset) => preset is { Family: "uniter", Unavailable: null };

    public IReadOnlyList<string> Tasks(string model, ModelPreset? preset) => new[] { "vqa", "retrieval" };

    public IVqaModel CreateVqa(TaskModelRequest request)
    {
        var preset = request.Preset ?? throw new ArgumentException($"'{request.Model}' is not a catalog preset");
        var answers = request.Answers ?? throw new ArgumentException("VQA needs an answer vocabulary");
        var config = (UniterConfig)preset.Config;
        manual_seed(request.Seed);
        return RegionVqaAdapter.ForTask(new UniterForVisualQuestionAnswering(config, answers.Count), preset, request, answers,
            reader => KeyMapFor(reader, "vqa_output"), "vqa_output.");
    }

    public IRetrievalModel CreateRetrieval(TaskModelRequest request)
    {
        var preset = request.Preset ?? throw new ArgumentException($"'{request.Model}' is not a catalog preset");
        var config = (UniterConfig)preset.Config;
        bool rank = preset.Heads.Contains("rank_output");
        manual_seed(request.Seed);
        var model = new UniterForImageTextRetrieval(config, rank);
        try
        {
            if (request.Saved is null && request.WeightsPath is string path)
            {
                var report = TaskWeights.LoadWithTaskHead(model, path, reader => KeyMapFor(reader, "itm_output", "rank_output"), "itm_output.", "rank_output.");
                if (rank && report.Missing.Contains("rank_output.weight") && !report.Missing.Contains("itm_output.weight")) model.InitializeRankFromItm();
            }
            model.train();
            var (tokenizer, vocab) = BertTaskTokenizer.For(preset, request.VocabPath, request.Saved is null ? request.WeightsPath : null, config.VocabSize);
            return new UniterCrossEncoder(model, tokenizer) { VocabularyFile = vocab };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public JsonElement Describe(IDisposable taskModel) => JsonSerializer.SerializeToElement(new
    {
        tokenizer = taskModel switch { RegionVqaAdapter r => r.TokenizerName, UniterCrossEncoder c => c.TokenizerName, _ => "bert-wordpiece" },
    });

    /// <summary>
    /// Original UNITER files (uniter.* or older bert.* keys, any pre-training or task heads) through the family's task
    /// key map; a backbone file in this library's layout (embeddings.*, encoder.*, ...) gets the "uniter." prefix.
    /// </summary>
    static KeyMap KeyMapFor(ICheckpointReader reader, params string[] ownHeads)
    {
        bool prefixed = reader.Entries.Select(e => e.Name.StartsWith("module.", StringComparison.Ordinal) ? e.Name[7..] : e.Name)
            .Any(n => n.StartsWith("uniter.", StringComparison.Ordinal) || n.StartsWith("bert.", StringComparison.Ordinal));
        return prefixed ? UniterFamily.TaskKeyMap(ownHeads) : KeyMap.Identity.StripPrefix("module.").LegacyLayerNormNames().AddPrefix("uniter.");
    }
}

/// <summary>A UNITER retrieval model as a cross encoder over (caption, regions) pairs.</summary>
public sealed class UniterCrossEncoder : ICrossEncoder, IUsesVocabularyFile
{
    /// <summary>UNITER's data keeps 60 text tokens and at most 100 regions.</summary>
    const int MaxTokens = 60, MaxRegions = 100;
    readonly UniterForImageTextRetrieval _model;
    readonly ITextTokenizer _tokenizer;

    public UniterCrossEncoder(UniterForImageTextRetrieval model, ITextTokenizer tokenizer)
    {
        _model = model;
        _tokenizer = tokenizer;
    }

    public nn.Module Module => _model;
    public string? VocabularyFile { get; init; }
    public string TokenizerName => _tokenizer.Name;

    public Tensor MatchLogits(IReadOnlyList<string> captions, IReadOnlyList<VisualInput> images)
    {
        var options = new EncodeOptions { MaxLength = Math.Min(MaxTokens, _model.Config.MaxPositionEmbeddings), Padding = ModelZoo.Tokenization.Padding.None };
        var parameter = _model.Uniter.parameters().First();
        var examples = captions.Select((caption, i) =>
        {
            var ids = _tokenizer.Encode(caption, options).InputIds.Select(x => (long)x).ToArray();
            var (features, boxes, width, height) = images[i].Regions();
            if (features.dim() != 2 || features.shape[1] != _model.Config.ImgDim)
                throw new ArgumentException($"region features must be [regions, {_model.Config.ImgDim}], got [{string.Join(", ", features.shape)}]");
            long regions = Math.Min(features.shape[0], MaxRegions);
            return new UniterExample(ids, features.narrow(0, 0, regions).to(parameter.dtype),
                UniterInputs.BoxFeatures(boxes.narrow(0, 0, regions), width, height).to(parameter.dtype));
        }).ToList();
        var inputs = UniterInputs.Collate(examples, parameter.device);
        if (_model.HasRankOutput) return _model.forward(inputs);
        var itm = _model.MatchLogits(inputs);
        return itm.select(1, 1) - itm.select(1, 0);
    }

    public void Dispose() => _model.Dispose();
}
