using System.Text.Json;
using System.Text.Json.Serialization;
using ModelZoo.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Training.Checkpoints;

/// <summary>Where training stands: enough, with the model and optimizer files, to continue exactly.</summary>
public sealed record TrainerState
{
    public int Step { get; init; }
    public int Epoch { get; init; }
    /// <summary>Micro-batches of <see cref="Epoch"/> already consumed.</summary>
    public int BatchInEpoch { get; init; }
    public int TotalSteps { get; init; }
    public ulong TaskRandomState { get; init; }
    /// <summary>torch's CPU generator state (dropout), base64.</summary>
    public string TorchRngState { get; init; } = "";
    public LearningRateSchedule? Schedule { get; init; }
    public long Seed { get; init; }
    public int BatchSize { get; init; }
    public int GradientAccumulation { get; init; }
    public string Precision { get; init; } = "fp32";
    public int TrainingExamples { get; init; }
    public List<double> Losses { get; init; } = new();
}

/// <summary>
/// A training checkpoint: a folder with <c>model.safetensors</c> (weights and buffers; float32 master weights when
/// training in bf16), <c>optimizer.bin</c> (TorchSharp's AdamW state: step, exp_avg, exp_avg_sq per parameter) and
/// <c>trainer.json</c> (step, data position, scheduler, RNG states). Written into a temporary folder and renamed;
/// <c>latest</c> names the newest complete one.
/// </summary>
public static class TrainingCheckpoint
{
    public const string ModelFile = "model.safetensors", OptimizerFile = "optimizer.bin", StateFile = "trainer.json", LatestFile = "latest";

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, Converters = { new JsonStringEnumConverter() } };

    public static string Save(string checkpointsDirectory, TrainerState state, IEnumerable<(string Name, Tensor Tensor)> modelTensors, OptimizerHelper optimizer, int keep)
    {
        Directory.CreateDirectory(checkpointsDirectory);
        string name = $"step-{state.Step:D8}";
        string final = Path.Combine(checkpointsDirectory, name);
        string temp = Path.Combine(checkpointsDirectory, $".{name}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(temp);
        try
        {
            SafetensorsFile.Write(Path.Combine(temp, ModelFile), modelTensors);
            using (var stream = File.Create(Path.Combine(temp, OptimizerFile)))
            using (var writer = new BinaryWriter(stream))
            {
                optimizer.save_state_dict(writer);
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }
            AtomicFile.WriteAllText(Path.Combine(temp, StateFile), JsonSerializer.Serialize(state, Json));
            if (Directory.Exists(final))
            {
                string old = final + $".{Guid.NewGuid():N}.old";
                Directory.Move(final, old);
                Directory.Move(temp, final);
                Directory.Delete(old, true);
            }
            else
            {
                Directory.Move(temp, final);
            }
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, true);
            throw;
        }
        AtomicFile.WriteAllText(Path.Combine(checkpointsDirectory, LatestFile), name);
        foreach (var stale in List(checkpointsDirectory).SkipLast(Math.Max(1, keep))) Directory.Delete(stale, true);
        return final;
    }

    /// <summary>Complete checkpoints, oldest first.</summary>
    public static List<string> List(string checkpointsDirectory) =>
        !Directory.Exists(checkpointsDirectory) ? new List<string>()
            : Directory.GetDirectories(checkpointsDirectory, "step-*").Where(d => !Path.GetFileName(d).Contains('.') && File.Exists(Path.Combine(d, StateFile)))
                .OrderBy(d => d, StringComparer.Ordinal).ToList();

    /// <summary>A checkpoint folder, or a checkpoints folder (its <c>latest</c>), or an output folder holding "checkpoints".</summary>
    public static string Resolve(string path)
    {
        if (File.Exists(Path.Combine(path, StateFile))) return path;
        foreach (var folder in new[] { path, Path.Combine(path, "checkpoints") })
        {
            var latest = Path.Combine(folder, LatestFile);
            if (File.Exists(latest))
            {
                var candidate = Path.Combine(folder, File.ReadAllText(latest).Trim());
                if (File.Exists(Path.Combine(candidate, StateFile))) return candidate;
            }
            var all = List(folder);
            if (all.Count > 0) return all[^1];
        }
        throw new FileNotFoundException($"{path}: no training checkpoint here (expected {StateFile}, a '{LatestFile}' file, or step-* folders)");
    }

    public static TrainerState ReadState(string checkpoint)
    {
        var path = Path.Combine(checkpoint, StateFile);
        try
        {
            return JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path}: empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a trainer state: {e.Message}", e);
        }
    }

    /// <summary>Copies saved tensors into the given ones (same names, shapes); every name must be present.</summary>
    public static void LoadTensors(string checkpoint, IEnumerable<(string Name, Tensor Tensor)> destinations)
    {
        var path = Path.Combine(checkpoint, ModelFile);
        var saved = SafetensorsFile.ReadAll(path);
        try
        {
            using var _ = no_grad();
            foreach (var (name, destination) in destinations)
            {
                if (!saved.TryGetValue(name, out var source)) throw new InvalidDataException($"{path}: no tensor '{name}' (is this checkpoint from another model?)");
                if (!source.shape.SequenceEqual(destination.shape))
                    throw new InvalidDataException($"{path}: '{name}' has shape [{string.Join(", ", source.shape)}], the model expects [{string.Join(", ", destination.shape)}]");
                destination.copy_(source);
            }
        }
        finally
        {
            foreach (var t in saved.Values) t.Dispose();
        }
    }

    public static void LoadOptimizer(string checkpoint, OptimizerHelper optimizer)
    {
        var path = Path.Combine(checkpoint, OptimizerFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: optimizer state not found", path);
        try
        {
            using var stream = File.OpenRead(path);
            using var reader = new BinaryReader(stream);
            optimizer.load_state_dict(reader);
        }
        catch (Exception e) when (e is ArgumentException or EndOfStreamException)
        {
            throw new InvalidDataException($"{path}: the optimizer state does not fit this model's parameters: {e.Message}", e);
        }
    }
}
