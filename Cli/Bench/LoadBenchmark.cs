using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using ModelZoo.Attention.Diagnostics;
using ModelZoo.Cli.Commands;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Cli.Bench;

/// <summary>
/// Loading a ~1 GB safetensors checkpoint into a model: this library's streaming loader against TorchSharp.PyBridge's
/// whole-file Safetensors.LoadStateDict, each in a child process of its own so that every peak is clean.
/// </summary>
public sealed class LoadBenchmark : IBenchmarkCommand
{
    public static readonly string[] Variants = { "streaming", "pybridge" };

    public Command Build()
    {
        var sizeMb = new Option<int>("--size-mb") { Description = "Approximate checkpoint size in MiB", DefaultValueFactory = _ => 1024 };
        var hidden = new Option<int>("--hidden") { Description = "Hidden size of the generated transformer-shaped model", DefaultValueFactory = _ => 1024 };
        var directory = new Option<string?>("--dir") { Description = "Where to write the generated checkpoint (default: a temporary folder)" };
        var keep = new Option<bool>("--keep") { Description = "Keep the generated checkpoint" };
        var inProcess = new Option<bool>("--in-process") { Description = "Run the variants in this process, one after the other (peaks are then not independent)" };
        var variant = new Option<string?>("--variant") { Description = "Internal: run one variant (streaming|pybridge) on --file and print its measurement as JSON" };
        var file = new Option<string?>("--file") { Description = "Internal: the checkpoint for --variant" };
        var layers = new Option<int>("--layers") { Description = "Internal: layers of the model for --variant", DefaultValueFactory = _ => 0 };
        var json = CommonOptions.Json();
        var command = new Command("load", "Streaming checkpoint load vs PyBridge's whole-file load: wall time and peak resident memory on a generated ~1 GB safetensors file")
            { sizeMb, hidden, directory, keep, inProcess, variant, file, layers, json };
        command.Guard(parse =>
        {
            if (parse.GetValue(variant) is string one)
            {
                var m = Measure(one, parse.GetValue(file) ?? throw new ArgumentException("--variant needs --file"), new Shape(parse.GetValue(hidden), parse.GetValue(layers)));
                Console.WriteLine(JsonSerializer.Serialize(m));
                return 0;
            }
            var result = Run(parse.GetValue(sizeMb), parse.GetValue(hidden), parse.GetValue(directory), parse.GetValue(keep), parse.GetValue(inProcess));
            if (parse.GetValue(json)) { CliRun.PrintJson(result); return 0; }
            Print(result);
            return 0;
        });
        return command;
    }

    /// <summary>A BERT-large-like stack: word/position embeddings, then layers of q/k/v/o, LayerNorms and a 4x MLP.</summary>
    public sealed record Shape(int Hidden, int Layers, int Vocab = 30522, int Positions = 512)
    {
        public long LayerElements => 4L * Hidden * Hidden + 4L * Hidden + 2L * 4 * Hidden * Hidden + 4L * Hidden + Hidden + 4L * Hidden;
        public long EmbeddingElements => (long)(Vocab + Positions) * Hidden + 2L * Hidden;
        public long Bytes => 4 * (EmbeddingElements + Layers * LayerElements);
        /// <summary>The largest float32 tensor: the word embeddings or an MLP weight.</summary>
        public long LargestTensorBytes => 4 * Math.Max((long)Vocab * Hidden, 4L * Hidden * Hidden);

        public static Shape ForSize(long bytes, int hidden)
        {
            var probe = new Shape(hidden, 0);
            int layers = (int)Math.Max(1, Math.Round((bytes / 4.0 - probe.EmbeddingElements) / probe.LayerElements));
            return probe with { Layers = layers };
        }

