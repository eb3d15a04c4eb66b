using System.CommandLine;
using System.Globalization;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Training;
using ModelZoo.Training.Tasks;

namespace ModelZoo.Cli.Commands;

/// <summary>
/// `modelzoo finetune --model NAME [--weights PATH] --task vqa|retrieval --train M.json --val M.json --out DIR`; with
/// --task clip-contrastive|vatt-contrastive it pre-trains (as `modelzoo pretrain`, the same options under another name).
/// </summary>
public sealed class FinetuneCommand : ICliCommand
{
    public static readonly string[] FineTuningTasks = { "vqa", "retrieval" };

    public Command Build() => Create("finetune", "Fine-tune a model on VQA (BCE over soft scores) or image-text retrieval (contrastive or ITM with sampled negatives)",
        FineTuningTasks.Concat(ContrastivePretraining.Tasks).ToArray());

    /// <summary>The command with the given name, accepting <paramref name="tasks"/> (fine-tuning and/or pre-training ones).</summary>
    internal static Command Create(string name, string description, IReadOnlyList<string> tasks)
    {
        var model = new Option<string>("--model") { Description = "Preset name (`modelzoo list`: UNITER, ViLT, VisualBERT, ViLBERT, LXMERT, CLIP families) or an adapter's own model (demo-vilt, demo-clip)", Required = true };
        var weights = new Option<string?>("--weights") { Description = "Pre-trained checkpoint to start from (file or folder)" };
        var task = new Option<string>("--task") { Description = string.Join(", ", tasks), Required = true };
        var train = new Option<string>("--train") { Description = "Training data manifest (JSON: questions/annotations/images, or captions/splits/images)", Required = true };
        var val = new Option<string?>("--val") { Description = "Validation data manifest" };
        var output = new Option<string>("--out") { Description = "Output folder: model.safetensors, task.json, answers.json, checkpoints/, metrics.jsonl", Required = true };
        var resume = new Option<string?>("--resume") { Description = "Continue a run from its checkpoint (a checkpoint folder or the output folder)" };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 1 };
        var maxSteps = new Option<int?>("--max-steps", "--steps") { Description = "Optimizer steps (overrides --epochs)" };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 32 };
        var accumulation = new Option<int>("--grad-accum") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => 1 };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 5e-5 };
        var weightDecay = new Option<double>("--weight-decay") { DefaultValueFactory = _ => 0.01 };
        var warmup = new Option<double>("--warmup") { Description = "Warmup as a fraction of the steps", DefaultValueFactory = _ => 0.1 };
        var schedule = new Option<string>("--schedule") { Description = "linear, cosine or constant after warmup", DefaultValueFactory = _ => "linear" };
        var clip = new Option<double?>("--max-grad-norm") { Description = "Gradient clipping (default 1.0; 0 = off)", DefaultValueFactory = _ => 1.0 };
        var freeze = new Option<string[]>("--freeze") { Description = "Parameter-name globs to freeze, e.g. 'uniter.embeddings.*'", AllowMultipleArgumentsPerToken = true };
        var evalEvery = new Option<int>("--eval-every") { Description = "Validate every N steps (0 = at the end)" };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Checkpoint every N steps (0 = at the end)" };
        var answers = new Option<int>("--answers") { Description = "VQA answer vocabulary size (most frequent training answers)", DefaultValueFactory = _ => 3129 };
        var vocab = new Option<string?>("--vocab") { Description = "WordPiece vocab.txt for models whose vocabulary is not bundled (cased UNITER: bert-base-cased); kept in the output folder" };
        var valLimit = new Option<int?>("--val-limit")
        {
            Description = "Validate on the first N questions (VQA) or images with their captions (retrieval; cross encoders score every caption-image pair)",
        };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 42 };
        var precision = new Option<string>("--precision") { Description = "fp32 or bf16 (bf16 compute, fp32 master weights)", DefaultValueFactory = _ => "fp32" };
        var device = CommonOptions.Device();
        var json = CommonOptions.Json("Print the final metrics as JSON");
        var command = new Command(name, description)
        {
            model, weights, task, train, val, output, resume, epochs, maxSteps, batch, accumulation, lr, weightDecay, warmup, schedule, clip, freeze,
            evalEvery, checkpointEvery, answers, vocab, valLimit, seed, precision, device, json,
        };
        command.Guard(parse =>
        {
            using var loadReports = LoadCommand.PrintLoadReports(); // one line per checkpoint load, to stderr
            string taskName = parse.GetValue(task)!.ToLowerInvariant();
            if (!tasks.Contains(taskName)) throw new ArgumentException($"--task must be one of {string.Join(", ", tasks)}, not '{taskName}'");
            var decay = parse.GetValue(schedule)!.ToLowerInvariant() switch
            {
                "linear" => DecayKind.Linear, "cosine" => DecayKind.Cosine, "constant" => DecayKind.Constant,
                var other => throw new ArgumentException($"--schedule must be linear, cosine or constant, not '{other}'"),
            };
            var options = new TrainerOptions
            {
                LearningRate = parse.GetValue(lr), WeightDecay = parse.GetValue(weightDecay), BatchSize = parse.GetValue(batch),
                GradientAccumulation = parse.GetValue(accumulation), MaxGradNorm = parse.GetValue(clip) is double c && c > 0 ? c : null,
                Epochs = parse.GetValue(epochs), MaxSteps = parse.GetValue(maxSteps), WarmupRatio = parse.GetValue(warmup), Decay = decay,
                Precision = parse.GetValue(precision)!, Freeze = parse.GetValue(freeze) ?? Array.Empty<string>(), EvalEvery = parse.GetValue(evalEvery),
                CheckpointEvery = parse.GetValue(checkpointEvery), Seed = parse.GetValue(seed), Label = taskName,
            };
            string outputDirectory = Path.GetFullPath(parse.GetValue(output)!);
            if (ContrastivePretraining.IsTask(taskName))
                return PretrainCommand.Run(parse.GetValue(model)!, taskName, parse.GetValue(train)!, parse.GetValue(val), outputDirectory, options,
                    parse.GetValue(weights), parse.GetValue(device)!, parse.GetValue(resume), parse.GetValue(json));
            var (training, validation) = FineTuning.Run(parse.GetValue(model)!, taskName, parse.GetValue(train)!, parse.GetValue(val), outputDirectory,
                options, parse.GetValue(weights), parse.GetValue(answers), parse.GetValue(device)!, parse.GetValue(resume),
                parse.GetValue(vocab), parse.GetValue(valLimit));
            if (validation?.Predictions is { } predictions) FineTuning.WriteResults(Path.Combine(outputDirectory, "val-results.json"), predictions);
            var summary = EvalModelAction.Summary(validation);
            summary["steps"] = training.Steps;
            summary["final_loss"] = training.Losses.Count > 0 ? training.Losses[^1] : double.NaN;
            summary["output"] = outputDirectory;
            if (parse.GetValue(json)) { CliRun.PrintJson(summary); return 0; }
            Console.WriteLine($"fine-tuned {parse.GetValue(model)} for {taskName}: {training.Steps} steps, final loss " +
                              (training.Losses.Count > 0 ? training.Losses[^1].ToString("0.0000", CultureInfo.InvariantCulture) : "-") +
                              $", {training.Elapsed.TotalSeconds:0} s; saved to {outputDirectory}");
            EvalModelAction.Print(validation);
            return 0;
        });
        return command;
    }
}
