using System.CommandLine;
using System.Diagnostics;
using ModelZoo.Attention;
using ModelZoo.Attention.Diagnostics;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Models.Catalog;
using ModelZoo.Weights;

namespace ModelZoo.Cli.Commands;

/// <summary>
/// `modelzoo load NAME PATH [PATH ...]`: builds a preset, loads a checkpoint into it through the preset's key map and
/// prints the load report. Several paths = one model stored in several files (their union must cover the model).
/// </summary>
public sealed class LoadCommand : ICliCommand
{
    public Command Build()
    {
        var name = new Argument<string>("name") { Description = "Preset name (see `modelzoo list`)" };
        var path = new Argument<string[]>("path") { Description = "Checkpoint file or directory; several for a model stored in parts (OpenFlamingo: vision tower, LM, checkpoint.pt)", Arity = ArgumentArity.OneOrMore };
        var nonStrict = new Option<bool>("--non-strict") { Description = "Load what fits; report missing, unexpected and mismatched keys instead of failing" };
        var stateDict = new Option<string?>("--state-dict") { Description = "PyTorch pickles: the dotted key of the dict holding the weights" };
        var device = CommonOptions.Device();
        var dtype = CommonOptions.Dtype();
        var json = CommonOptions.Json();
        var command = new Command("load", "Load a checkpoint into a preset and print the load report (missing/unexpected keys, shape mismatches, dtype changes)")
            { name, path, nonStrict, stateDict, device, dtype, json };
        command.Guard(parse =>
        {
            var catalog = ModelCatalog.Default;
            var preset = catalog.Get(parse.GetValue(name)!);
            using var model = catalog.Create(preset.Name, new ModelCreateOptions { Device = parse.GetValue(device)!, Dtype = parse.GetValue(dtype)! });
            var watch = Stopwatch.StartNew();
            ProcessMemory.ResetPeak();
            long before = ProcessMemory.ResidentBytes();
            var readers = new List<ICheckpointReader>();
            LoadReport report;
            string mapText;
            try
            {
                foreach (var file in parse.GetValue(path)!) readers.Add(Checkpoint.Open(file, parse.GetValue(stateDict)));
                var sources = readers.Select(r => new CheckpointSource(r, preset.KeyMapFor?.Invoke(r) ?? KeyMap.Identity)).ToList();
                mapText = string.Join(" | ", sources.Select(source => source.Map.ToString()));
                report = sources.Count == 1
                    ? ModelLoader.Load(model, readers[0], sources[0].Map, new LoadOptions { Strict = !parse.GetValue(nonStrict) })
                    : MultiFileLoader.Load(model, sources, new LoadOptions { Strict = !parse.GetValue(nonStrict) });
            }
            finally { foreach (var reader in readers) reader.Dispose(); }
            double seconds = watch.Elapsed.TotalSeconds;
            long peak = ProcessMemory.PeakResidentBytes();
            if (parse.GetValue(json))
            {
                CliRun.PrintJson(new { model = preset.Name, seconds, peakResidentBytesAboveModel = peak - before, report = ToJson(report) });
                return 0;
            }
            Console.WriteLine(report.ToText(maxPerList: int.MaxValue));
            Console.WriteLine($"key map: {mapText}");
            Console.WriteLine($"time: {seconds:0.000} s; peak resident memory during the load: {ByteSize.Format(Math.Max(0, peak - before))} above the model");
            Console.WriteLine(report.IsComplete ? "complete: every model tensor loaded" : "INCOMPLETE (non-strict load)");
            return 0;
        });
        return command;
    }

    /// <summary>Prints a one-line summary of every checkpoint load to standard error until disposed (never to stdout, which
    /// --json keeps for data). Commands that load weights through the catalog or the training code call this once.</summary>
    public static IDisposable PrintLoadReports() => ModelLoader.ObserveLoads(report => Console.Error.WriteLine("modelzoo: " + report.ToSummary()));

    public static object ToJson(LoadReport report) => new
    {
        source = report.Source,
        format = report.Format,
        complete = report.IsComplete,
        tensorsLoaded = report.TensorsLoaded,
        parametersLoaded = report.ParametersLoaded,
        missing = report.Missing,
        unexpected = report.Unexpected,
        shapeMismatches = report.ShapeMismatches.Select(m => new { key = m.Key, expected = m.Expected, found = m.Found, sources = m.Sources }),
        ignored = report.Ignored,
        dtypeChanges = report.DtypeChanges,
        superseded = report.Superseded,
    };
}