        public nn.Module Build()
        {
            var embeddings = nn.Sequential(("word", nn.Embedding(Vocab, Hidden)), ("position", nn.Embedding(Positions, Hidden)), ("norm", nn.LayerNorm(Hidden)));
            var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
            for (int i = 0; i < Layers; i++)
                layers.Add((i.ToString(), nn.Sequential(
                    ("query", nn.Linear(Hidden, Hidden)), ("key", nn.Linear(Hidden, Hidden)), ("value", nn.Linear(Hidden, Hidden)),
                    ("output", nn.Linear(Hidden, Hidden)), ("norm1", nn.LayerNorm(Hidden)),
                    ("fc1", nn.Linear(Hidden, 4 * Hidden)), ("fc2", nn.Linear(4 * Hidden, Hidden)), ("norm2", nn.LayerNorm(Hidden)))));
            return nn.Sequential(("embeddings", embeddings), ("layers", nn.Sequential(layers)));
        }
    }

    public sealed record Measurement(string Variant, long ModelBytes, long BaselineBytes, long WithModelBytes, long PeakBytes, double Seconds, double Checksum,
                                     bool PeakReset = true)
    {
        /// <summary>Resident memory the load itself added: the peak during the load minus the resident memory with the model built.</summary>
        public long LoadExtraBytes => PeakBytes - WithModelBytes;
        /// <summary>Peak resident memory of the whole process during the load, over the model's size.</summary>
        public double PeakOverModel => PeakBytes / (double)ModelBytes;
        /// <summary>Peak above the runtime's own baseline (before the model existed), over the model's size.</summary>
        public double PeakAboveBaselineOverModel => (PeakBytes - BaselineBytes) / (double)ModelBytes;
    }

    public sealed record Result(string File, long FileBytes, double GenerateSeconds, Shape Shape, bool InProcess, IReadOnlyList<Measurement> Measurements);

    public static Result Run(int sizeMb, int hidden, string? directory, bool keep, bool inProcess)
    {
        var shape = Shape.ForSize((long)sizeMb << 20, hidden);
        string folder = directory ?? Path.Combine(Path.GetTempPath(), "modelzoo-bench-load-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        string file = Path.Combine(folder, $"synthetic-h{hidden}-l{shape.Layers}.safetensors");
        try
        {
            var watch = Stopwatch.StartNew();
            if (!File.Exists(file) || new FileInfo(file).Length < shape.Bytes) Generate(file, shape);
            double generate = watch.Elapsed.TotalSeconds;
            var measurements = Variants.Select(v => inProcess ? Measure(v, file, shape) : MeasureInChild(v, file, shape)).ToList();
            return new Result(file, new FileInfo(file).Length, generate, shape, inProcess, measurements);
        }
        finally
        {
            if (!keep)
            {
                File.Delete(file);
                if (directory is null) Directory.Delete(folder, recursive: true);
            }
        }
    }

    /// <summary>Writes random weights tensor by tensor (never more than one in memory), named as <see cref="Shape.Build"/> names them.</summary>
    static void Generate(string file, Shape shape)
    {
        using var meta = BuildOn(META, shape);
        manual_seed(1);
        var tensors = meta.state_dict()
            .Select(kv => new MappedTensor(kv.Key, "F32", kv.Value.shape, new[] { kv.Key }, () => randn(kv.Value.shape) * 0.02f))
            .ToList();
        SafetensorsWriter.Write(file, tensors, new SafetensorsWriteOptions { Metadata = new Dictionary<string, string> { ["source"] = "modelzoo bench load" } });
    }

    static nn.Module BuildOn(Device device, Shape shape)
    {
        var previous = get_default_device();
        set_default_device(device);
        try { return shape.Build(); }
        finally { set_default_device(previous); }
    }

    public static Measurement Measure(string variant, string file, Shape shape)
    {
        using (ones(1)) { } // native library loaded before the baseline
        GC.Collect();
        long baseline = ProcessMemory.ResidentBytes();
        using var model = shape.Build();
        long modelBytes = model.state_dict().Values.Sum(t => t.numel() * t.ElementSize);
        GC.Collect();
        long withModel = ProcessMemory.ResidentBytes();
        bool peakReset = ProcessMemory.ResetPeak();
        var watch = Stopwatch.StartNew();
        switch (variant)
        {
            case "streaming":
                ModelLoader.Load(model, file);
                break;
            case "pybridge":
                {
                    var state = TorchSharp.PyBridge.Safetensors.LoadStateDict(file);
                    using (no_grad()) model.load_state_dict(state, strict: true);
                    foreach (var tensor in state.Values) tensor.Dispose();
                    break;
                }
            default:
                throw new ArgumentException($"unknown variant '{variant}' (use {string.Join(" or ", Variants)})");
        }
        double seconds = watch.Elapsed.TotalSeconds;
        long peak = ProcessMemory.PeakResidentBytes();
        double checksum = 0;
        using (no_grad())
            foreach (var tensor in model.state_dict().Values)
                using (var sum = tensor.abs().sum()) checksum += sum.item<float>();
        return new Measurement(variant, modelBytes, baseline, withModel, peak, seconds, checksum, peakReset);
    }

    static Measurement MeasureInChild(string variant, string file, Shape shape)
    {
        string process = Environment.ProcessPath ?? "dotnet";
        var start = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(process) == "modelzoo") start.FileName = process;
        else
        {
            start.FileName = "dotnet";
            start.ArgumentList.Add(typeof(LoadBenchmark).Assembly.Location);
        }
        foreach (var arg in new[] { "bench", "load", "--variant", variant, "--file", file, "--hidden", shape.Hidden.ToString(), "--layers", shape.Layers.ToString() })
            start.ArgumentList.Add(arg);
        using var child = Process.Start(start) ?? throw new InvalidOperationException("cannot start " + start.FileName);
        var stderr = child.StandardError.ReadToEndAsync();
        string stdout = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        if (child.ExitCode != 0) throw new InvalidOperationException($"variant {variant} failed (exit {child.ExitCode}): {stderr.Result.Trim()}");
        var line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
        return JsonSerializer.Deserialize<Measurement>(line) ?? throw new InvalidOperationException($"variant {variant} printed no measurement");
    }

