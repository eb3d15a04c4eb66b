using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Training.Tasks;

namespace ModelZoo.Training.Demo;

/// <summary>
/// Task adapters for the demo's small models: "demo-vilt" (one-stream VQA) and "demo-clip" (dual encoder for
/// retrieval). Their word vocabulary is built from the training texts and saved with the fine-tuned model.
/// </summary>
public sealed class DemoTaskModels : ITaskModelProvider, IOwnModels
{
    public const string Vilt = "demo-vilt", Clip = "demo-clip";

    public IReadOnlyList<string> OwnModels => new[] { Vilt, Clip };

    public bool Handles(string model, ModelPreset? preset) => preset is null && (model == Vilt || model == Clip);

    public IReadOnlyList<string> Tasks(string model, ModelPreset? preset) => model == Vilt ? new[] { "vqa" } : new[] { "retrieval" };

    public IVqaModel CreateVqa(TaskModelRequest request)
    {
        var answers = request.Answers ?? throw new ArgumentException("VQA needs an answer vocabulary");
        var (config, words) = Restore(request);
        TorchSharp.torch.manual_seed(request.Seed);
        return new DemoViltVqa(config, words, answers.Count);
    }

    public IRetrievalModel CreateRetrieval(TaskModelRequest request)
    {
        var (config, words) = Restore(request);
        TorchSharp.torch.manual_seed(request.Seed);
        return new DemoClip(config, words);
    }

    public JsonElement Describe(IDisposable taskModel)
    {
        var (config, words) = taskModel switch
        {
            DemoViltVqa v => (v.Config, v.Vocabulary),
            DemoClip c => (c.Config, c.Vocabulary),
            _ => throw new ArgumentException($"not a demo model: {taskModel.GetType().Name}"),
        };
        return JsonSerializer.SerializeToElement(new Saved(config, words.Words.ToList()));
    }

    static (DemoModelConfig, WordVocabulary) Restore(TaskModelRequest request)
    {
        if (request.WeightsPath is not null && request.Saved is null)
            throw new NotSupportedException($"{request.Model} has no published weights: it starts from random initialisation (leave out --weights), " +
                                            "or evaluate a fine-tuned output folder");
        if (request.Saved is JsonElement saved)
        {
            var state = saved.Deserialize<Saved>() ?? throw new InvalidDataException("the saved demo model description is empty");
            return (state.Config, WordVocabulary.FromWords(state.Words.Skip(3)));
        }
        return (new DemoModelConfig(), WordVocabulary.Build(request.TrainingTexts));
    }

    sealed record Saved(DemoModelConfig Config, List<string> Words);
}
