using ModelZoo.Attention;
using ModelZoo.Evaluation.Data;
using ModelZoo.Training.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Training;

/// <summary>What a training run produced.</summary>
public sealed record TrainingResult(int Steps, IReadOnlyList<double> Losses, IReadOnlyList<(int Step, IReadOnlyDictionary<string, double> Metrics)> Evaluations,
                                    string? LastCheckpoint, TimeSpan Elapsed);

/// <summary>
/// Fine-tuning loop: AdamW (no weight decay on biases and normalisation weights), linear warmup then linear or
/// cosine decay, gradient accumulation and clipping, fp32 or bf16 (bf16 weights and compute, float32 master
/// weights in the optimizer), freezing by name pattern, evaluation every N steps, atomic checkpoints that resume
/// exactly (model, optimizer, schedule position, data position, RNG states), a NaN/Inf guard, progress and a
/// JSON-lines metrics log (<c>metrics.jsonl</c> in the output folder).
/// </summary>
public sealed class Trainer
{
    readonly TrainerOptions _options;

    public Trainer(TrainerOptions options)
    {
        if (options.BatchSize <= 0) throw new ArgumentException($"batch size must be positive, got {options.BatchSize}");
        if (options.GradientAccumulation <= 0) throw new ArgumentException($"gradient accumulation must be positive, got {options.GradientAccumulation}");
        if (options.LearningRate <= 0 || !double.IsFinite(options.LearningRate)) throw new ArgumentException($"learning rate must be positive, got {options.LearningRate}");
        _options = options;
    }

    public TrainerOptions Options => _options;

    /// <summary>Optimizer steps a run takes over <paramref name="examples"/> training examples.</summary>
    public int TotalSteps(int examples)
    {
        if (_options.MaxSteps is int max) return max;
        int batchesPerEpoch = (examples + _options.BatchSize - 1) / _options.BatchSize;
        return Math.Max(1, (batchesPerEpoch * _options.Epochs + _options.GradientAccumulation - 1) / _options.GradientAccumulation);
    }

