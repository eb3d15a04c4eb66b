namespace ModelZoo.Training;

/// <summary>Training stopped because the loss or the gradients became NaN or infinite.</summary>
public sealed class TrainingDivergedException(int step, string what, double value)
    : InvalidOperationException($"training stopped at step {step}: the {what} is {value} (not finite). Lower the learning rate, " +
                                "enable gradient clipping (--max-grad-norm), or check the inputs for NaN/Inf.")
{
    public int Step { get; } = step;
}
