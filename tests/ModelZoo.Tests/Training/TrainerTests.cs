using System.Text.Json;
using ModelZoo.Training;
using ModelZoo.Training.Checkpoints;
using ModelZoo.Tests.Support;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Training;

public class TrainerTests
{
    string _dir = "";

    [SetUp] public void SetUp() => _dir = TestPaths.TempDirectory();
    [TearDown] public void TearDown() => Directory.Delete(_dir, true);

    static TrainerOptions Options(string? output = null) => new()
    {
        LearningRate = 3e-2, BatchSize = 8, GradientAccumulation = 2, MaxSteps = 10, WarmupSteps = 2, Decay = DecayKind.Cosine,
        MaxGradNorm = 0.5, EvalEvery = 5, CheckpointEvery = 4, KeepCheckpoints = 10, Seed = 11, OutputDirectory = output, Progress = false,
    };

    [Test]
    public void LossGoesDownAndEvaluationRuns()
    {
        using var task = new TinyTask();
        var result = new Trainer(Options() with { MaxSteps = 40, CheckpointEvery = 0 }).Fit(task);
        Assert.That(result.Steps, Is.EqualTo(40));
        Assert.That(result.Losses.TakeLast(5).Average(), Is.LessThan(result.Losses.Take(5).Average() * 0.8));
        Assert.That(result.Evaluations.Select(e => e.Step), Is.EqualTo(new[] { 5, 10, 15, 20, 25, 30, 35, 40 }));
        Assert.That(result.Evaluations[^1].Metrics["accuracy"], Is.GreaterThan(0.6));
    }

    [Test]
    public void AResumedRunReproducesTheUninterruptedLossesBitForBit()
    {
        // Dropout (torch generator), task randomness (SeededRandom), shuffling, accumulation, clipping, warmup + cosine.
        string full = Path.Combine(_dir, "full");
        List<double> uninterrupted;
        float[] finalWeights;
        using (var task = new TinyTask())
        {
            uninterrupted = new Trainer(Options(full)).Fit(task).Losses.ToList();
            finalWeights = Flatten(task.Model);
        }
        Assert.That(uninterrupted.Distinct().Count(), Is.EqualTo(10), "losses vary from step to step");

        // A second process would start from a fresh model: same data, different initial weights on purpose (seed 99).
        using var resumed = new TinyTask(seed: 99);
        var checkpoint = Path.Combine(full, "checkpoints", "step-00000004");
        var result = new Trainer(Options(Path.Combine(_dir, "resumed"))).Fit(resumed, resumeFrom: checkpoint);

        Assert.That(result.Losses.Count, Is.EqualTo(10));
        for (int i = 0; i < 10; i++)
            Assert.That(BitConverter.DoubleToInt64Bits(result.Losses[i]), Is.EqualTo(BitConverter.DoubleToInt64Bits(uninterrupted[i])), $"loss of step {i + 1}");
        Assert.That(Flatten(resumed.Model), Is.EqualTo(finalWeights), "final weights are bit-identical");
    }

    [Test]
    public void ResumingInTheSameFolderLogsEveryStepOnce()
    {
        string folder = Path.Combine(_dir, "again");
        using (var task = new TinyTask()) new Trainer(Options(folder)).Fit(task);
        string log = Path.Combine(folder, "metrics.jsonl");
        File.AppendAllText(log, "[1, 2]\n{\"step\": \"x\"}\n{\"step\": 11, \"lo");   // foreign lines, and a record cut short by a kill
        using (var task = new TinyTask(seed: 99))
            new Trainer(Options(folder)).Fit(task, resumeFrom: Path.Combine(folder, "checkpoints", "step-00000004"));
        var steps = File.ReadLines(log).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .Where(r => r.TryGetProperty("loss", out _)).Select(r => r.GetProperty("step").GetInt32()).ToList();
        Assert.That(steps, Is.EqualTo(Enumerable.Range(1, 10)), "steps 5-10 of the first run are replaced by the resumed run's");
    }

