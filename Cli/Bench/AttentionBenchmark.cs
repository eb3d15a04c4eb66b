using System.CommandLine;
using System.Diagnostics;
using ModelZoo.Attention;
using ModelZoo.Attention.Diagnostics;
using ModelZoo.Cli.Commands;
using ModelZoo.Cli.Infrastructure;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Cli.Bench;

/// <summary>Fused scaled_dot_product_attention against the plain-math path: time and peak memory per forward call.</summary>
public sealed class AttentionBenchmark : IBenchmarkCommand
{
    public Command Build()
    {
        var lengths = new Option<int[]>("--lengths") { Description = "Sequence lengths", DefaultValueFactory = _ => new[] { 128, 256, 512, 1024, 2048 }, AllowMultipleArgumentsPerToken = true };
        var batch = new Option<int>("--batch") { Description = "Sequences per call", DefaultValueFactory = _ => 8 };
        var heads = new Option<int>("--heads") { Description = "Attention heads", DefaultValueFactory = _ => 12 };
        var headDim = new Option<int>("--head-dim") { Description = "Width of each head (query, key and value)", DefaultValueFactory = _ => 64 };
        var repeats = new Option<int>("--repeats") { Description = "Timed calls per cell (median reported)", DefaultValueFactory = _ => 3 };
        var device = CommonOptions.Device();
        var dtype = CommonOptions.Dtype();
        var json = CommonOptions.Json();
        var command = new Command("attention", "Fused vs math attention: forward time and peak memory per call")
            { lengths, batch, heads, headDim, repeats, device, dtype, json };
        command.Guard(parse =>
        {
            // mallopt changes malloc for the whole process: only when this process is `modelzoo` itself, never
            // inside a host that runs the command in-process (the tests), where it would change every later test.
            bool tunedAllocator = RunsAsModelZooProcess && ProcessMemory.UseMmapForLargeAllocations();
            var rows = Run(parse.GetValue(lengths)!, parse.GetValue(batch), parse.GetValue(heads), parse.GetValue(headDim), parse.GetValue(repeats),
                TorchRuntime.ParseDevice(parse.GetValue(device)), TorchRuntime.ParseDtype(parse.GetValue(dtype)));
            if (parse.GetValue(json)) { CliRun.PrintJson(rows); return 0; }
            Console.WriteLine($"attention forward, batch {parse.GetValue(batch)}, {parse.GetValue(heads)} heads, head dim {parse.GetValue(headDim)}, " +
                              $"{parse.GetValue(dtype)} on {parse.GetValue(device)}, {Environment.ProcessorCount} cores, median of {parse.GetValue(repeats)}");
            var table = new Table("seq", "fused ms", "math ms", "math/fused time", "fused peak MB", "math peak MB", "math/fused memory");
            foreach (var r in rows)
                table.Add(r.Length, r.FusedMs.ToString("0.0"), r.MathMs.ToString("0.0"), r.TimeRatio.ToString("0.00") + "x",
                    r.FusedPeakMB.ToString("0.0"), r.MathPeakMB.ToString("0.0"), r.MemoryRatio.ToString("0.00") + "x");
            Console.Write(table);
            Console.WriteLine("peak = resident memory above the inputs during one call (Linux VmHWM, reset before each call; " +
                (tunedAllocator
                    ? "allocations of 64 KB or more are mmapped so freed memory leaves"
                    : "malloc NOT tuned (run inside another process): freed memory that malloc keeps is not counted, peaks are lower bounds") +
                "); the n x n score matrix alone is batch*heads*seq^2*4 bytes.");
            return 0;
        });
        return command;
    }

    public sealed record Row(int Length, double FusedMs, double MathMs, double FusedPeakMB, double MathPeakMB)
    {
        public double TimeRatio => MathMs / FusedMs;
        public double MemoryRatio => FusedPeakMB > 0 ? MathPeakMB / FusedPeakMB : double.NaN;
    }

    /// <summary>True when the entry assembly is the CLI (the `modelzoo` process), false inside a test host.</summary>
    static bool RunsAsModelZooProcess => System.Reflection.Assembly.GetEntryAssembly() == typeof(AttentionBenchmark).Assembly;

    /// <summary>
    /// Measures fused against math attention. Peak memory is meaningful only after
    /// <see cref="ProcessMemory.UseMmapForLargeAllocations"/> (the CLI does that when it is the process).
    /// </summary>
    public static List<Row> Run(int[] lengths, int batch, int heads, int headDim, int repeats, Device device, ScalarType dtype)
    {
        var rows = new List<Row>();
        using var _ = no_grad();
        foreach (int length in lengths)
        {
            using var scope = NewDisposeScope();
            var q = randn(batch, heads, length, headDim, dtype: dtype, device: device);
            var k = randn(batch, heads, length, headDim, dtype: dtype, device: device);
            var v = randn(batch, heads, length, headDim, dtype: dtype, device: device);
            var (fusedMs, fusedPeak) = Measure(() => AttentionCore.AttendHeads(q, k, v, kernel: AttentionKernel.Fused), repeats, device);
            var (mathMs, mathPeak) = Measure(() => AttentionCore.AttendHeads(q, k, v, kernel: AttentionKernel.Reference), repeats, device);
            rows.Add(new Row(length, fusedMs, mathMs, fusedPeak / 1e6, mathPeak / 1e6));
        }
        return rows;
    }

    static (double Ms, double PeakBytes) Measure(Func<Tensor> call, int repeats, Device device)
    {
        using (NewDisposeScope()) call(); // warm-up
        var times = new List<double>();
        double peak = 0;
        for (int i = 0; i < Math.Max(1, repeats); i++)
        {
            GC.Collect();
            long before = ProcessMemory.ResidentBytes();
            ProcessMemory.ResetPeak();
            var watch = Stopwatch.StartNew();
            using (NewDisposeScope())
            {
                var output = call();
                if (device.type == DeviceType.CUDA) cuda.synchronize();
                _ = output.shape;
            }
            watch.Stop();
            times.Add(watch.Elapsed.TotalMilliseconds);
            peak = Math.Max(peak, ProcessMemory.PeakResidentBytes() - before);
        }
        times.Sort();
        return (times[times.Count / 2], peak);
    }
}
