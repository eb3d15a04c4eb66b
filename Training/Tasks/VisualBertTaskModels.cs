using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.VisualBert;
using ModelZoo.Weights;
using static TorchSharp.torch;

namespace ModelZoo.Training.Tasks;

/// <summary>
/// VisualBERT (every visualbert preset with 2048-d or other region features) for VQA: <see cref="VisualBertForQuestionAnswering"/>
/// with the answer head (cls) sized to the vocabulary, from a pre-training, VQA or other task checkpoint (the
/// backbone loads; the head when it has that size), through <see cref="RegionVqaAdapter"/>. Trained here with BCE
/// over soft scores like the other families (the original used a softmax with KL divergence).
/// </summary>
public sealed class VisualBertTaskModels : ITaskModelProvider
{
    public bool Handles(string model, ModelPreset? preset) => preset is { Family: "visualbert", Unavailable: null };

    public IReadOnlyList<string> Tasks(string model, ModelPreset? preset) => new[] { "vqa" };

    public IVqaModel CreateVqa(TaskModelRequest request)
    {
        var preset = request.Preset ?? throw new ArgumentException($"'{request.Model}' is not a catalog preset");
        var answers = request.Answers ?? throw new ArgumentException("VQA needs an answer vocabulary");
        var config = (VisualBertConfig)preset.Config with { NumLabels = answers.Count };
        manual_seed(request.Seed);
        return RegionVqaAdapter.ForTask(new VisualBertForQuestionAnswering(config), preset, request, answers,
            reader => preset.KeyMapFor?.Invoke(reader) ?? KeyMap.Identity, "cls.");
    }

    public IRetrievalModel CreateRetrieval(TaskModelRequest request) =>
        throw new NotSupportedException($"'{request.Model}' has no retrieval head here (VisualBERT: VQA)");

    public JsonElement Describe(IDisposable taskModel) => JsonSerializer.SerializeToElement(new { tokenizer = ((RegionVqaAdapter)taskModel).TokenizerName });
}
