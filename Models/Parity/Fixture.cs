using System.Text.Json;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Parity;

/// <summary>
/// A golden fixture as laid out in shared/fixtures (see its README): fixture.json (family, the reference's config,
/// tolerance), model.safetensors (and model.bin for some families), inputs.safetensors, outputs.safetensors.
/// </summary>
public sealed class Fixture : IDisposable
{
    public string Directory { get; }
    public string Family { get; }
    public JsonElement Json { get; }
    /// <summary>The reference's own config fields ("config" in fixture.json).</summary>
    public JsonElement Config { get; }
    public double Atol { get; }
    public double Rtol { get; }
    public IReadOnlyDictionary<string, Tensor> Inputs { get; }
    public IReadOnlyDictionary<string, Tensor> Outputs { get; }
    /// <summary>model.safetensors (or what fixture.json's "checkpoint" names).</summary>
    public string CheckpointPath { get; }
    /// <summary>model.bin where the fixture has a pickle copy, else null.</summary>
    public string? PicklePath { get; }

    public Fixture(string directory)
    {
        Directory = directory;
        string jsonPath = Path.Combine(directory, "fixture.json");
        if (!File.Exists(jsonPath)) throw new FileNotFoundException($"{directory}: no fixture.json (is this a fixture folder?)", jsonPath);
        using (var document = JsonDocument.Parse(File.ReadAllText(jsonPath)))
            Json = document.RootElement.Clone();
        Family = Json.TryGetProperty("family", out var family) ? family.GetString() ?? "" : throw new InvalidDataException($"{jsonPath}: no \"family\"");
        Config = Json.TryGetProperty("config", out var config) ? config : default;
        (Atol, Rtol) = (1e-4, 1e-4);
        if (Json.TryGetProperty("tolerance", out var tolerance))
        {
            if (tolerance.TryGetProperty("atol", out var atol)) Atol = atol.GetDouble();
            if (tolerance.TryGetProperty("rtol", out var rtol)) Rtol = rtol.GetDouble();
        }
        CheckpointPath = Path.Combine(directory, StringOr("checkpoint", "model.safetensors"));
        var pickle = Json.TryGetProperty("checkpoint_pickle", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
        PicklePath = pickle is null ? null : Path.Combine(directory, pickle);
        Inputs = ReadAll(Path.Combine(directory, StringOr("inputs", "inputs.safetensors")));
        Outputs = ReadAll(Path.Combine(directory, StringOr("outputs", "outputs.safetensors")));
    }

    string StringOr(string property, string fallback) =>
        Json.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : fallback;

    static Dictionary<string, Tensor> ReadAll(string path)
    {
        using var reader = new SafetensorsReader(path);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var entry in reader.Entries) result[entry.Name] = reader.Read(entry.Name).DetachFromDisposeScope();
        return result;
    }

    public Tensor Input(string name) =>
        Inputs.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"{Directory}: inputs.safetensors has no '{name}' (has: {string.Join(", ", Inputs.Keys)})");

    public Tensor? OptionalInput(string name) => Inputs.TryGetValue(name, out var t) ? t : null;

    /// <summary>An integer from the config (or from a nested object such as "constructor" / "visual_config").</summary>
    public int ConfigInt(string name, string? section = null) => Section(section).GetProperty(name).GetInt32();

    public JsonElement Section(string? section) => section is null ? Config : Json.GetProperty(section);

    public void Dispose()
    {
        foreach (var t in Inputs.Values) t.Dispose();
        foreach (var t in Outputs.Values) t.Dispose();
    }
}
