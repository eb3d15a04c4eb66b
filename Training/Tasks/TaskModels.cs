using System.Reflection;
using System.Text.Json;
using ModelZoo.Evaluation.Data;
using ModelZoo.Models.Catalog;
using TorchSharp;

namespace ModelZoo.Training.Tasks;

/// <summary>What a provider gets to build a task model.</summary>
public sealed record TaskModelRequest
{
    /// <summary>The name given on the command line (a catalog preset or a provider's own model name).</summary>
    public required string Model { get; init; }
    /// <summary>The catalog preset, when the name is one.</summary>
    public ModelPreset? Preset { get; init; }
    /// <summary>Pre-trained weights to start from (a checkpoint file or folder), or null.</summary>
    public string? WeightsPath { get; init; }
    /// <summary>VQA: the answer vocabulary the head must output.</summary>
    public AnswerVocabulary? Answers { get; init; }
    /// <summary>Texts of the training data (providers with their own vocabulary build it from them).</summary>
    public IReadOnlyList<string> TrainingTexts { get; init; } = Array.Empty<string>();
    /// <summary>
    /// A WordPiece vocabulary file (vocab.txt) for models whose vocabulary is not bundled (cased UNITER); a fine-tuned
    /// folder keeps its own copy.
    /// </summary>
    public string? VocabPath { get; init; }
    /// <summary>What the provider saved with a fine-tuned model (<see cref="ITaskModelProvider.Describe"/>), when rebuilding one.</summary>
    public JsonElement? Saved { get; init; }
    public string Device { get; init; } = "cpu";
    public long Seed { get; init; } = 42;
}

/// <summary>
/// Builds task models (VQA, retrieval) for model families through small adapters. Providers are found by
/// reflection in the ModelZoo assemblies: a family plugs in by adding a class, with no central list to edit.
/// </summary>
public interface ITaskModelProvider
{
    /// <summary>Whether this provider builds <paramref name="model"/> (its own names, or presets of the families it adapts).</summary>
    bool Handles(string model, ModelPreset? preset);
    /// <summary>The tasks it supports for that model: "vqa", "retrieval".</summary>
    IReadOnlyList<string> Tasks(string model, ModelPreset? preset);
    IVqaModel CreateVqa(TaskModelRequest request);
    IRetrievalModel CreateRetrieval(TaskModelRequest request);
    /// <summary>What must be saved beside a fine-tuned model's weights to rebuild it (a vocabulary, a config).</summary>
    JsonElement Describe(IDisposable taskModel);
}

public static class TaskModels
{
    static List<ITaskModelProvider>? _providers;

    /// <summary>Every provider in the loaded ModelZoo assemblies.</summary>
    public static IReadOnlyList<ITaskModelProvider> Providers => _providers ??= AppDomain.CurrentDomain.GetAssemblies()
        .Where(a => a.GetName().Name?.StartsWith("ModelZoo", StringComparison.Ordinal) == true)
        .Append(typeof(TaskModels).Assembly).Distinct()
        .SelectMany(SafeTypes)
        .Where(t => typeof(ITaskModelProvider).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface && t.GetConstructor(Type.EmptyTypes) is not null)
        .OrderBy(t => t.FullName, StringComparer.Ordinal)
        .Select(t => (ITaskModelProvider)Activator.CreateInstance(t)!).ToList();

    /// <summary>
    /// The provider for a model and task: a provider of the model's own family first, then the generic ones
    /// (<see cref="IFallbackTaskModelProvider"/>, e.g. every <c>IRegionVqaModel</c> preset).
    /// </summary>
    public static (ITaskModelProvider Provider, ModelPreset? Preset) Find(string model, string task)
    {
        ModelPreset? preset = null;
        try { preset = ModelCatalog.Default.Get(model); }
        catch (UnknownModelException) when (Providers.Any(p => p.Handles(model, null))) { }
        var handling = Ordered.Where(p => p.Handles(model, preset)).ToList();
        if (handling.Count == 0)
            throw new NotSupportedException($"no task adapter for '{model}'{(preset is null ? "" : $" (family {preset.Family})")}; " +
                                            $"models with adapters: {string.Join(", ", Supported())}");
        var provider = handling.FirstOrDefault(p => p.Tasks(model, preset).Contains(task));
        if (provider is null)
        {
            var tasks = handling.SelectMany(p => p.Tasks(model, preset)).Distinct().ToList();
            throw new NotSupportedException($"'{model}' supports {string.Join(" and ", tasks)}, not {task}");
        }
        return (provider, preset);
    }

    static IEnumerable<ITaskModelProvider> Ordered => Providers.OrderBy(p => p is IFallbackTaskModelProvider ? 1 : 0);

    /// <summary>Names with an adapter: catalog presets whose family has one, and providers' own models.</summary>
    public static IEnumerable<string> Supported() =>
        ModelCatalog.Default.List().Where(p => p.Unavailable is null && Providers.Any(x => x.Handles(p.Name, p))).Select(p => p.Name)
            .Concat(Providers.OfType<IOwnModels>().SelectMany(p => p.OwnModels)).Distinct().Order(StringComparer.Ordinal);

    static IEnumerable<Type> SafeTypes(Assembly assembly)
    {
        try { return assembly.GetTypes(); }
        catch (ReflectionTypeLoadException e) { return e.Types.Where(t => t is not null)!; }
    }
}

/// <summary>A generic provider, asked only when no provider of the model's own family handles the model and task.</summary>
public interface IFallbackTaskModelProvider : ITaskModelProvider;

/// <summary>A provider with models of its own (not catalog presets), listed in errors and help.</summary>
public interface IOwnModels
{
    IReadOnlyList<string> OwnModels { get; }
}
