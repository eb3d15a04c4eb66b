using ModelZoo.Evaluation.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Training;

/// <summary>What the trainer gives a task at each step.</summary>
public sealed class TrainingContext
{
    /// <summary>The optimizer step being computed (0-based).</summary>
    public int Step { get; internal set; }
    public int Epoch { get; internal set; }
    /// <summary>Randomness for the task (negative sampling, augmentation); saved in checkpoints, so resumes are exact.</summary>
    public SeededRandom Random { get; internal set; } = new(0);
    /// <summary>The dtype floating inputs must have (bfloat16 when training in bf16).</summary>
    public ScalarType ComputeDtype { get; internal set; } = ScalarType.Float32;
    public Device Device { get; internal set; } = CPU;
}

/// <summary>
/// A training task: a model, a number of training examples, and the loss of a batch of them. The trainer owns
/// the order, batching, optimisation, evaluation schedule and checkpoints.
/// </summary>
public interface ITrainingTask
{
    nn.Module Model { get; }
    int TrainingExamples { get; }

    /// <summary>Forward pass and scalar float32 loss for these training examples (the model is in train mode).</summary>
    Tensor Loss(IReadOnlyList<int> batch, TrainingContext context);

    /// <summary>Validation metrics, or an empty dictionary. The trainer calls it in eval mode under no_grad.</summary>
    IReadOnlyDictionary<string, double> Evaluate(TrainingContext context);
}
