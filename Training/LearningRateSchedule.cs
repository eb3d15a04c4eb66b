namespace ModelZoo.Training;

public enum DecayKind { Linear, Cosine, Constant }

/// <summary>
/// Linear warmup from 0 to the base rate over <see cref="WarmupSteps"/>, then linear or cosine decay to 0 at
/// <see cref="TotalSteps"/> (or a constant rate), as the common fine-tuning schedules define it (the factor at
/// optimizer step s, 0-based: s / warmup during warmup). A pure function of the step: resuming needs only the step.
/// </summary>
public sealed record LearningRateSchedule(double BaseRate, int WarmupSteps, int TotalSteps, DecayKind Decay = DecayKind.Linear)
{
    public double Factor(int step)
    {
        if (step < WarmupSteps) return (double)step / Math.Max(1, WarmupSteps);
        if (Decay == DecayKind.Constant) return 1.0;
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        progress = Math.Clamp(progress, 0, 1);
        return Decay == DecayKind.Linear ? 1 - progress : 0.5 * (1 + Math.Cos(Math.PI * progress));
    }

    public double Rate(int step) => BaseRate * Factor(step);
}