    static void Print(Result r)
    {
        Console.WriteLine($"load {ByteSize.Format(r.FileBytes)} of safetensors ({r.Shape.Layers} layers, hidden {r.Shape.Hidden}, {r.Shape.Bytes / 4:N0} float32 values; " +
                          $"generated in {r.GenerateSeconds:0.0} s) into a model on the CPU, {Environment.ProcessorCount} cores, " +
                          (r.InProcess ? "variants in this process (peaks not independent)" : "each variant in a fresh process"));
        var table = new Table("variant", "time s", "model MiB", "peak RSS MiB", "peak/model", "baseline MiB", "(peak-baseline)/model", "load extra MiB", "checksum");
        foreach (var m in r.Measurements)
            table.Add(m.Variant, m.Seconds.ToString("0.00"), (m.ModelBytes >> 20).ToString("N0"), (m.PeakBytes >> 20).ToString("N0"),
                m.PeakOverModel.ToString("0.00") + "x", (m.BaselineBytes >> 20).ToString("N0"), m.PeakAboveBaselineOverModel.ToString("0.00") + "x",
                (m.LoadExtraBytes >> 20).ToString("N0") + (m.PeakReset ? "" : " (peak not reset)"), m.Checksum.ToString("0.000e+0"));
        Console.Write(table);
        var ours = r.Measurements.Single(m => m.Variant == "streaming");
        var theirs = r.Measurements.Single(m => m.Variant == "pybridge");
        Console.WriteLine($"pybridge/streaming: time {theirs.Seconds / ours.Seconds:0.00}x, peak RSS {theirs.PeakBytes / (double)ours.PeakBytes:0.00}x, " +
                          $"memory above baseline {(theirs.PeakBytes - theirs.BaselineBytes) / (double)(ours.PeakBytes - ours.BaselineBytes):0.00}x");
        Console.WriteLine($"checksums {(Math.Abs(ours.Checksum - theirs.Checksum) <= 1e-6 * Math.Abs(ours.Checksum) ? "agree" : "DIFFER")}; " +
                          "peak = Linux VmHWM of the loading process, reset after the model was built; baseline = resident memory before the model existed " +
                          "(.NET and libtorch); load extra = peak minus the resident memory with the model built, before the load.");
    }
}
