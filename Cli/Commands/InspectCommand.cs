using System.CommandLine;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Weights;
using static TorchSharp.torch;

namespace ModelZoo.Cli.Commands;

/// <summary>`modelzoo inspect PATH`: what a checkpoint holds, validated as it is read; exit 1 with the error when it is not sound.</summary>
public sealed class InspectCommand : ICliCommand
{
    public Command Build()
    {
        var path = new Argument<string>("path") { Description = "A checkpoint file (.safetensors, .bin/.pt/.pth/.ckpt, .index.json) or a Hugging Face style directory" };
        var json = CommonOptions.Json();
        var stateDict = new Option<string?>("--state-dict") { Description = "PyTorch pickles: the dotted key of the dict holding the weights (default: chosen automatically; \"\" = the root)" };
        var checkValues = new Option<bool>("--check-values") { Description = "Also read every tensor (one at a time) and count NaN/Inf values" };
        var limit = new Option<int>("--limit") { Description = "Tensors listed in the text output (all with --json)", DefaultValueFactory = _ => 1000 };
        var command = new Command("inspect", "List a checkpoint's tensors (name, dtype, shape), totals and non-tensor entries; exit 1 if it is not a sound checkpoint")
            { path, json, stateDict, checkValues, limit };
        command.Guard(parse =>
        {
            var summary = Inspect(parse.GetValue(path)!, parse.GetValue(stateDict), parse.GetValue(checkValues));
            if (parse.GetValue(json)) CliRun.PrintJson(summary);
            else Print(summary, parse.GetValue(limit));
            return 0;
        });
        return command;
    }

    public sealed record TensorInfo(string Name, string Dtype, long[] Shape, long Elements, long? NonFinite);

    public sealed record Summary(string Path, string Format, IReadOnlyList<string> Files, long FileBytes, int TensorCount, long Parameters,
        long TensorBytes, IReadOnlyDictionary<string, int> Dtypes, IReadOnlyList<TensorInfo> Tensors, IReadOnlyDictionary<string, string> Metadata,
        bool ValuesChecked);

    public static Summary Inspect(string path, string? stateDictPath = null, bool checkValues = false)
    {
        using var reader = Checkpoint.Open(path, stateDictPath);
        var files = reader is ShardedCheckpointReader sharded ? sharded.ShardPaths.Prepend(reader.Path).ToList() : new List<string> { reader.Path };
        var tensors = new List<TensorInfo>(reader.Entries.Count);
        foreach (var entry in reader.Entries)
        {
            long? nonFinite = null;
            if (checkValues)
            {
                using var scope = NewDisposeScope();
                var value = reader.Read(entry.Name);
                nonFinite = value.is_floating_point() && value.numel() > 0 ? value.isfinite().logical_not().sum().item<long>() : 0;
            }
            tensors.Add(new TensorInfo(entry.Name, entry.Dtype, entry.Shape, entry.ElementCount, nonFinite));
        }
        var dtypes = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in reader.Entries) dtypes[entry.Dtype] = dtypes.GetValueOrDefault(entry.Dtype) + 1;
        return new Summary(reader.Path, reader.Format, files, files.Sum(f => new FileInfo(f).Length), reader.Entries.Count,
            reader.Entries.Sum(e => e.ElementCount), reader.Entries.Sum(e => e.ByteLength), dtypes, tensors,
            new SortedDictionary<string, string>(reader.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal), checkValues);
    }

    static void Print(Summary s, int limit)
    {
        Console.WriteLine($"checkpoint: {s.Path}");
        Console.WriteLine($"format:     {s.Format}");
        Console.WriteLine($"files:      {s.Files.Count} ({s.FileBytes:N0} bytes, {ByteSize.Format(s.FileBytes)})");
        Console.WriteLine($"tensors:    {s.TensorCount:N0}, {s.Parameters:N0} parameters (elements of every tensor, buffers included), {ByteSize.Format(s.TensorBytes)} of data");
        Console.WriteLine($"dtypes:     {string.Join(", ", s.Dtypes.Select(kv => $"{kv.Key} x{kv.Value}"))}");
        var table = s.ValuesChecked ? new Table("name", "dtype", "shape", "elements", "NaN/Inf") : new Table("name", "dtype", "shape", "elements");
        foreach (var t in s.Tensors.Take(limit))
        {
            string shape = "[" + string.Join(", ", t.Shape) + "]";
            if (s.ValuesChecked) table.Add(t.Name, t.Dtype, shape, t.Elements, t.NonFinite);
            else table.Add(t.Name, t.Dtype, shape, t.Elements);
        }
        Console.Write(table);
        if (s.Tensors.Count > limit) Console.WriteLine($"... and {s.Tensors.Count - limit} more tensors (--limit, or --json for all)");
        if (s.ValuesChecked)
        {
            var bad = s.Tensors.Where(t => t.NonFinite > 0).ToList();
            Console.WriteLine(bad.Count == 0 ? "values: every tensor read; no NaN or Inf" : $"values: {bad.Count} tensors hold NaN or Inf: {string.Join(", ", bad.Select(t => t.Name))}");
        }
        if (s.Metadata.Count > 0)
        {
            Console.WriteLine("metadata and non-tensor entries (described, never executed):");
            foreach (var (key, value) in s.Metadata) Console.WriteLine($"  {key}: {value}");
        }
    }
}
