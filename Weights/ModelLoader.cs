using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Weights;

public sealed record LoadOptions
{
    /// <summary>Missing, unexpected or mismatched keys are an error (nothing is loaded). Default true.</summary>
    public bool Strict { get; init; } = true;
    /// <summary>Called after each tensor with (done, total).</summary>
    public Action<int, int>? Progress { get; init; }

    public static LoadOptions Default { get; } = new();
}

/// <summary>
/// Loads a checkpoint into a model tensor by tensor: each tensor is read, converted to the dtype and device of
/// the model's parameter, copied in place and freed, so peak memory is the model plus the largest tensor (and just the
/// model when dtype and device already match: the bytes are then read straight into the parameter).
/// Every shape is checked from the headers before anything is copied, so a strict failure leaves the model as it was.
/// </summary>
public static class ModelLoader
{
    public static LoadReport Load(nn.Module model, string path, KeyMap? map = null, LoadOptions? options = null)
    {
        using var reader = Checkpoint.Open(path);
        return Load(model, reader, map, options);
    }

    /// <summary>
    /// Matches a checkpoint against a model without reading any tensor data: which model key each (mapped) checkpoint
    /// tensor fills, and the report of missing, unexpected and mismatched keys. Strict (the default) throws when the
    /// checkpoint does not fit. Works on a model built on the meta device (no memory), which is how `convert` checks a
    /// checkpoint before streaming it to another file.
    /// </summary>
    public static (LoadReport Report, IReadOnlyList<(string Key, MappedTensor Source)> Plan) Plan(nn.Module model, ICheckpointReader reader,
        KeyMap? map = null, LoadOptions? options = null)
    {
        var (report, plan, _) = PlanMapped(model, reader, map, options);
        return (report, plan);
    }

    static (LoadReport Report, IReadOnlyList<(string Key, MappedTensor Source)> Plan, MappedCheckpoint Mapped) PlanMapped(nn.Module model,
        ICheckpointReader reader, KeyMap? map, LoadOptions? options)
    {
        options ??= LoadOptions.Default;
        map ??= KeyMap.Identity;
        MappedCheckpoint mapped;
        try
        {
            mapped = map.Apply(reader);
        }
        catch (InvalidOperationException e)
        {
            throw new CheckpointException(reader.Path, "the key map does not fit this checkpoint: " + e.Message, inner: e);
        }
        var targets = model.state_dict();
        var report = new LoadReport { Source = reader.Path, Format = reader.Format };
        report.Ignored.AddRange(mapped.Ignored);

        var byName = mapped.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var plan = new List<(string, MappedTensor)>();
        foreach (var (key, target) in targets)
        {
            if (!byName.TryGetValue(key, out var source)) { report.Missing.Add(key); continue; }
            if (!source.Shape.SequenceEqual(target.shape))
            {
                report.ShapeMismatches.Add(new ShapeMismatch(key, target.shape, source.Shape, source.Sources));
                continue;
            }
            plan.Add((key, source));
        }
        foreach (var tensor in mapped.Tensors)
            if (!targets.ContainsKey(tensor.Name)) report.Unexpected.Add(tensor.Name);

        if (options.Strict && !report.IsComplete)
            throw new CheckpointException(reader.Path,
                "does not fit the model (strict load; nothing was loaded; pass a non-strict option to load what fits):" +
                Environment.NewLine + report.ToText());
        return (report, plan, mapped);
    }

    static readonly AsyncLocal<Action<LoadReport>?> LoadObserver = new();

    /// <summary>Calls <paramref name="observer"/> with the report of every <see cref="Load"/> in this flow of execution
    /// until the result is disposed (the CLI prints a summary of each load this way, whichever code path loads).</summary>
    /// <summary>Tells the current observer about a load made of several (silenced) loads, such as <see cref="MultiFileLoader"/>'s.</summary>
    internal static void NotifyLoad(LoadReport report) => LoadObserver.Value?.Invoke(report);

    public static IDisposable ObserveLoads(Action<LoadReport> observer)
    {
        var previous = LoadObserver.Value;
        LoadObserver.Value = observer;
        return new RestoreObserver(previous);
    }

    sealed class RestoreObserver(Action<LoadReport>? previous) : IDisposable
    {
        public void Dispose() => LoadObserver.Value = previous;
    }

    public static LoadReport Load(nn.Module model, ICheckpointReader reader, KeyMap? map = null, LoadOptions? options = null)
    {
        options ??= LoadOptions.Default;
        var (report, plan, mapped) = PlanMapped(model, reader, map, options);
        var targets = model.state_dict();
        using var release = mapped; // frees fused tensors whose other parts the model does not take (a non-strict load)
        using (no_grad())
        {
            int done = 0;
            foreach (var (key, source) in plan)
            {
                var target = targets[key];
                if (TryReadDirectly(reader, source, target))
                {
                    report.TensorsLoaded++;
                    report.ParametersLoaded += source.ElementCount;
                    options.Progress?.Invoke(++done, plan.Count);
                    continue;
                }
                using (var scope = NewDisposeScope())
                {
                    Tensor value;
                    try
                    {
                        value = source.Materialize();
                    }
                    catch (CheckpointException) { throw; }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        throw new CheckpointException(reader.Path, "cannot read: " + e.Message, string.Join("+", source.Sources), e);
                    }
                    if (!value.shape.SequenceEqual(target.shape))
                        throw new CheckpointException(reader.Path, $"read as [{string.Join(", ", value.shape)}], the model expects [{string.Join(", ", target.shape)}]",
                            string.Join("+", source.Sources));
                    if (value.dtype != target.dtype)
                    {
                        string change = $"{source.Dtype} -> {StorageDtype.FromScalarType(target.dtype)}";
                        report.DtypeChanges[change] = report.DtypeChanges.GetValueOrDefault(change) + 1;
                    }
                    target.copy_(value);
                }
                report.TensorsLoaded++;
                report.ParametersLoaded += source.ElementCount;
                options.Progress?.Invoke(++done, plan.Count);
            }
        }
        LoadObserver.Value?.Invoke(report);
        return report;
    }

    /// <summary>Reads into the parameter itself when it is a contiguous CPU tensor of the stored dtype: no temporary.</summary>
    static bool TryReadDirectly(ICheckpointReader reader, MappedTensor source, Tensor target)
    {
        if (target.device_type != DeviceType.CPU || !target.is_contiguous() || StorageDtype.ToScalarType(source.Dtype) != target.dtype) return false;
        try
        {
            return source.TryMaterializeInto(target);
        }
        catch (CheckpointException) { throw; }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new CheckpointException(reader.Path, "cannot read: " + e.Message, string.Join("+", source.Sources), e);
        }
    }
}
