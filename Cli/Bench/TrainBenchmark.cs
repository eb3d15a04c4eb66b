using System.CommandLine;
using System.Diagnostics;
using ModelZoo.Attention;
using ModelZoo.Cli.Commands;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Models.Bert;
using ModelZoo.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Cli.Bench;

/// <summary>
/// `modelzoo bench train`: optimizer steps per second of the trainer on a BERT-style encoder with a classification
/// head, fp32 against bf16 (bf16 weights and compute, float32 master weights), measured in one run.
/// </summary>
public sealed class TrainBenchmark : IBenchmarkCommand
{
    public Command Build()
    {
        var hidden = new Option<int>("--hidden") { Description = "Hidden width of the BERT-style encoder", DefaultValueFactory = _ => 256 };
        var layers = new Option<int>("--layers") { Description = "Transformer layers", DefaultValueFactory = _ => 2 };
        var length = new Option<int>("--length") { Description = "Tokens per example", DefaultValueFactory = _ => 64 };
        var batch = new Option<int>("--batch") { Description = "Examples per optimizer step", DefaultValueFactory = _ => 16 };
        var steps = new Option<int>("--steps") { Description = "Timed optimizer steps per precision and round (after 2 warm-up steps)", DefaultValueFactory = _ => 5 };
        var rounds = new Option<int>("--rounds") { Description = "Rounds; the precisions alternate within each round and the median round is reported", DefaultValueFactory = _ => 3 };
        var threads = new Option<int?>("--threads") { Description = "torch CPU threads (default: torch's choice)" };
        var precisions = new Option<string[]>("--precisions") { Description = "Training precisions to compare, in order (as finetune --precision: fp32, bf16)", DefaultValueFactory = _ => new[] { "fp32", "bf16" }, AllowMultipleArgumentsPerToken = true };
        var device = CommonOptions.Device();
        var json = CommonOptions.Json();
        var command = new Command("train", "Trainer throughput: fp32 vs bf16 (bf16 compute, fp32 master weights) on a BERT-style classifier")
            { hidden, layers, length, batch, steps, rounds, threads, precisions, device, json };
        command.Guard(parse =>
        {
            var dev = TorchRuntime.ParseDevice(parse.GetValue(device));
            if (parse.GetValue(threads) is int n) set_num_threads(Math.Max(1, n));
            // Alternate the precisions round by round, so a change in machine load hits both alike; report the median round.
            var names = parse.GetValue(precisions)!;
            var measured = names.ToDictionary(p => p, _ => new List<Row>());
            for (int round = 0; round < Math.Max(1, parse.GetValue(rounds)); round++)
                foreach (var p in names)
                    measured[p].Add(Run(p, parse.GetValue(hidden), parse.GetValue(layers), parse.GetValue(length), parse.GetValue(batch), parse.GetValue(steps), dev));
            var rows = names.Select(p => measured[p].OrderBy(r => r.MsPerStep).ElementAt(measured[p].Count / 2)).ToList();
            if (parse.GetValue(json)) { CliRun.PrintJson(rows); return 0; }
            Console.WriteLine($"trainer steps: BERT-style encoder hidden {parse.GetValue(hidden)}, {parse.GetValue(layers)} layers, {parse.GetValue(length)} tokens, " +
                              $"batch {parse.GetValue(batch)}, on {parse.GetValue(device)} with {Environment.ProcessorCount} cores, {get_num_threads()} torch threads, median of {Math.Max(1, parse.GetValue(rounds))} alternating rounds");
            var table = new Table("precision", "ms/step", "examples/s", "time vs fp32", "final loss");
            double? baseline = rows.FirstOrDefault(r => r.Precision == "fp32")?.MsPerStep;
            foreach (var r in rows)
                table.Add(r.Precision, r.MsPerStep.ToString("0.0"), r.ExamplesPerSecond.ToString("0.0"),
                    baseline is double b ? (r.MsPerStep / b).ToString("0.00") + "x" : "-", r.FinalLoss.ToString("0.0000"));
            Console.Write(table);
            Console.WriteLine("bf16 = the model's weights, activations and gradients in bfloat16 (no autocast in TorchSharp); AdamW keeps float32 master weights.");
            return 0;
        });
        return command;
    }

    public sealed record Row(string Precision, double MsPerStep, double ExamplesPerSecond, double FinalLoss);

    public static Row Run(string precision, int hidden, int layers, int length, int batch, int steps, Device device)
    {
        manual_seed(0);
        var config = new BertConfig { VocabSize = 1000, HiddenSize = hidden, NumHiddenLayers = layers, NumAttentionHeads = Math.Max(1, hidden / 64),
                                      IntermediateSize = 4 * hidden, MaxPositionEmbeddings = Math.Max(512, length) };
        using var task = new ClassificationTask(config, batch * 4, length, device);
        var options = new TrainerOptions
        {
            LearningRate = 1e-4, BatchSize = batch, MaxSteps = steps + 2, WarmupSteps = 0, Precision = precision, Progress = false, Seed = 1,
        };
        var timer = new Stopwatch();
        task.BeforeStep = step => { if (step == 2) timer.Restart(); };
        var result = new Trainer(options).Fit(task);
        timer.Stop();
        double ms = timer.Elapsed.TotalMilliseconds / steps;
        return new Row(precision, ms, batch / (ms / 1000), result.Losses[^1]);
    }

    /// <summary>Random token sequences labelled by a fixed rule (the parity of the first token): enough to train on.</summary>
    sealed class ClassificationTask : ITrainingTask, IDisposable
    {
        readonly Classifier _model;
        readonly Tensor _ids, _labels;

        public ClassificationTask(BertConfig config, int examples, int length, Device device)
        {
            _model = new Classifier(config);
            _model.to(device);
            _ids = randint(1, config.VocabSize, new long[] { examples, length }, device: device);
            _labels = _ids.select(1, 0).remainder(2);
        }

        public Action<int>? BeforeStep { get; set; }
        public nn.Module Model => _model;
        public int TrainingExamples => (int)_ids.shape[0];

        public Tensor Loss(IReadOnlyList<int> batch, TrainingContext context)
        {
            BeforeStep?.Invoke(context.Step);
            var index = tensor(batch.Select(i => (long)i).ToArray(), device: _ids.device);
            var logits = _model.forward(_ids.index_select(0, index)).to(ScalarType.Float32);
            return nn.functional.cross_entropy(logits, _labels.index_select(0, index));
        }

        public IReadOnlyDictionary<string, double> Evaluate(TrainingContext context) => new Dictionary<string, double>();

        public void Dispose()
        {
            _model.Dispose();
            _ids.Dispose();
            _labels.Dispose();
        }
    }

    sealed class Classifier : nn.Module<Tensor, Tensor>
    {
        readonly BertModel bert;
        readonly Linear head;

        public Classifier(BertConfig config) : base("classifier")
        {
            bert = new BertModel(config);
            head = nn.Linear(config.HiddenSize, 2);
            RegisterComponents();
        }

        public override Tensor forward(Tensor ids) => head.forward(bert.forward(ids).PooledOutput!);
    }
}