    /// <summary>Trains; with <paramref name="resumeFrom"/> (a checkpoint or output folder) continues that run exactly.</summary>
    public TrainingResult Fit(ITrainingTask task, string? resumeFrom = null)
    {
        var model = task.Model;
        var started = DateTime.UtcNow;
        if (task.TrainingExamples <= 0) throw new InvalidDataException("the task has no training examples");
        var computeDtype = TorchRuntime.ParseDtype(_options.Precision);
        if (computeDtype == ScalarType.Float16) throw new NotSupportedException("fp16 training needs loss scaling, which is not implemented: use bf16 or fp32");
        bool mixed = computeDtype != ScalarType.Float32;
        var device = model.parameters().FirstOrDefault()?.device ?? CPU;

        ParameterSelection.Freeze(model, _options.Freeze);
        if (mixed) model.to(computeDtype);
        var (decay, noDecay) = ParameterSelection.WeightDecayGroups(model);
        if (decay.Count + noDecay.Count == 0) throw new InvalidOperationException("every parameter is frozen: nothing to train");

        // bf16: the optimizer updates float32 copies; the model's bf16 weights are refreshed from them after each step.
        var masters = new Dictionary<string, Parameter>(StringComparer.Ordinal);
        Parameter Optimized((string Name, Parameter Parameter) p)
        {
            if (!mixed) return p.Parameter;
            var master = new Parameter(p.Parameter.detach().to(ScalarType.Float32).clone(), requires_grad: true);
            masters[p.Name] = master;
            return master;
        }
        var groups = new List<AdamW.ParamGroup>
        {
            new(decay.Select(Optimized).ToList(), new AdamW.Options { LearningRate = _options.LearningRate, weight_decay = _options.WeightDecay }),
            new(noDecay.Select(Optimized).ToList(), new AdamW.Options { LearningRate = _options.LearningRate, weight_decay = 0 }),
        };
        using var optimizer = optim.AdamW(groups, _options.LearningRate, _options.Beta1, _options.Beta2, _options.Epsilon, _options.WeightDecay);
        var trainable = decay.Concat(noDecay).ToList();

        int totalSteps = TotalSteps(task.TrainingExamples);
        int warmup = _options.WarmupSteps ?? (int)Math.Round(_options.WarmupRatio * totalSteps);
        var schedule = new LearningRateSchedule(_options.LearningRate, Math.Min(warmup, totalSteps), totalSteps, _options.Decay);

        var context = new TrainingContext { Random = SeededRandom.For(_options.Seed, -1), ComputeDtype = computeDtype, Device = device };
        var losses = new List<double>();
        int step = 0, epoch = 0, batchInEpoch = 0;

        string? outputDirectory = _options.OutputDirectory;
        string? checkpoints = outputDirectory is null ? null : Path.Combine(outputDirectory, "checkpoints");
        if (resumeFrom is not null)
        {
            var checkpoint = TrainingCheckpoint.Resolve(resumeFrom);
            var state = TrainingCheckpoint.ReadState(checkpoint);
            CheckCompatible(state, task, checkpoint);
            TrainingCheckpoint.LoadTensors(checkpoint, StateTensors(model, masters));
            if (mixed) CopyMastersToModel(trainable, masters);
            TrainingCheckpoint.LoadOptimizer(checkpoint, optimizer);
            step = state.Step;
            epoch = state.Epoch;
            batchInEpoch = state.BatchInEpoch;
            context.Random.State = state.TaskRandomState;
            using (var rng = tensor(Convert.FromBase64String(state.TorchRngState), dtype: ScalarType.Byte)) set_rng_state(rng);
            losses.AddRange(state.Losses);
            if (state.TotalSteps != totalSteps)
                throw new InvalidDataException($"{checkpoint}: the run had {state.TotalSteps} steps in total, these options give {totalSteps}; resume with the same --epochs/--max-steps");
        }
        else
        {
            manual_seed(_options.Seed);
        }

        string? metricsLog = outputDirectory is null ? null : Path.Combine(outputDirectory, "metrics.jsonl");
        // A resumed run repeats the steps after its checkpoint: drop their records so each step is logged once.
        if (resumeFrom is not null && metricsLog is not null) ProgressReporter.TruncateLog(metricsLog, step);
        using var progress = new ProgressReporter(_options.Label, _options.Progress, _options.LogEvery, metricsLog);
        if (resumeFrom is not null) progress.Message($"resumed at step {step} of {totalSteps}");

        var evaluations = new List<(int, IReadOnlyDictionary<string, double>)>();
        int[] order = Batching.EpochOrder(task.TrainingExamples, _options.Seed, epoch, _options.Shuffle);
        var batches = Batching.Batches(order, _options.BatchSize);
        string? lastCheckpoint = null;

        model.train();
        while (step < totalSteps)
        {
            using var scope = NewDisposeScope();
            context.Step = step;
            double rate = schedule.Rate(step);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = rate;
            optimizer.zero_grad();
            if (mixed) foreach (var (_, p) in trainable) p.grad = null;

            double stepLoss = 0;
            long examples = 0;
            for (int micro = 0; micro < _options.GradientAccumulation; micro++)
            {
                if (batchInEpoch >= batches.Count)
                {
                    epoch++;
                    batchInEpoch = 0;
                    order = Batching.EpochOrder(task.TrainingExamples, _options.Seed, epoch, _options.Shuffle);
                    batches = Batching.Batches(order, _options.BatchSize);
                }
                context.Epoch = epoch;
                var batch = batches[batchInEpoch++];
                using var microScope = NewDisposeScope();
                var loss = task.Loss(batch, context);
                if (loss.numel() != 1) throw new InvalidOperationException($"the task's loss must be a scalar, got shape [{string.Join(", ", loss.shape)}]");
                double value = loss.to(ScalarType.Float32).item<float>();
                if (!double.IsFinite(value)) throw new TrainingDivergedException(step + 1, "loss", value);
                (loss / _options.GradientAccumulation).backward();
                stepLoss += value / _options.GradientAccumulation;
                examples += batch.Length;
            }

            if (mixed) CopyGradientsToMasters(trainable, masters);
            var optimized = mixed ? masters.Values.ToList() : trainable.Select(p => p.Parameter).ToList();
            double gradNorm = nn.utils.clip_grad_norm_(optimized.Where(p => p.grad is not null), _options.MaxGradNorm ?? double.PositiveInfinity);
            if (!double.IsFinite(gradNorm)) throw new TrainingDivergedException(step + 1, "gradient norm", gradNorm);
            optimizer.step();
            if (mixed) CopyMastersToModel(trainable, masters);

            step++;
            losses.Add(stepLoss);
            progress.Step(step, totalSteps, epoch, stepLoss, rate, gradNorm, examples);

            bool last = step == totalSteps;
            if (_options.EvalEvery > 0 && step % _options.EvalEvery == 0 || last)
            {
                var metrics = RunEvaluation(task, context);
                if (metrics.Count > 0)
                {
                    evaluations.Add((step, metrics));
                    progress.Evaluation(step, metrics);
                }
            }
            if (checkpoints is not null && (_options.CheckpointEvery > 0 && step % _options.CheckpointEvery == 0 || last))
            {
                var state = new TrainerState
                {
                    Step = step, Epoch = epoch, BatchInEpoch = batchInEpoch, TotalSteps = totalSteps,
                    TaskRandomState = context.Random.State, TorchRngState = RngState(), Schedule = schedule, Seed = _options.Seed,
                    BatchSize = _options.BatchSize, GradientAccumulation = _options.GradientAccumulation, Precision = _options.Precision,
                    TrainingExamples = task.TrainingExamples, Losses = losses.ToList(),
                };
                lastCheckpoint = TrainingCheckpoint.Save(checkpoints, state, StateTensors(model, masters), optimizer, _options.KeepCheckpoints);
            }
        }
        model.eval();
        foreach (var master in masters.Values) master.Dispose();
        return new TrainingResult(step, losses, evaluations, lastCheckpoint, DateTime.UtcNow - started);
    }

