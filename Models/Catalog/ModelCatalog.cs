using System.Reflection;
using ModelZoo.Attention;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Catalog;

public interface IModelCatalog
{
    IReadOnlyList<ModelPreset> List();
    ModelPreset Get(string name);
    ModelDescription Describe(string name);
    nn.Module Create(string name, ModelCreateOptions? options = null);
    T Create<T>(string name, ModelCreateOptions? options = null) where T : nn.Module;
}

/// <summary>The named presets of every registered family: list, describe (exact parameter count), create.</summary>
public sealed class ModelCatalog : IModelCatalog
{
    static readonly object DefaultDeviceLock = new();
    readonly Dictionary<string, ModelPreset> _presets = new(StringComparer.OrdinalIgnoreCase);
    readonly Dictionary<string, ModelDescription> _descriptions = new(StringComparer.OrdinalIgnoreCase);

    public ModelCatalog(IEnumerable<ModelFamily> families)
    {
        foreach (var family in families)
        foreach (var preset in family.Presets)
        {
            if (!_presets.TryAdd(preset.Name, preset))
                throw new InvalidOperationException($"preset '{preset.Name}' is registered twice (families {_presets[preset.Name].Family} and {preset.Family})");
        }
    }

    /// <summary>Every family defined in the given assemblies (default: this library), found by reflection.</summary>
    public static IEnumerable<ModelFamily> DiscoverFamilies(params Assembly[] assemblies)
    {
        if (assemblies.Length == 0) assemblies = new[] { typeof(ModelCatalog).Assembly };
        return assemblies.SelectMany(a => a.GetTypes())
            .Where(t => typeof(ModelFamily).IsAssignableFrom(t) && !t.IsAbstract && t.GetConstructor(Type.EmptyTypes) is not null)
            .OrderBy(t => t.FullName, StringComparer.Ordinal)
            .Select(t => (ModelFamily)Activator.CreateInstance(t)!);
    }

    static ModelCatalog? _default;
    /// <summary>A catalog of every family in this library (what `services.AddModelZoo()` registers).</summary>
    public static ModelCatalog Default => _default ??= new ModelCatalog(DiscoverFamilies());

    public IReadOnlyList<ModelPreset> List() => _presets.Values.OrderBy(p => p.Family, StringComparer.Ordinal).ThenBy(p => p.Name, StringComparer.Ordinal).ToList();

    public ModelPreset Get(string name) =>
        _presets.TryGetValue(name, out var preset) ? preset : throw new UnknownModelException(name, Closest(name));

    /// <summary>Exact parameter count, from a model built on the meta device (no memory is allocated).</summary>
    public ModelDescription Describe(string name)
    {
        var preset = Get(name);
        lock (_descriptions)
        {
            if (_descriptions.TryGetValue(preset.Name, out var cached)) return cached;
        }
        nn.Module model;
        lock (DefaultDeviceLock)
        {
            var previous = get_default_device();
            set_default_device(META);
            try { model = preset.Build(); }
            finally { set_default_device(previous); }
        }
        using (model)
        {
            var byModule = new SortedDictionary<string, long>(StringComparer.Ordinal);
            long total = 0;
            foreach (var (key, parameter) in model.named_parameters())
            {
                long count = parameter.numel();
                total += count;
                string top = key.Split('.')[0];
                byModule[top] = byModule.GetValueOrDefault(top) + count;
            }
            long buffers = model.named_buffers().Sum(b => b.buffer.numel());
            var description = new ModelDescription(preset, total, buffers, byModule);
            lock (_descriptions) _descriptions[preset.Name] = description;
            return description;
        }
    }

    public T Create<T>(string name, ModelCreateOptions? options = null) where T : nn.Module =>
        Create(name, options) as T ?? throw new InvalidCastException($"model '{name}' is a {Get(name).Build.Method.ReturnType.Name}, not a {typeof(T).Name}");

    public nn.Module Create(string name, ModelCreateOptions? options = null)
    {
        options ??= ModelCreateOptions.Default;
        var preset = Get(name);
        if (preset.Unavailable is not null) throw new NotSupportedException($"model '{preset.Name}' cannot be created yet: {preset.Unavailable}");
        var device = TorchRuntime.ParseDevice(options.Device);
        var dtype = TorchRuntime.ParseDtype(options.Dtype);
        if (options.Seed is long seed) manual_seed(seed);

        var model = preset.Build();
        try
        {
            if (dtype != ScalarType.Float32) model.to(dtype);
            if (device.type != DeviceType.CPU) model.to(device);
            var files = (options.WeightsPath is null ? Array.Empty<string>() : new[] { options.WeightsPath }).Concat(options.WeightsPaths ?? Array.Empty<string>()).ToList();
            if (files.Count > 1)
            {
                var readers = new List<ICheckpointReader>();
                try
                {
                    foreach (var file in files) readers.Add(Checkpoint.Open(file));
                    var sources = readers.Select(r => new CheckpointSource(r, preset.KeyMapFor?.Invoke(r) ?? KeyMap.Identity)).ToList();
                    var report = MultiFileLoader.Load(model, sources, new LoadOptions { Strict = options.Strict, Progress = options.OnLoadProgress });
                    options.OnLoadReport?.Invoke(report);
                }
                finally { foreach (var reader in readers) reader.Dispose(); }
            }
            else if (files.Count == 1)
            {
                using var reader = Checkpoint.Open(files[0]);
                var map = preset.KeyMapFor?.Invoke(reader) ?? KeyMap.Identity;
                var report = ModelLoader.Load(model, reader, map, new LoadOptions { Strict = options.Strict, Progress = options.OnLoadProgress });
                options.OnLoadReport?.Invoke(report);
            }
            if (options.Training) model.train(); else model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    IReadOnlyList<string> Closest(string name)
    {
        string lowered = name.ToLowerInvariant();
        return _presets.Keys
            .Select(k => (Name: k, Distance: k.Contains(lowered, StringComparison.OrdinalIgnoreCase) ? 0 : Levenshtein(lowered, k.ToLowerInvariant())))
            .Where(x => x.Distance <= Math.Max(3, name.Length / 2))
            .OrderBy(x => x.Distance).ThenBy(x => x.Name, StringComparer.Ordinal)
            .Take(5).Select(x => x.Name).ToList();
    }

    static int Levenshtein(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        var current = new int[b.Length + 1];
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }
}
