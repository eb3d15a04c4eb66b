using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Vatt;

namespace ModelZoo.Training.Tasks;

/// <summary>
/// The task adapter of every VATT preset (VATT-MS and VATT-MA): contrastive pre-training only
/// (<see cref="VattContrastivePretraining"/>); VATT has no VQA or image-text retrieval head.
/// </summary>
public sealed class VattTaskModels : ITaskModelProvider
{
    public bool Handles(string model, ModelPreset? preset) => preset is { Family: "vatt", Unavailable: null };

    public IReadOnlyList<string> Tasks(string model, ModelPreset? preset) => new[] { VattContrastivePretraining.TaskName };

    public IVqaModel CreateVqa(TaskModelRequest request) =>
        throw new NotSupportedException($"'{request.Model}' (VATT) has no VQA head; it trains with --task {VattContrastivePretraining.TaskName}");

    public IRetrievalModel CreateRetrieval(TaskModelRequest request) =>
        throw new NotSupportedException($"'{request.Model}' (VATT) has no image-text retrieval adapter; it trains with --task {VattContrastivePretraining.TaskName}");

    /// <summary>The VATT model of a preset, random or from <see cref="TaskModelRequest.WeightsPath"/> (this library's safetensors layout), in train mode.</summary>
    public VattModel CreateModel(TaskModelRequest request)
    {
        var preset = request.Preset ?? throw new ArgumentException($"'{request.Model}' is not a catalog preset");
        return ModelCatalog.Default.Create<VattModel>(preset.Name, new ModelCreateOptions
        {
            WeightsPath = request.WeightsPath, Training = true, Seed = request.Seed, Device = request.Device,
        });
    }

    public JsonElement Describe(IDisposable taskModel) => JsonSerializer.SerializeToElement(new { vocabulary = VattWordVocabulary.FileName });
}
