using System.CommandLine;
using System.Globalization;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Training.Tasks;

namespace ModelZoo.Cli.Commands;

/// <summary>
/// `modelzoo eval --model NAME --weights DIR --task vqa|retrieval --data M.json`: runs a fine-tuned model (or a preset
/// with its published weights and, for VQA, --answers) on a task's data.
/// </summary>
static class EvalModelAction
{
    public static void Attach(Command eval)
    {
        var model = new Option<string?>("--model") { Description = "Preset name or an adapter's own model (demo-vilt, demo-clip)" };
        var weights = new Option<string?>("--weights") { Description = "Output folder of `modelzoo finetune` (model.safetensors, task.json)" };
        var task = new Option<string?>("--task") { Description = "vqa or retrieval" };
        var data = new Option<string?>("--data") { Description = "Data manifest of the split to evaluate" };
        var results = new Option<string?>("--results-out") { Description = "VQA: also write the predictions in the official results format" };
        var answers = new Option<string?>("--answers") { Description = "VQA with published weights (not a finetune folder): the head's answer list, e.g. trainval_label2ans.json" };
        var vocab = new Option<string?>("--vocab") { Description = "WordPiece vocab.txt for models whose vocabulary is not bundled (a finetune folder's own copy is used by default)" };
        var limit = new Option<int?>("--limit") { Description = "Evaluate the first N questions (VQA) or images with their captions (retrieval)" };
        var device = CommonOptions.Device();
        var json = CommonOptions.Json();
        foreach (var option in new Option[] { model, weights, task, data, results, answers, vocab, limit, device, json }) eval.Add(option);
        eval.Guard(parse =>
        {
            using var loadReports = LoadCommand.PrintLoadReports(); // one line per checkpoint load, to stderr
            if (parse.GetValue(model) is not string name)
                throw new ArgumentException("give a subcommand (`eval vqa`, `eval retrieval`) or --model NAME --weights DIR --task vqa|retrieval --data MANIFEST");
            string Require(Option<string?> option) => parse.GetValue(option) ?? throw new ArgumentException($"--model needs {option.Name} too");
            string taskName = Require(task).ToLowerInvariant();
            if (taskName is not ("vqa" or "retrieval")) throw new ArgumentException($"--task must be vqa or retrieval, not '{taskName}'");
            var evaluation = FineTuning.Evaluate(name, Require(weights), taskName, Require(data), parse.GetValue(device)!, parse.GetValue(answers),
                parse.GetValue(vocab), parse.GetValue(limit));
            if (parse.GetValue(results) is string path && evaluation.Predictions is { } predictions) FineTuning.WriteResults(path, predictions);
            if (parse.GetValue(json)) { CliRun.PrintJson(Summary(evaluation)); return 0; }
            Print(evaluation);
            return 0;
        });
    }

    public static Dictionary<string, object?> Summary(TaskEvaluation? evaluation)
    {
        var summary = new Dictionary<string, object?>();
        if (evaluation is null) return summary;
        summary["task"] = evaluation.Task;
        summary["examples"] = evaluation.Examples;
        if (evaluation.Vqa is { } vqa) foreach (var (key, value) in EvalCommand.VqaJson(vqa)) summary[key] = value;
        if (evaluation.Retrieval is { } recall) foreach (var (key, value) in EvalCommand.RetrievalJson(recall)) summary[key] = value;
        return summary;
    }

    public static void Print(TaskEvaluation? evaluation)
    {
        if (evaluation is null) return;
        if (evaluation.Vqa is { } vqa)
        {
            Console.WriteLine($"VQA accuracy (official metric) on {evaluation.Examples} questions: {vqa.Overall.ToString("0.00", CultureInfo.InvariantCulture)}");
            var table = new Table("answer type", "accuracy");
            foreach (var (type, accuracy) in vqa.PerAnswerType) table.Add(type, accuracy.ToString("0.00", CultureInfo.InvariantCulture));
            Console.Write(table);
        }
        else if (evaluation.Task == "vqa")
        {
            Console.WriteLine($"{evaluation.Examples} questions answered (no annotations to score against)");
        }
        if (evaluation.Retrieval is { } recall)
        {
            Console.WriteLine($"retrieval on {evaluation.Examples} images:");
            EvalCommand.PrintRecall(recall);
        }
    }
}
