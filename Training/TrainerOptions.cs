namespace ModelZoo.Training;

/// <summary>
/// How the model trains. bf16 means: the model's weights, activations and gradients are bfloat16 (TorchSharp has
/// no autocast), while AdamW updates float32 master weights that are copied back after each step.
/// </summary>
public sealed record TrainerOptions
{
    public double LearningRate { get; init; } = 5e-5;
    public double WeightDecay { get; init; } = 0.01;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Epsilon { get; init; } = 1e-8;

    /// <summary>Examples per micro-batch.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Micro-batches per optimizer step (the loss of each is divided by this).</summary>
    public int GradientAccumulation { get; init; } = 1;
    /// <summary>Clip the global gradient L2 norm to this; null = no clipping (the norm is still logged).</summary>
    public double? MaxGradNorm { get; init; } = 1.0;

    /// <summary>Optimizer steps; when null, <see cref="Epochs"/> decides.</summary>
    public int? MaxSteps { get; init; }
    public int Epochs { get; init; } = 1;
    /// <summary>Warmup steps; when null, <see cref="WarmupRatio"/> of the total.</summary>
    public int? WarmupSteps { get; init; }
    public double WarmupRatio { get; init; } = 0.1;
    public DecayKind Decay { get; init; } = DecayKind.Linear;

    /// <summary>"fp32" or "bf16" (bf16 compute with float32 master weights).</summary>
    public string Precision { get; init; } = "fp32";

    /// <summary>Globs over parameter names to freeze, e.g. "uniter.embeddings.*".</summary>
    public IReadOnlyList<string> Freeze { get; init; } = Array.Empty<string>();

    /// <summary>Run the task's evaluation every N optimizer steps (0 = only at the end).</summary>
    public int EvalEvery { get; init; }
    /// <summary>Write a checkpoint every N steps (0 = only at the end when a directory is set).</summary>
    public int CheckpointEvery { get; init; }
    /// <summary>Where checkpoints and the metrics log go; null = nowhere.</summary>
    public string? OutputDirectory { get; init; }
    /// <summary>Checkpoints kept (older ones are deleted).</summary>
    public int KeepCheckpoints { get; init; } = 2;

    /// <summary>Seeds the torch generator (dropout) and the data order.</summary>
    public long Seed { get; init; } = 42;
    public bool Shuffle { get; init; } = true;

    /// <summary>Progress on stderr: a redrawn bar on a terminal, a line every <see cref="LogEvery"/> steps otherwise.</summary>
    public bool Progress { get; init; } = true;
    public int LogEvery { get; init; } = 10;
    /// <summary>A label for the progress bar.</summary>
    public string Label { get; init; } = "train";
}
