using ModelZoo.Weights;
using TorchSharp;

namespace ModelZoo.Models.Catalog;

/// <summary>
/// A named model: a family, its published configuration, the checkpoint layouts it accepts and how to build and
/// load it. Families return their presets from <see cref="ModelFamily.Presets"/>.
/// </summary>
public sealed record ModelPreset
{
    public required string Name { get; init; }
    public required string Family { get; init; }
    public string Description { get; init; } = "";
    /// <summary>The configuration record (serialised with the reference's own field names by `modelzoo info`).</summary>
    public required object Config { get; init; }
    /// <summary>Builds the model with random weights on the current default device, in float32.</summary>
    public required Func<torch.nn.Module> Build { get; init; }
    /// <summary>Human-readable list of checkpoint layouts that load, e.g. "original UNITER .pt (uniter.*)".</summary>
    public IReadOnlyList<string> CheckpointFormats { get; init; } = new[] { "safetensors in this library's layout" };
    /// <summary>Picks the key map for a checkpoint by looking at its keys (original vs Hugging Face layouts).</summary>
    public Func<ICheckpointReader, KeyMap>? KeyMapFor { get; init; }
    /// <summary>
    /// Checkpoint layouts this model can also be written in (`modelzoo convert --layout NAME`), each given as the key map
    /// from that layout to this model's keys; convert writes through its <see cref="KeyMap.Reverse"/>, so it must be
    /// reversible. "original" (the model's own keys, which follow the original repository) needs no entry.
    /// Example: ["huggingface"] = the map that loads Hugging Face checkpoints.
    /// </summary>
    public IReadOnlyDictionary<string, KeyMap>? Layouts { get; init; }
    /// <summary>Tokenizer the model expects, e.g. "bert-wordpiece (bert-base-uncased)".</summary>
    public string? Tokenizer { get; init; }
    /// <summary>Where the published weights come from (for the user to download; nothing is downloaded here).</summary>
    public string? WeightsSource { get; init; }
    /// <summary>When set, the preset is described but cannot be created; the text says which part is missing.</summary>
    public string? Unavailable { get; init; }
    /// <summary>Task heads included (empty for backbone presets).</summary>
    public IReadOnlyList<string> Heads { get; init; } = Array.Empty<string>();
}

/// <summary>A model family registers its presets here. Families are discovered by reflection (or added through DI).</summary>
public abstract class ModelFamily
{
    public abstract string Name { get; }
    public abstract IEnumerable<ModelPreset> Presets { get; }
}

/// <summary>What `Describe` returns: the preset plus the exact number of parameters.</summary>
public sealed record ModelDescription(ModelPreset Preset, long Parameters, long Buffers, IReadOnlyDictionary<string, long> ParametersByTopModule);