    static IReadOnlyDictionary<string, double> RunEvaluation(ITrainingTask task, TrainingContext context)
    {
        // The evaluation must not consume the training generator: keep dropout and sampling streams unchanged.
        using var rng = get_rng_state();
        var taskState = context.Random.State;
        task.Model.eval();
        try
        {
            using var _ = no_grad();
            return task.Evaluate(context);
        }
        finally
        {
            task.Model.train();
            set_rng_state(rng);
            context.Random.State = taskState;
        }
    }

    void CheckCompatible(TrainerState state, ITrainingTask task, string checkpoint)
    {
        if (state.BatchSize != _options.BatchSize || state.GradientAccumulation != _options.GradientAccumulation || state.Seed != _options.Seed
            || state.TrainingExamples != task.TrainingExamples || !string.Equals(state.Precision, _options.Precision, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{checkpoint}: saved with batch size {state.BatchSize}, accumulation {state.GradientAccumulation}, seed {state.Seed}, " +
                                           $"{state.TrainingExamples} examples, {state.Precision}; this run has {_options.BatchSize}, {_options.GradientAccumulation}, " +
                                           $"{_options.Seed}, {task.TrainingExamples}, {_options.Precision}: an exact resume needs the same");
    }

    static string RngState()
    {
        using var state = get_rng_state();
        return Convert.ToBase64String(state.bytes.ToArray());
    }

    /// <summary>Parameters and buffers by state-dict name; float32 masters stand in for bf16 parameters.</summary>
    static IEnumerable<(string, Tensor)> StateTensors(nn.Module model, Dictionary<string, Parameter> masters)
    {
        foreach (var (name, tensor) in model.state_dict())
            yield return (name, masters.TryGetValue(name, out var master) ? master : tensor);
    }

    static void CopyGradientsToMasters(List<(string Name, Parameter Parameter)> trainable, Dictionary<string, Parameter> masters)
    {
        foreach (var (name, parameter) in trainable)
        {
            var grad = parameter.grad;
            masters[name].grad = grad?.to(ScalarType.Float32);
        }
    }

    static void CopyMastersToModel(List<(string Name, Parameter Parameter)> trainable, Dictionary<string, Parameter> masters)
    {
        using var _ = no_grad();
        foreach (var (name, parameter) in trainable) parameter.copy_(masters[name]);
    }
}
