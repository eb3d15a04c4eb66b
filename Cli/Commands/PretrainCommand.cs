using System.CommandLine;
using System.Globalization;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Training;
using ModelZoo.Training.Tasks;

namespace ModelZoo.Cli.Commands;

/// <summary>
/// `modelzoo pretrain --model NAME [--weights PATH] --task clip-contrastive|vatt-contrastive --train DATA [--val DATA] --out DIR`:
/// contrastive pre-training with the trainer. The options are `modelzoo finetune`'s (one definition, in
/// <see cref="FinetuneCommand"/>), which also accepts these tasks.
/// </summary>
public sealed class PretrainCommand : ICliCommand
{
    public Command Build() => FinetuneCommand.Create("pretrain",
        "Contrastive pre-training: CLIP's symmetric InfoNCE on image-caption data (clip-contrastive), VATT's NCE + MIL-NCE on video/audio/text clips (vatt-contrastive)",
        ContrastivePretraining.Tasks);

    /// <summary>Runs a pre-training task and prints what it measured (a table, or JSON).</summary>
    internal static int Run(string model, string task, string train, string? validation, string outputDirectory, TrainerOptions options,
        string? weights, string device, string? resume, bool json)
    {
        var result = ContrastivePretraining.Run(model, task, train, validation, outputDirectory, options, weights, device, resume);
        var losses = result.Training.Losses;
        if (json)
        {
            var summary = new Dictionary<string, object?>
            {
                ["task"] = task, ["steps"] = result.Training.Steps, ["train_examples"] = result.TrainingExamples, ["val_examples"] = result.ValidationExamples,
                ["first_loss"] = losses.Count > 0 ? losses[0] : double.NaN, ["final_loss"] = losses.Count > 0 ? losses[^1] : double.NaN,
                ["output"] = outputDirectory,
            };
            foreach (var (key, value) in result.Validation) summary[key] = value;
            CliRun.PrintJson(summary);
            return 0;
        }
        string Loss(double value) => value.ToString("0.0000", CultureInfo.InvariantCulture);
        Console.WriteLine($"pre-trained {model} with {task}: {result.Training.Steps} steps on {result.TrainingExamples} examples, loss " +
                          (losses.Count > 0 ? $"{Loss(losses[0])} -> {Loss(losses[^1])}" : "-") + $", {result.Training.Elapsed.TotalSeconds:0} s; saved to {outputDirectory}");
        if (result.Validation.Count > 0)
        {
            Console.WriteLine(result.ValidationExamples > 0 ? $"validation ({result.ValidationExamples} examples):" : "at the last step:");
            var table = new Table("metric", "value");
            foreach (var (key, value) in result.Validation) table.Add(key, value.ToString("0.0000", CultureInfo.InvariantCulture));
            Console.Write(table);
        }
        return 0;
    }
}
