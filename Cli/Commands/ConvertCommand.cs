using System.CommandLine;
using ModelZoo.Attention;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Common;
using ModelZoo.Weights;
using static TorchSharp.torch;

namespace ModelZoo.Cli.Commands;

/// <summary>
/// `modelzoo convert PATH --model NAME --out FILE`: reads a checkpoint through the preset's key map, checks it against the
/// model (built on the meta device, so it costs no memory), and streams it tensor by tensor into safetensors in the chosen
/// layout, with config.json beside it.
/// </summary>
public sealed class ConvertCommand : ICliCommand
{
    public const string OriginalLayout = "original";

    public Command Build()
    {
        var path = new Argument<string>("path") { Description = "The checkpoint to convert (any format `inspect` reads)" };
        var model = new Option<string>("--model") { Description = "Preset whose key map and shapes the checkpoint must fit (see `modelzoo list`)", Required = true };
        var output = new Option<string>("--out") { Description = "Output .safetensors file, or a directory (any other name): model.safetensors and config.json inside it, the Hugging Face way", Required = true };
        var dtype = new Option<string?>("--dtype") { Description = "fp32, fp16 or bf16: convert floating tensors (default: keep the checkpoint's dtypes)" };
        var shardSize = new Option<string?>("--max-shard-size") { Description = "Split into shards of at most this size (e.g. 2GB, 500MB, 1GiB) with an index.json" };
        var layout = new Option<string>("--layout") { Description = "Key layout to write: original (the model's own keys) or another the preset declares (e.g. huggingface)", DefaultValueFactory = _ => OriginalLayout };
        var nonStrict = new Option<bool>("--non-strict") { Description = "Write what fits even if keys are missing, unexpected or mismatched (they are reported)" };
        var stateDict = new Option<string?>("--state-dict") { Description = "PyTorch pickles: the dotted key of the dict holding the weights" };
        var json = CommonOptions.Json();
        var command = new Command("convert", "Convert a checkpoint to safetensors (+ config.json) through a preset's key map, optionally in another layout, dtype or shards")
            { path, model, output, dtype, shardSize, layout, nonStrict, stateDict, json };
        command.Guard(parse =>
        {
            var result = Convert(parse.GetValue(path)!, parse.GetValue(model)!, parse.GetValue(output)!, parse.GetValue(dtype), parse.GetValue(shardSize),
                parse.GetValue(layout)!, !parse.GetValue(nonStrict), parse.GetValue(stateDict));
            if (parse.GetValue(json))
            {
                CliRun.PrintJson(new
                {
                    output = result.Saved.Path, files = result.Saved.Files, index = result.Saved.IndexPath, config = result.Saved.ConfigPath,
                    tensors = result.Saved.Tensors, bytes = result.Saved.TensorBytes, layout = result.Layout, report = LoadCommand.ToJson(result.Report),
                });
                return 0;
            }
            Console.WriteLine(result.Report.ToText().Replace("loaded ", "matched ", StringComparison.Ordinal));
            Console.WriteLine($"wrote {result.Saved.Tensors} tensors ({ByteSize.Format(result.Saved.TensorBytes)}) in the {result.Layout} layout to:");
            foreach (var file in result.Saved.Files) Console.WriteLine("  " + file);
            if (result.Saved.IndexPath is not null) Console.WriteLine("  " + result.Saved.IndexPath);
            if (result.Saved.ConfigPath is not null) Console.WriteLine("  " + result.Saved.ConfigPath);
            return 0;
        });
        return command;
    }

    public sealed record Result(SavedCheckpoint Saved, LoadReport Report, string Layout);

    public static Result Convert(string path, string modelName, string output, string? dtype = null, string? maxShardSize = null,
        string layout = OriginalLayout, bool strict = true, string? stateDictPath = null)
    {
        var preset = ModelCatalog.Default.Get(modelName);
        string? targetDtype = dtype is null ? null : StorageDtype.FromScalarType(TorchRuntime.ParseDtype(dtype));
        long? shardBytes = maxShardSize is null ? null : ByteSize.Parse(maxShardSize);
        KeyMap? layoutMap = null;
        if (!string.Equals(layout, OriginalLayout, StringComparison.OrdinalIgnoreCase))
        {
            var layouts = preset.Layouts ?? new Dictionary<string, KeyMap>();
            var match = layouts.FirstOrDefault(kv => string.Equals(kv.Key, layout, StringComparison.OrdinalIgnoreCase));
            if (match.Value is null)
                throw new ArgumentException($"model '{preset.Name}' has no '{layout}' layout (available: {string.Join(", ", layouts.Keys.Prepend(OriginalLayout))})");
            if (!match.Value.IsReversible) throw new ArgumentException($"the '{match.Key}' key map of '{preset.Name}' cannot be reversed, so it cannot be written");
            layoutMap = match.Value;
        }

        using var reader = Checkpoint.Open(path, stateDictPath);
        var map = preset.KeyMapFor?.Invoke(reader) ?? KeyMap.Identity;
        using var model = BuildOnMeta(preset);
        var (report, plan) = ModelLoader.Plan(model, reader, map, new LoadOptions { Strict = strict });
        var tensors = plan.Select(p => p.Source.WithName(p.Key)).ToList();
        if (layoutMap is not null)
        {
            try
            {
                tensors = layoutMap.Reverse().Apply(tensors).Tensors.ToList();
            }
            catch (InvalidOperationException e)
            {
                throw new CheckpointException(reader.Path, $"cannot write the '{layout}' layout: " + e.Message, inner: e);
            }
        }
        if (targetDtype is not null)
            foreach (var t in tensors.Where(t => StorageDtype.IsFloating(t.Dtype) && t.Dtype != targetDtype))
            {
                string change = $"{t.Dtype} -> {targetDtype}";
                report.DtypeChanges[change] = report.DtypeChanges.GetValueOrDefault(change) + 1;
            }
        var saved = SafetensorsWriter.Write(OutputFile(output), tensors, new SafetensorsWriteOptions
        {
            Dtype = targetDtype,
            MaxShardBytes = shardBytes,
            ConfigJson = ConfigJson.Serialize(preset.Config),
            Metadata = new Dictionary<string, string>
            {
                ["modelzoo.model"] = preset.Name,
                ["modelzoo.layout"] = layoutMap is null ? OriginalLayout : layout.ToLowerInvariant(),
                ["modelzoo.source"] = Path.GetFileName(reader.Path),
            },
        });
        report.TensorsLoaded = plan.Count;
        report.ParametersLoaded = plan.Sum(p => p.Source.ElementCount);
        return new Result(saved, report, layoutMap is null ? OriginalLayout : layout.ToLowerInvariant());
    }

    /// <summary>--out as a file: a *.safetensors name is the file itself; any other name is a folder (created if needed) that
    /// receives model.safetensors (or its shards and index) and config.json, as Hugging Face lays a model out.</summary>
    public static string OutputFile(string output)
    {
        if (output.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) && !Directory.Exists(output)) return output;
        if (File.Exists(output))
            throw new ArgumentException($"--out {output}: an existing file that is not .safetensors; give a .safetensors file or a folder");
        return Path.Combine(output, "model.safetensors");
    }

    /// <summary>The preset's module with every tensor on the meta device: shapes and names, no memory.</summary>
    static nn.Module BuildOnMeta(ModelPreset preset)
    {
        if (preset.Unavailable is not null) throw new NotSupportedException($"model '{preset.Name}' cannot be created yet: {preset.Unavailable}");
        var previous = get_default_device();
        set_default_device(META);
        try { return preset.Build(); }
        finally { set_default_device(previous); }
    }
}
