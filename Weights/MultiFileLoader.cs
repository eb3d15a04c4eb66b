using TorchSharp;

namespace ModelZoo.Weights;

/// <summary>One checkpoint file of a model stored in several files, with the key map that fits that file.</summary>
public sealed record CheckpointSource(ICheckpointReader Reader, KeyMap Map);

/// <summary>
/// Loads a model from several checkpoint files (a vision tower, a language model and the trained parts of a
/// multimodal model, as the OpenFlamingo releases come). Each file is matched non-strictly through its key map; the
/// union must then cover the model: with strict loading, a model key that no file supplies with the right shape, or a
/// file key the model does not have, is an error naming the key and the files, and nothing is loaded. A key supplied by
/// more than one file is taken from the LAST file that has it; the report lists each such key under "superseded".
/// </summary>
public static class MultiFileLoader
{
    public static LoadReport Load(torch.nn.Module model, IReadOnlyList<CheckpointSource> sources, LoadOptions? options = null)
    {
        if (sources.Count == 0) throw new ArgumentException("no checkpoint files to load");
        options ??= LoadOptions.Default;
        var nonStrict = options with { Strict = false, Progress = null };

        // Plan every file first (headers only): nothing is read or copied until the union is known to fit.
        var plans = sources.Select(s => ModelLoader.Plan(model, s.Reader, s.Map, nonStrict)).ToList();
        var report = new LoadReport
        {
            Source = string.Join(" + ", sources.Select(s => s.Reader.Path)),
            Format = string.Join(" + ", sources.Select(s => s.Reader.Format).Distinct()),
        };
        var winner = new Dictionary<string, (int File, MappedTensor Tensor)>(StringComparer.Ordinal);
        for (int i = 0; i < sources.Count; i++)
            foreach (var (key, tensor) in plans[i].Plan)
            {
                if (winner.TryGetValue(key, out var earlier))
                    report.Superseded.Add($"{key}: from {sources[i].Reader.Path} (also in {sources[earlier.File].Reader.Path})");
                winner[key] = (i, tensor);
            }
        var modelKeys = model.state_dict().Keys.ToList();
        report.Missing.AddRange(modelKeys.Where(k => !winner.ContainsKey(k)));
        var mismatched = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < sources.Count; i++)
        {
            var (fileReport, _) = plans[i];
            report.Unexpected.AddRange(fileReport.Unexpected.Select(k => $"{k} (in {sources[i].Reader.Path})"));
            report.Ignored.AddRange(fileReport.Ignored);
            foreach (var mismatch in fileReport.ShapeMismatches)
            {
                if (winner.TryGetValue(mismatch.Key, out var taken))
                    report.Superseded.Add($"{mismatch.Key}: misshaped in {sources[i].Reader.Path} ([{string.Join(", ", mismatch.Found)}] for [{string.Join(", ", mismatch.Expected)}]), taken from {sources[taken.File].Reader.Path}");
                else if (mismatched.Add(mismatch.Key))
                    report.ShapeMismatches.Add(mismatch with { Sources = mismatch.Sources.Select(s => $"{s} in {sources[i].Reader.Path}").ToList() });
            }
        }
        // A key with a wrong shape in every file that has it is listed as a mismatch rather than as missing too.
        report.Missing.RemoveAll(mismatched.Contains);

        if (options.Strict && !report.IsComplete)
            throw new CheckpointException(report.Source,
                $"the {sources.Count} files together do not fit the model (strict load; nothing was loaded):" + Environment.NewLine + report.ToText());

        int total = winner.Count, done = 0;
        // The per-file loads stay silent: an observer hears of the whole load once, with the union's report.
        using (ModelLoader.ObserveLoads(_ => { }))
        for (int i = 0; i < sources.Count; i++)
        {
            int file = i;
            // Keys a later file supplies again are dropped here, so each key is read once, from its winning file.
            var own = plans[file].Plan.Select(p => p.Key).ToHashSet(StringComparer.Ordinal);
            var superseded = winner.Where(w => w.Value.File != file && own.Contains(w.Key)).Select(w => w.Key).ToList();
            var map = superseded.Count == 0 ? sources[i].Map
                : sources[i].Map.Then(KeyMap.Identity.IgnoreRegex("^(" + string.Join("|", superseded.Select(System.Text.RegularExpressions.Regex.Escape)) + ")$"));
            var fileReport = ModelLoader.Load(model, sources[i].Reader, map, nonStrict with { Progress = options.Progress is null ? null : (_, _) => options.Progress(++done, total) });
            foreach (var (change, count) in fileReport.DtypeChanges) report.DtypeChanges[change] = report.DtypeChanges.GetValueOrDefault(change) + count;
            report.TensorsLoaded += fileReport.TensorsLoaded;
            report.ParametersLoaded += fileReport.ParametersLoaded;
        }
        ModelLoader.NotifyLoad(report);
        return report;
    }
}
