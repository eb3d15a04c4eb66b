using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Clip;
using ModelZoo.Processing.Images;
using ModelZoo.Tokenization;
using ModelZoo.Tokenization.Clip;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Training.Tasks;

/// <summary>Retrieval (contrastive fine-tuning, recall evaluation) for every CLIP preset, as a dual encoder.</summary>
public sealed class ClipTaskModels : ITaskModelProvider
{
    public bool Handles(string model, ModelPreset? preset) => preset is { Family: "clip", Unavailable: null };

    public IReadOnlyList<string> Tasks(string model, ModelPreset? preset) => new[] { "retrieval" };

    public IVqaModel CreateVqa(TaskModelRequest request) =>
        throw new NotSupportedException($"'{request.Model}' is a dual encoder: it has no VQA head");

    public IRetrievalModel CreateRetrieval(TaskModelRequest request)
    {
        var preset = request.Preset ?? throw new ArgumentException($"'{request.Model}' is not a catalog preset");
        var module = ModelCatalog.Default.Create(preset.Name, new ModelCreateOptions
        {
            WeightsPath = request.Saved is null ? request.WeightsPath : null, Training = true, Seed = request.Seed, Device = request.Device,
        });
        return new ClipDualEncoder((ClipModel)module, ClipBpeTokenizer.Default());
    }

    public JsonElement Describe(IDisposable taskModel) => JsonSerializer.SerializeToElement(new { tokenizer = "clip-bpe" });
}

/// <summary>
/// A CLIP model as a dual encoder: image files through the Processing library's CLIP preprocessing (bicubic resize,
/// centre crop, CLIP mean/std), pixel tensors resized and normalised, texts through the CLIP BPE tokenizer at the
/// model's context length.
/// </summary>
public sealed class ClipDualEncoder : IDualEncoder
{
    readonly ClipModel _model;
    readonly ITextTokenizer _tokenizer;
    readonly ClipImageProcessor _preprocessor;

    public ClipDualEncoder(ClipModel model, ITextTokenizer tokenizer)
    {
        _model = model;
        _tokenizer = tokenizer;
        _preprocessor = new ClipImageProcessor(model.Visual.InputResolution);
    }

    public nn.Module Module => _model;

    public Tensor EncodeImages(IReadOnlyList<VisualInput> images)
    {
        var parameter = _model.LogitScale;
        var mean = tensor(ClipImageProcessor.Mean).view(3, 1, 1);
        var std = tensor(ClipImageProcessor.Std).view(3, 1, 1);
        var batch = stack(images.Select(i => i.Pixels is null && i.Path is not null
            ? _preprocessor.Process(ImageDecoder.Load(i.Path))
            : (ImageFiles.Resize(i.RgbPixels(), _preprocessor.Size) - mean) / std).ToArray());
        var features = _model.EncodeImage(batch.to(parameter.dtype, parameter.device));
        return nn.functional.normalize(features, p: 2, dim: -1);
    }

    public Tensor EncodeTexts(IReadOnlyList<string> texts)
    {
        var tokens = _tokenizer.EncodeBatch(texts, EncodeOptions.ModelInput(_model.Config.ContextLength)).ToTensors();
        var ids = tokens.InputIds.to(ScalarType.Int64, _model.LogitScale.device);
        return nn.functional.normalize(_model.EncodeText(ids), p: 2, dim: -1);
    }

    /// <summary>exp(logit_scale), capped at 100 as CLIP's training clamps it.</summary>
    public Tensor LogitScale() => _model.LogitScale.clamp(max: Math.Log(100)).exp();

    public void Dispose() => _model.Dispose();
}
