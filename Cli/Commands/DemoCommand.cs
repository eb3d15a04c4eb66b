using System.CommandLine;
using System.Globalization;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Training.Demo;
using TorchSharp;

namespace ModelZoo.Cli.Commands;

/// <summary>
/// `modelzoo demo`: the built-in end-to-end run on the project's own shapes data set (nothing is downloaded):
/// VQA fine-tuning of a small one-stream model and contrastive training of a small dual encoder, measured on
/// held-out images beside the majority-answer and chance baselines, with a learning-curve PNG.
/// </summary>
public sealed class DemoCommand : ICliCommand
{
    public Command Build()
    {
        var quick = new Option<bool>("--quick") { Description = "A small run (well under a minute) for tests and a first look" };
        var output = new Option<string>("--out") { Description = "Folder for the learning curve, metrics logs and results", DefaultValueFactory = _ => "modelzoo-demo" };
        var seed = new Option<long>("--seed") { Description = "Seed of the data set, the initialisation and the training order", DefaultValueFactory = _ => 7 };
        var threads = new Option<int>("--threads")
        {
            Description = "CPU threads for torch. Default 1: the demo's tensors are small, and one thread wastes no time waiting on a busy machine",
            DefaultValueFactory = _ => 1,
        };
        var vqaSteps = new Option<int?>("--vqa-steps") { Description = "Override the VQA fine-tuning steps" };
        var retrievalSteps = new Option<int?>("--retrieval-steps") { Description = "Override the retrieval training steps" };
        var writeData = new Option<string?>("--write-data") { Description = "Only write the data set (PNG images, VQA JSON, captions, manifests for finetune/eval) to this folder" };
        var json = CommonOptions.Json("Print the results as JSON (progress still goes to stderr)");
        var command = new Command("demo", "Built-in demo: fine-tune a small VQA model and a small dual encoder on generated shapes images; report accuracy and recall against baselines")
            { quick, output, seed, threads, vqaSteps, retrievalSteps, writeData, json };
        command.Guard(parse =>
        {
            int n = parse.GetValue(threads);
            if (n < 1) throw new ArgumentException("--threads must be at least 1");
            torch.set_num_threads(n);
            var options = (parse.GetValue(quick) ? DemoOptions.Quick : new DemoOptions()) with
            {
                Seed = parse.GetValue(seed),
                OutputDirectory = Path.GetFullPath(parse.GetValue(output)!),
            };
            if (parse.GetValue(vqaSteps) is int v) options = options with { VqaSteps = v };
            if (parse.GetValue(retrievalSteps) is int r) options = options with { RetrievalSteps = r };
            if (parse.GetValue(writeData) is string dataDirectory)
            {
                foreach (var manifest in DemoRunner.WriteData(options, Path.GetFullPath(dataDirectory))) Console.WriteLine(manifest);
                return 0;
            }
            Directory.CreateDirectory(options.OutputDirectory!);
            var report = DemoRunner.Run(options, message => Console.Error.WriteLine("demo: " + message));
            var results = ResultsJson(report, options);
            Weights.AtomicFile.WriteAllText(Path.Combine(options.OutputDirectory!, "results.json"),
                System.Text.Json.JsonSerializer.Serialize(results, CliRun.Json));
            if (parse.GetValue(json))
            {
                CliRun.PrintJson(results);
                return 0;
            }
            Print(report, options);
            return 0;
        });
        return command;
    }

    static void Print(DemoReport report, DemoOptions options)
    {
        Console.WriteLine();
        Console.WriteLine($"VQA on {report.VqaTestQuestions} held-out questions (official VQA accuracy), one-stream model, {options.VqaSteps} steps:");
        var vqa = new Table("", "model", "majority answer baseline");
        vqa.Add("overall", F(report.Vqa.Overall), F(report.MajorityBaseline.Overall) + $"  (always \"{report.MajorityAnswer}\")");
        foreach (var (type, accuracy) in report.Vqa.PerAnswerType)
            vqa.Add("  " + type, F(accuracy), F(report.MajorityBaseline.PerAnswerType.GetValueOrDefault(type)));
        foreach (var (type, accuracy) in report.Vqa.PerQuestionType)
            vqa.Add("  " + type + " ...", F(accuracy), F(report.MajorityBaseline.PerQuestionType.GetValueOrDefault(type)));
        Console.Write(vqa);
        Console.WriteLine();
        Console.WriteLine($"Retrieval on {report.RetrievalTestImages} held-out images and {report.RetrievalTestCaptions} captions, dual encoder, {options.RetrievalSteps} steps:");
        var retrieval = new Table("", "R@1", "R@5", "R@10");
        retrieval.Add("image retrieval (text -> image)", P(report.Retrieval.ImgR1), P(report.Retrieval.ImgR5), P(report.Retrieval.ImgR10));
        retrieval.Add("  chance", P(report.Chance.ImgR1), P(report.Chance.ImgR5), P(report.Chance.ImgR10));
        retrieval.Add("text retrieval (image -> text)", P(report.Retrieval.TxtR1), P(report.Retrieval.TxtR5), P(report.Retrieval.TxtR10));
        retrieval.Add("  chance", P(report.Chance.TxtR1), P(report.Chance.TxtR5), P(report.Chance.TxtR10));
        Console.Write(retrieval);
        Console.WriteLine();
        if (report.LearningCurvePath is not null) Console.WriteLine($"learning curve: {report.LearningCurvePath}");
        Console.WriteLine($"results: {Path.Combine(options.OutputDirectory!, "results.json")}; metrics logs: {Path.Combine(options.OutputDirectory!, "vqa", "metrics.jsonl")}, .../retrieval/metrics.jsonl");
        Console.WriteLine($"time: {report.Elapsed.TotalSeconds:0} s ({report.CpuTime.TotalSeconds:0} s of CPU) on {Environment.ProcessorCount} cores, {torch.get_num_threads()} torch thread(s)");
    }

    static Dictionary<string, object?> ResultsJson(DemoReport report, DemoOptions options) => new()
    {
        ["seed"] = options.Seed,
        ["vqa"] = new Dictionary<string, object?>
        {
            ["questions"] = report.VqaTestQuestions,
            ["accuracy"] = report.Vqa.Overall,
            ["perAnswerType"] = report.Vqa.PerAnswerType,
            ["majorityAnswer"] = report.MajorityAnswer,
            ["majorityBaseline"] = report.MajorityBaseline.Overall,
            ["steps"] = report.VqaTraining.Steps,
            ["finalLoss"] = report.VqaTraining.Losses[^1],
        },
        ["retrieval"] = new Dictionary<string, object?>
        {
            ["images"] = report.RetrievalTestImages,
            ["captions"] = report.RetrievalTestCaptions,
            ["recall"] = EvalCommand.RetrievalJson(report.Retrieval),
            ["chance"] = EvalCommand.RetrievalJson(report.Chance),
            ["steps"] = report.RetrievalTraining.Steps,
            ["finalLoss"] = report.RetrievalTraining.Losses[^1],
        },
        ["learningCurve"] = report.LearningCurvePath,
        ["seconds"] = Math.Round(report.Elapsed.TotalSeconds, 1),
        ["cpuSeconds"] = Math.Round(report.CpuTime.TotalSeconds, 1),
    };

    static string F(double value) => value.ToString("0.00", CultureInfo.InvariantCulture);
    static string P(double fraction) => (100 * fraction).ToString("0.0", CultureInfo.InvariantCulture);
}
