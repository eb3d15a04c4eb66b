using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Vilt;
using ModelZoo.Processing.Images;
using ModelZoo.Tokenization;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Training.Tasks;

/// <summary>
/// ViLT (every vilt preset) over image files: VQA with a <c>vqa_classifier</c> of the vocabulary's size (loaded from
/// the checkpoint when it has one of that size, else new, as ViLT fine-tunes from its pre-trained model), and
/// retrieval as a cross encoder trained with image-text matching and sampled negatives: the match score is the
/// <c>rank_output</c> of the retrieval presets (started from <c>itm_score</c>'s "match" row when the checkpoint has
/// none, as the original irtr set-up does), else the <c>itm_score</c> log-odds (match minus no-match logit).
/// Images go through ViLT's preprocessing (Processing's <see cref="ViltImageProcessor"/> at the model's image size,
/// zero-padded batches with pixel masks), questions and captions through BERT WordPiece at max_text_len.
/// </summary>
public sealed class ViltTaskModels : ITaskModelProvider
{
    public bool Handles(string model, ModelPreset? preset) => preset is { Family: "vilt", Unavailable: null };

    public IReadOnlyList<string> Tasks(string model, ModelPreset? preset) => new[] { "vqa", "retrieval" };

    public IVqaModel CreateVqa(TaskModelRequest request)
    {
        var preset = request.Preset ?? throw new ArgumentException($"'{request.Model}' is not a catalog preset");
        var answers = request.Answers ?? throw new ArgumentException("VQA needs an answer vocabulary");
        var config = (ViltConfig)preset.Config with { NumLabels = answers.Count };
        var heads = new ViltHeads { VqaAnswers = answers.Count };
        var model = Build(request, config, heads, out _, "vqa_classifier.");
        try
        {
            var (tokenizer, vocab) = BertTaskTokenizer.For(preset, request.VocabPath, request.Saved is null ? request.WeightsPath : null, config.VocabSize);
            return new ViltVqaAdapter(model, ViltTaskInputs.Bert(tokenizer, config)) { VocabularyFile = vocab };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public IRetrievalModel CreateRetrieval(TaskModelRequest request)
    {
        var preset = request.Preset ?? throw new ArgumentException($"'{request.Model}' is not a catalog preset");
        var config = (ViltConfig)preset.Config;
        bool rank = preset.Heads.Contains("rank_output");
        var heads = new ViltHeads { Itm = true, Rank = rank };
        var model = Build(request, config, heads, out var report, "itm_score.", "rank_output.");
        try
        {
            if (rank && report is not null && report.Missing.Contains("rank_output.weight") && !report.Missing.Contains("itm_score.fc.weight"))
                model.InitializeRankFromItm();
            var (tokenizer, vocab) = BertTaskTokenizer.For(preset, request.VocabPath, request.Saved is null ? request.WeightsPath : null, config.VocabSize);
            return new ViltCrossEncoder(model, ViltTaskInputs.Bert(tokenizer, config)) { VocabularyFile = vocab };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public JsonElement Describe(IDisposable taskModel) => JsonSerializer.SerializeToElement(new { tokenizer = "bert-wordpiece" });

    /// <summary>A new ViLT with the task's heads; the pre-trained weights (not when rebuilding a fine-tuned folder) with a task head.</summary>
    static ViltModel Build(TaskModelRequest request, ViltConfig config, ViltHeads heads, out LoadReport? report, params string[] headPrefixes)
    {
        manual_seed(request.Seed);
        var model = new ViltModel(config, heads);
        report = null;
        try
        {
            if (request.Saved is null && request.WeightsPath is string path)
                report = TaskWeights.LoadWithTaskHead(model, path, reader => ViltFamily.KeyMapFor(reader, heads), headPrefixes);
            model.train();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}

/// <summary>
/// How texts and images become <see cref="ViltInputs"/>: a text encoder ([CLS] first, truncated to the model's
/// max_text_len) and ViLT's image preprocessing at the model's image size (sides rounded down to a multiple of the
/// patch size; 32 for the published models, as the original). Pixel tensors in [0, 1] are quantised to 8 bits first,
/// so an image in memory and the same image written as PNG give the same input.
/// </summary>
public sealed class ViltTaskInputs
{
    readonly Func<string, long[]> _encode;

    public ViltTaskInputs(Func<string, long[]> encode, ViltImageProcessor images)
    {
        _encode = encode;
        Images = images;
    }

    public ViltImageProcessor Images { get; }

    /// <summary>BERT WordPiece at the model's max_text_len, and the image processor for the config.</summary>
    public static ViltTaskInputs Bert(ITextTokenizer tokenizer, ViltConfig config)
    {
        var options = new EncodeOptions { MaxLength = config.MaxPositionEmbeddings, Padding = ModelZoo.Tokenization.Padding.None };
        return new ViltTaskInputs(text => tokenizer.Encode(text, options).InputIds.Select(i => (long)i).ToArray(), ImageProcessor(config));
    }

    /// <summary>ViLT's resize with the shorter side at the config's image size, sides a multiple of the patch size.</summary>
    public static ViltImageProcessor ImageProcessor(ViltConfig config) => new(config.ImageSize, multiple: config.PatchSize);

    /// <summary>One normalised image [3, H, W]: a file decoded, or pixels in [0, 1].</summary>
    public Tensor Image(VisualInput image) => Images.Process(image.Pixels is null && image.Path is not null
        ? ImageDecoder.Load(image.Path)
        : ImageFiles.ToRgbImage(image.RgbPixels()));

    public ViltInputs Collate(IReadOnlyList<string> texts, IReadOnlyList<VisualInput> images, Tensor like)
    {
        var inputs = ViltInputs.Collate(texts.Select(_encode).ToList(), images.Select(Image).ToList(), like.device);
        return inputs.PixelValues.dtype == like.dtype ? inputs : inputs with { PixelValues = inputs.PixelValues.to(like.dtype) };
    }
}

/// <summary>A ViLT model with a VQA classifier as the VQA task uses it.</summary>
public sealed class ViltVqaAdapter : IVqaModel, IUsesVocabularyFile
{
    readonly ViltModel _model;
    readonly ViltTaskInputs _inputs;

    public ViltVqaAdapter(ViltModel model, ViltTaskInputs inputs)
    {
        _model = model;
        _inputs = inputs;
        Answers = model.Heads.VqaAnswers ?? throw new ArgumentException("this ViLT model has no VQA classifier");
    }

    public nn.Module Module => _model;
    public ViltModel Model => _model;
    public int Answers { get; }
    public string? VocabularyFile { get; init; }

    public Tensor Logits(IReadOnlyList<string> questions, IReadOnlyList<VisualInput> images) =>
        _model.VqaLogits(_inputs.Collate(questions, images, _model.Transformer.Norm.weight!));

    public void Dispose() => _model.Dispose();
}

/// <summary>A ViLT model as a retrieval cross encoder: rank_output when it has one, else the ITM log-odds.</summary>
public sealed class ViltCrossEncoder : ICrossEncoder, IUsesVocabularyFile
{
    readonly ViltModel _model;
    readonly ViltTaskInputs _inputs;

    public ViltCrossEncoder(ViltModel model, ViltTaskInputs inputs)
    {
        if (!model.Heads.Rank && !model.Heads.Itm) throw new ArgumentException("a ViLT cross encoder needs rank_output or itm_score");
        _model = model;
        _inputs = inputs;
    }

    public nn.Module Module => _model;
    public string? VocabularyFile { get; init; }

    public Tensor MatchLogits(IReadOnlyList<string> captions, IReadOnlyList<VisualInput> images)
    {
        var inputs = _inputs.Collate(captions, images, _model.Transformer.Norm.weight!);
        if (_model.Heads.Rank) return _model.RankScores(inputs);
        var itm = _model.ItmLogits(inputs);
        return itm.select(1, 1) - itm.select(1, 0);
    }

    public void Dispose() => _model.Dispose();
}