    [Test]
    public void RunsAreRepeatableFromTheSeed()
    {
        List<double> Run(long seed)
        {
            using var task = new TinyTask();
            return new Trainer(Options() with { Seed = seed }).Fit(task).Losses.ToList();
        }
        var a = Run(5);
        Assert.That(Run(5), Is.EqualTo(a));
        Assert.That(Run(6), Is.Not.EqualTo(a));
    }

    [Test]
    public void NaNLossStopsWithTheStepNamed()
    {
        // The loss of the fourth step (three completed before it) is NaN: steps count from 1, as in the progress
        // bar, metrics.jsonl and checkpoint names.
        using var task = new TinyTask(nanAtStep: 3);
        var e = Assert.Throws<TrainingDivergedException>(() => new Trainer(Options()).Fit(task));
        Assert.That(e!.Step, Is.EqualTo(4));
        Assert.That(e.Message, Does.Contain("step 4").And.Contain("loss").And.Contain("NaN"));
    }

    [Test]
    public void FrozenParametersDoNotMoveAndUnknownPatternsAreErrors()
    {
        using var task = new TinyTask();
        var before = task.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());
        new Trainer(Options() with { Freeze = new[] { "input.*", "norm.weight" } }).Fit(task);
        var after = task.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());
        Assert.That(after["input.weight"], Is.EqualTo(before["input.weight"]));
        Assert.That(after["input.bias"], Is.EqualTo(before["input.bias"]));
        Assert.That(after["norm.weight"], Is.EqualTo(before["norm.weight"]));
        Assert.That(after["output.weight"], Is.Not.EqualTo(before["output.weight"]));

        using var other = new TinyTask();
        var e = Assert.Throws<ArgumentException>(() => new Trainer(Options() with { Freeze = new[] { "encoder.*" } }).Fit(other));
        Assert.That(e!.Message, Does.Contain("'encoder.*'").And.Contain("match no parameter"));
    }

    [Test]
    public void BiasesAndLayerNormWeightsGetNoWeightDecay()
    {
        using var model = new TinyModel();
        var (decay, noDecay) = ParameterSelection.WeightDecayGroups(model);
        Assert.That(decay.Select(p => p.Name), Is.EquivalentTo(new[] { "input.weight", "output.weight" }));
        Assert.That(noDecay.Select(p => p.Name), Is.EquivalentTo(new[] { "input.bias", "norm.weight", "norm.bias", "output.bias" }));
    }

    /// <summary>A loss with zero gradients: only AdamW's decoupled weight decay moves the parameters.</summary>
    sealed class ZeroGradientTask(TinyModel model) : ITrainingTask
    {
        public nn.Module Model => model;
        public int TrainingExamples => 4;
        public Tensor Loss(IReadOnlyList<int> batch, TrainingContext context) =>
            model.parameters().Select(p => p.sum()).Aggregate((a, b) => a + b) * 0;
        public IReadOnlyDictionary<string, double> Evaluate(TrainingContext context) => new Dictionary<string, double>();
    }

    [Test]
    public void WeightDecayShrinksOnlyTheDecayGroup()
    {
        manual_seed(8);
        using var model = new TinyModel(dropoutRate: 0);
        using (no_grad())
            foreach (var p in model.parameters()) p.add_(1);   // LayerNorm starts at 1/0: make every tensor non-trivial
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        new Trainer(new TrainerOptions { LearningRate = 0.1, WeightDecay = 0.5, MaxSteps = 1, BatchSize = 4, WarmupSteps = 0, Progress = false })
            .Fit(new ZeroGradientTask(model));
        foreach (var (name, parameter) in model.named_parameters())
        {
            double factor = name is "input.weight" or "output.weight" ? 1 - 0.1 * 0.5 : 1;
            ModelZoo.Tests.OneStream.TensorAssert.Close(parameter, before[name] * factor, 1e-6, $"{name}: decayed by {factor}");
        }
    }

    [Test]
    public void ScheduleWarmsUpThenDecays()
    {
        var linear = new LearningRateSchedule(1.0, 4, 12, DecayKind.Linear);
        Assert.That(new[] { 0, 1, 2, 4, 8, 12, 20 }.Select(linear.Factor), Is.EqualTo(new[] { 0, 0.25, 0.5, 1, 0.5, 0, 0 }).Within(1e-12));
        var cosine = new LearningRateSchedule(2.0, 0, 10, DecayKind.Cosine);
        Assert.That(cosine.Rate(0), Is.EqualTo(2.0).Within(1e-12));
        Assert.That(cosine.Rate(5), Is.EqualTo(1.0).Within(1e-12));
        Assert.That(cosine.Rate(10), Is.EqualTo(0.0).Within(1e-12));
    }

    [Test]
    public void TorchSharpAdamWStateSavesAndLoadsExactly()
    {
        // TorchSharp 0.107's AdamW keeps step, exp_avg, exp_avg_sq per parameter and writes them with save_state_dict.
        manual_seed(3);
        using var a = new TinyModel(dropoutRate: 0);
        using var b = new TinyModel(dropoutRate: 0);
        b.load_state_dict(a.state_dict());
        using var optA = optim.AdamW(a.parameters(), 0.01, weight_decay: 0.1);
        var x = randn(4, 8);
        void Step(nn.Module<Tensor, Tensor> model, optim.Optimizer opt)
        {
            opt.zero_grad();
            model.forward(x).pow(2).mean().backward();
            opt.step();
        }
        for (int i = 0; i < 3; i++) Step(a, optA);
        var path = Path.Combine(_dir, "adamw.bin");
        optA.save_state_dict(path);

        b.load_state_dict(a.state_dict());
        using var optB = optim.AdamW(b.parameters(), 0.01, weight_decay: 0.1);
        optB.load_state_dict(path);
        var stateA = (TorchSharp.Modules.AdamW.State)optA.state_dict().State[0];
        var stateB = (TorchSharp.Modules.AdamW.State)optB.state_dict().State[0];
        Assert.That(stateB.step, Is.EqualTo(3));
        Assert.That(stateB.exp_avg_sq.data<float>().ToArray(), Is.EqualTo(stateA.exp_avg_sq.data<float>().ToArray()));

        Step(a, optA);
        Step(b, optB);
        Assert.That(Flatten(b), Is.EqualTo(Flatten(a)), "the next update is identical");

        using var fresh = optim.AdamW(b.parameters(), 0.01);
        Step(b, fresh);
        Assert.That(Flatten(b), Is.Not.EqualTo(Flatten(a)), "a fresh optimizer would not be (the saved state matters)");
    }

    [Test]
    public void Bf16TrainsWithFloat32MasterWeightsInTheCheckpoint()
    {
        var output = Path.Combine(_dir, "bf16");
        using var task = new TinyTask(dropout: 0);
        var result = new Trainer(Options(output) with { Precision = "bf16", MaxSteps = 40 }).Fit(task);
        Assert.That(task.Model.parameters().First().dtype, Is.EqualTo(ScalarType.BFloat16));
        Assert.That(result.Losses.TakeLast(5).Average(), Is.LessThan(result.Losses.Take(5).Average() * 0.8));
        var saved = SafetensorsFile.ReadAll(Path.Combine(TrainingCheckpoint.Resolve(output), TrainingCheckpoint.ModelFile));
        Assert.That(saved["input.weight"].dtype, Is.EqualTo(ScalarType.Float32));
        // The bf16 weights are the rounded masters.
        Assert.That(saved["input.weight"].to(ScalarType.BFloat16).to(ScalarType.Float32).data<float>().ToArray(),
            Is.EqualTo(task.Model.named_parameters().First(p => p.name == "input.weight").parameter.to(ScalarType.Float32).data<float>().ToArray()));
        foreach (var t in saved.Values) t.Dispose();
    }

    [Test]
    public void CheckpointsAreCompleteFoldersAndOldOnesArePruned()
    {
        var output = Path.Combine(_dir, "run");
        using var task = new TinyTask();
        new Trainer(Options(output) with { KeepCheckpoints = 2, CheckpointEvery = 3 }).Fit(task);
        var checkpoints = Path.Combine(output, "checkpoints");
        Assert.That(TrainingCheckpoint.List(checkpoints).Select(Path.GetFileName), Is.EqualTo(new[] { "step-00000009", "step-00000010" }));
        Assert.That(File.ReadAllText(Path.Combine(checkpoints, "latest")), Is.EqualTo("step-00000010"));
        Assert.That(Directory.GetFileSystemEntries(checkpoints).Select(Path.GetFileName).Where(n => n!.StartsWith('.')), Is.Empty, "no temporary folders left");
        foreach (var file in new[] { TrainingCheckpoint.ModelFile, TrainingCheckpoint.OptimizerFile, TrainingCheckpoint.StateFile })
            Assert.That(File.Exists(Path.Combine(checkpoints, "step-00000010", file)), file);

        var lines = File.ReadAllLines(Path.Combine(output, "metrics.jsonl"));
        var steps = lines.Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.TryGetProperty("loss", out _)).ToList();
        Assert.That(steps.Select(e => e.GetProperty("step").GetInt32()), Is.EqualTo(Enumerable.Range(1, 10)));
        Assert.That(lines.Count(l => l.Contains("\"eval\"")), Is.EqualTo(2));

        // Resuming with different options is refused with the reason.
        using var other = new TinyTask();
        var e = Assert.Throws<InvalidDataException>(() => new Trainer(Options(output) with { BatchSize = 4 }).Fit(other, resumeFrom: output));
        Assert.That(e!.Message, Does.Contain("batch size 8"));
    }

    [Test]
    public void GradientAccumulationMatchesOneLargeBatch()
    {
        float[] Run(int batch, int accumulation)
        {
            using var task = new TinyTask(useTaskRandom: false, dropout: 0, examples: 16);
            new Trainer(Options() with { BatchSize = batch, GradientAccumulation = accumulation, MaxSteps = 1, WarmupSteps = 0, Shuffle = false, MaxGradNorm = null }).Fit(task);
            return Flatten(task.Model);
        }
        Assert.That(Run(4, 2), Is.EqualTo(Run(8, 1)).Within(1e-5));
    }

    [Test]
    public void ProgressWritesLinesWhenNotATerminal()
    {
        var error = new StringWriter();
        using (var progress = new ProgressReporter("demo", enabled: true, logEvery: 2, metricsLogPath: null, error: error, terminal: false))
        {
            for (int s = 1; s <= 4; s++) progress.Step(s, 4, 0, 1.0 / s, 1e-3, 1, 8);
            progress.Evaluation(4, new Dictionary<string, double> { ["vqa_accuracy"] = 51.5 });
        }
        var lines = error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(3));
        Assert.That(lines[0], Does.StartWith("demo [##########----------] 2/4 loss 0.5000").And.Contain("ex/s"));
        Assert.That(lines[2], Does.Contain("vqa_accuracy 51.5"));
    }

    [Test]
    public void RepeatedTrainingStepsAndPredictionsDoNotGrowMemory()
    {
        using var task = new TinyTask(examples: 64);
        var options = Options() with { MaxSteps = 30, EvalEvery = 10, CheckpointEvery = 0, GradientAccumulation = 1 };
        new Trainer(options).Fit(task);
        GC.Collect();
        long before = ModelZoo.Attention.Diagnostics.ProcessMemory.ResidentBytes();
        new Trainer(options with { MaxSteps = 300 }).Fit(task);
        GC.Collect();
        long after = ModelZoo.Attention.Diagnostics.ProcessMemory.ResidentBytes();
        Assume.That(before, Is.GreaterThan(0), "no /proc here");
        Assert.That((after - before) / (double)before, Is.LessThan(0.03), $"RSS {before / 1e6:0.0} MB -> {after / 1e6:0.0} MB over 300 steps");
    }

    [Test]
    public void TrainBenchmarkPrintsBothPrecisionsWithRatios()
    {
        var (code, output, error) = CliRunner.Run("bench", "train", "--hidden", "32", "--layers", "1", "--length", "8", "--batch", "2", "--steps", "1", "--rounds", "1");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain("time vs fp32"));
        Assert.That(output.Split("\n").Count(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^(fp32|bf16)\s+\d")), Is.EqualTo(2));
        Assert.That(output, Does.Contain("1.00x"));
    }

    static float[] Flatten(nn.Module model) =>
        model.parameters().SelectMany(p => p.detach().to(ScalarType.Float32).data<float>().ToArray()).ToArray();
}
