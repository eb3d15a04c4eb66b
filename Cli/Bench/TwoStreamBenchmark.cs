using System.CommandLine;
using System.Diagnostics;
using ModelZoo.Attention;
using ModelZoo.Cli.Commands;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.TwoStream;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Cli.Bench;

/// <summary>Region-VQA forward of the two-stream presets (random weights) with the fused and the math attention kernel.</summary>
public sealed class TwoStreamBenchmark : IBenchmarkCommand
{
    public sealed record Row(string Model, int Batch, double FusedMs, double MathMs, double MaxAbsDifference)
    {
        public double TimeRatio => MathMs / FusedMs;
    }

    public Command Build()
    {
        var models = new Option<string[]>("--models") { DefaultValueFactory = _ => new[] { "vilbert-multitask", "lxmert-vqa" }, AllowMultipleArgumentsPerToken = true };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 8 };
        var tokens = new Option<int>("--tokens") { Description = "Question length, [CLS] and [SEP] included", DefaultValueFactory = _ => 16 };
        var regions = new Option<int>("--regions") { Description = "Detector regions per image", DefaultValueFactory = _ => 36 };
        var repeats = new Option<int>("--repeats") { Description = "Timed calls per cell (median reported)", DefaultValueFactory = _ => 3 };
        var device = CommonOptions.Device();
        var dtype = CommonOptions.Dtype();
        var json = CommonOptions.Json();
        var command = new Command("two-stream", "ViLBERT / LXMERT region-VQA forward: fused vs math attention, time per batch")
            { models, batch, tokens, regions, repeats, device, dtype, json };
        command.Guard(parse =>
        {
            var rows = new List<Row>();
            foreach (var name in parse.GetValue(models)!)
                rows.Add(Run(name, parse.GetValue(batch), parse.GetValue(tokens), parse.GetValue(regions), parse.GetValue(repeats),
                    parse.GetValue(device)!, parse.GetValue(dtype)!));
            if (parse.GetValue(json)) { CliRun.PrintJson(rows); return 0; }
            Console.WriteLine($"region VQA forward (random weights), batch {parse.GetValue(batch)}, {parse.GetValue(tokens)} tokens, " +
                              $"{parse.GetValue(regions)} regions, {parse.GetValue(dtype)} on {parse.GetValue(device)}, {Environment.ProcessorCount} cores, " +
                              $"{get_num_threads()} threads, median of {parse.GetValue(repeats)}");
            var table = new Table("model", "fused ms", "math ms", "math/fused time", "max |fused - math|");
            foreach (var r in rows)
                table.Add(r.Model, r.FusedMs.ToString("0.0"), r.MathMs.ToString("0.0"), r.TimeRatio.ToString("0.00") + "x", r.MaxAbsDifference.ToString("0.0e+0"));
            Console.Write(table);
            return 0;
        });
        return command;
    }

    public static Row Run(string name, int batch, int tokens, int regions, int repeats, string device, string dtype)
    {
        if (batch < 1 || tokens < 2 || regions < 1 || repeats < 1) throw new ArgumentException("--batch, --regions and --repeats must be positive and --tokens at least 2");
        using var model = ModelCatalog.Default.Create(name, new ModelCreateOptions { Device = device, Dtype = dtype, Seed = 0 });
        var vqa = model as IRegionVqaModel ?? throw new ArgumentException($"{name} does not answer questions over regions (try vilbert-multitask or lxmert-vqa)");
        if (tokens > vqa.MaxQuestionTokens) throw new ArgumentException($"{name} takes at most {vqa.MaxQuestionTokens} tokens");
        var generator = new Random(0);
        var questions = Enumerable.Range(0, batch).Select(_ => new RegionVqaInput(
            Enumerable.Range(0, tokens).Select(i => i == 0 ? 101L : i == tokens - 1 ? 102L : generator.Next(1000, 30000)).ToArray(),
            rand(regions, vqa.RegionFeatureSize), rand(regions, 4) * 100 + tensor(new float[] { 0, 0, 100, 100 }), 640, 480)).ToList();
        double Time(AttentionKernel kernel, out Tensor logits)
        {
            model.WithAttentionKernel(kernel);
            using (var warm = NewDisposeScope()) using (no_grad()) vqa.AnswerLogits(questions);
            var times = new List<double>();
            Tensor? last = null;
            for (int i = 0; i < repeats; i++)
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                var watch = Stopwatch.StartNew();
                var result = vqa.AnswerLogits(questions).cpu();
                times.Add(watch.Elapsed.TotalMilliseconds);
                last?.Dispose();
                last = result.to(ScalarType.Float32).cpu().MoveToOuterDisposeScope();
            }
            logits = last!;
            times.Sort();
            return times[times.Count / 2];
        }
        double fused = Time(AttentionKernel.Fused, out var fusedLogits);
        double math = Time(AttentionKernel.Reference, out var mathLogits);
        double difference = (fusedLogits - mathLogits).abs().max().item<float>();
        fusedLogits.Dispose();
        mathLogits.Dispose();
        foreach (var q in questions) { q.Features.Dispose(); q.Boxes.Dispose(); }
        return new Row(name, batch, fused, math, difference);
    }
}
