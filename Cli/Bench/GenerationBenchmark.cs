using System.CommandLine;
using System.Diagnostics;
using ModelZoo.Cli.Commands;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Flamingo;
using ModelZoo.Models.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Cli.Bench;

/// <summary>
/// Greedy generation speed with and without the key/value cache at several prompt lengths: end-to-end tokens per
/// second, and the decode cost per token ((time for N tokens − time for 1 token) / (N − 1), so the prompt pass is
/// left out) with its ratio to the shortest context.
/// </summary>
public sealed class GenerationBenchmark : IBenchmarkCommand
{
    public Command Build()
    {
        var models = new Option<string[]>("--models") { Description = "flamingo-tiny and/or gpt2-small (random weights)", DefaultValueFactory = _ => new[] { "flamingo-tiny", "gpt2-small" }, AllowMultipleArgumentsPerToken = true };
        var contexts = new Option<int[]>("--contexts") { Description = "Prompt lengths in tokens", DefaultValueFactory = _ => new[] { 64, 256, 512 }, AllowMultipleArgumentsPerToken = true };
        var newTokens = new Option<int>("--new-tokens") { Description = "Tokens generated per run", DefaultValueFactory = _ => 128 };
        var uncachedTokens = new Option<int?>("--uncached-new-tokens") { Description = "Tokens generated without the cache (default: --new-tokens); the table says which was used" };
        var repeats = new Option<int>("--repeats") { Description = "Timed runs per cell (median reported)", DefaultValueFactory = _ => 1 };
        var noUncached = new Option<bool>("--cached-only") { Description = "Skip the runs without the cache" };
        var threads = new Option<int?>("--threads") { Description = "torch intra-op threads (default: torch's choice)" };
        var device = CommonOptions.Device();
        var dtype = CommonOptions.Dtype();
        var json = CommonOptions.Json();
        var command = new Command("generate", "Greedy generation: tokens/s and decode time per token with and without the KV cache at several contexts")
            { models, contexts, newTokens, uncachedTokens, repeats, noUncached, threads, device, dtype, json };
        command.Guard(parse =>
        {
            int tokens = parse.GetValue(newTokens);
            if (tokens < 2) throw new ArgumentException("--new-tokens must be at least 2");
            int previousThreads = get_num_threads();
            if (parse.GetValue(threads) is int n) set_num_threads(n);
            int usedThreads = get_num_threads();
            var rows = new List<Row>();
            try
            {
                foreach (var model in parse.GetValue(models)!)
                    rows.AddRange(Run(model, parse.GetValue(contexts)!, tokens, parse.GetValue(uncachedTokens) ?? tokens, parse.GetValue(repeats),
                        !parse.GetValue(noUncached), parse.GetValue(device)!, parse.GetValue(dtype)!, line => { if (!parse.GetValue(json)) Console.Error.WriteLine(line); }));
            }
            finally { set_num_threads(previousThreads); }
            if (parse.GetValue(json)) { CliRun.PrintJson(rows); return 0; }
            Console.WriteLine("decode ms/token = (time for N tokens - time for 1 token) / (N - 1): the prompt pass left out; CPU = process CPU time (all threads), steadier than wall time on a busy machine");
            Console.WriteLine($"greedy generation, batch 1, {parse.GetValue(dtype)} on {parse.GetValue(device)}, {Environment.ProcessorCount} cores, torch threads {usedThreads}, median of {parse.GetValue(repeats)}");
            var table = new Table("model", "context", "cache", "new tokens", "total s", "tokens/s", "prompt pass ms", "decode ms/token", "vs first context",
                "decode CPU ms/token", "vs first context (CPU)");
            foreach (var r in rows)
                table.Add(r.Model, r.Context, r.Cache ? "yes" : "no", r.NewTokens, r.TotalSeconds.ToString("0.00"), r.TokensPerSecond.ToString("0.0"),
                    r.PromptMs.ToString("0.0"), r.DecodeMsPerToken.ToString("0.00"), r.DecodeRatio.ToString("0.00") + "x",
                    r.DecodeCpuMsPerToken.ToString("0.00"), r.DecodeCpuRatio.ToString("0.00") + "x");
            Console.Write(table);
            foreach (var group in rows.Where(r => r.Cache).GroupBy(r => r.Model))
            {
                var first = group.First();
                var last = group.Last();
                Console.WriteLine($"{group.Key}: with the cache, decode time per token at context {last.Context} is {last.DecodeRatio:0.00}x (wall) / " +
                                  $"{last.DecodeCpuRatio:0.00}x (CPU time) that at {first.Context} (goal <= 1.3x)");
            }
            foreach (var pair in rows.Where(r => r.Cache).Join(rows.Where(r => !r.Cache), c => (c.Model, c.Context), u => (u.Model, u.Context), (c, u) => (c, u)))
                Console.WriteLine($"{pair.c.Model} context {pair.c.Context}: the cache makes decoding {pair.u.DecodeCpuMsPerToken / pair.c.DecodeCpuMsPerToken:0.0}x cheaper per token (CPU time; " +
                                  $"{pair.u.DecodeMsPerToken / pair.c.DecodeMsPerToken:0.0}x wall)");
            return 0;
        });
        return command;
    }

    public sealed record Row(string Model, int Context, bool Cache, int NewTokens, double TotalSeconds, double PromptMs, double DecodeMsPerToken,
                             double DecodeCpuMsPerToken)
    {
        public double DecodeCpuRatio { get; set; } = 1;
        public double TokensPerSecond => NewTokens / TotalSeconds;
        public double DecodeRatio { get; set; } = 1;
        public double ThroughputRatio { get; set; } = 1;
    }

    /// <summary>The generator and a prompt of <c>context</c> tokens (Flamingo: one image, the prompt starts with "&lt;image&gt;").</summary>
    static (IGenerativeModel Model, IDisposable Owner, Func<int, long[]> Prompt) Load(string name, Device device, string dtype)
    {
        var options = new ModelCreateOptions { Seed = 1234, Device = device.ToString(), Dtype = dtype };
        var module = ModelCatalog.Default.Create(name, options);
        switch (module)
        {
            case FlamingoModel flamingo:
            {
                var config = flamingo.Config;
                Tensor media;
                using (no_grad())
                {
                    var image = randn(new long[] { 1, 1, 1, 3, config.VisionEncoder.ImageSize, config.VisionEncoder.ImageSize }, device: device).to(flamingo.Decoder.TokenEmbeddingWeightDtype());
                    media = flamingo.EncodeMedia(image).DetachFromDisposeScope();
                }
                var generator = new FlamingoGenerativeModel(flamingo, media);
                return (generator, new Owned(flamingo, media), context => Prompt(context, config.BaseVocabSize, config.MediaTokenId));
            }
            case IDecoderLanguageModel decoder:                                  // GPT-2, MPT, LLaMA
                return (new DecoderGenerativeModel(decoder), new Owned(module, null), context => Prompt(context, decoder.VocabSize, null));
            default:
                module.Dispose();
                throw new ArgumentException($"model '{name}' is not a generative model (use flamingo-*, gpt2*, mpt-* or llama-* presets)");
        }
    }

    sealed class Owned(IDisposable model, Tensor? media) : IDisposable
    {
        public void Dispose() { media?.Dispose(); model.Dispose(); }
    }

    static long[] Prompt(int context, int vocab, int? mediaToken)
    {
        var random = new Random(context);
        var ids = Enumerable.Range(0, context).Select(_ => (long)random.Next(vocab)).ToArray();
        if (mediaToken is int m) ids[0] = m;
        return ids;
    }

    public static List<Row> Run(string name, int[] contexts, int newTokens, int uncachedTokens, int repeats, bool withUncached, string deviceName, string dtype, Action<string> log)
    {
        var device = ModelZoo.Attention.TorchRuntime.ParseDevice(deviceName);
        var (model, owner, prompt) = Load(name, device, dtype);
        using var _ = owner;
        var rows = new List<Row>();
        foreach (bool cache in withUncached ? new[] { true, false } : new[] { true })
        {
            int tokens = cache ? newTokens : uncachedTokens;
            // warm-up
            Time(model, prompt(contexts[0]), 4, cache, device);
            Row? first = null;
            foreach (int context in contexts)
            {
                var ids = prompt(context);
                var promptOnly = Enumerable.Range(0, Math.Max(1, repeats)).Select(_ => Time(model, ids, 1, cache, device)).ToList();
                var total = Enumerable.Range(0, Math.Max(1, repeats)).Select(_ => Time(model, ids, tokens, cache, device)).ToList();
                double promptWall = Median(promptOnly.Select(t => t.Wall)), totalWall = Median(total.Select(t => t.Wall));
                double promptCpu = Median(promptOnly.Select(t => t.Cpu)), totalCpu = Median(total.Select(t => t.Cpu));
                var row = new Row(name, context, cache, tokens, totalWall, promptWall * 1000, (totalWall - promptWall) * 1000 / (tokens - 1),
                    (totalCpu - promptCpu) * 1000 / (tokens - 1));
                first ??= row;
                row.DecodeRatio = row.DecodeMsPerToken / first.DecodeMsPerToken;
                row.ThroughputRatio = row.TokensPerSecond / first.TokensPerSecond;
                row.DecodeCpuRatio = row.DecodeCpuMsPerToken / first.DecodeCpuMsPerToken;
                rows.Add(row);
                log($"{name} context {context} cache {(cache ? "yes" : "no")}: {tokens} tokens in {totalWall:0.00} s ({row.TokensPerSecond:0.0} tokens/s), decode {row.DecodeMsPerToken:0.00} ms/token");
            }
        }
        return rows;
    }

    static double Median(IEnumerable<double> values)
    {
        var sorted = values.OrderBy(v => v).ToList();
        return sorted[sorted.Count / 2];
    }

    /// <summary>Wall-clock seconds and process CPU seconds (all threads) of one generation.</summary>
    static (double Wall, double Cpu) Time(IGenerativeModel model, long[] prompt, int tokens, bool cache, Device device)
    {
        GC.Collect();
        var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        var result = TextGenerator.Generate(model, new[] { prompt }, new GenerationOptions { MaxNewTokens = tokens, UseCache = cache });
        if (device.type == DeviceType.CUDA) cuda.synchronize();
        watch.Stop();
        process.Refresh();
        if (result[0].Tokens.Length != tokens) throw new InvalidOperationException($"generated {result[0].Tokens.Length} tokens, expected {tokens}");
        return (watch.Elapsed.TotalSeconds, (process.TotalProcessorTime - cpu).TotalSeconds);
    }
}
