using System.CommandLine;
using System.Globalization;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Evaluation.Retrieval;
using ModelZoo.Evaluation.Vqa;

namespace ModelZoo.Cli.Commands;

/// <summary>
/// `modelzoo eval`: metrics over files (`eval vqa`, `eval retrieval`) and, with --model, a model run on a task's
/// data (<see cref="EvalModelAction"/>).
/// </summary>
public sealed class EvalCommand : ICliCommand
{
    public Command Build()
    {
        var command = new Command("eval", "Evaluate: official VQA accuracy or retrieval recall from files (subcommands), or a model on a task (--model ... --task ... --data ...)");
        command.Add(BuildVqa());
        command.Add(BuildRetrieval());
        EvalModelAction.Attach(command);
        return command;
    }

    static Command BuildVqa()
    {
        var questions = new Option<string>("--questions") { Description = "VQA questions JSON (official format)", Required = true };
        var annotations = new Option<string>("--annotations") { Description = "VQA annotations JSON (official format)", Required = true };
        var results = new Option<string>("--results") { Description = "Results JSON: [{\"question_id\": ..., \"answer\": ...}], one per annotated question", Required = true };
        var json = CommonOptions.Json("Print overall, perAnswerType, perQuestionType and perQuestion as JSON");
        var command = new Command("vqa", "Official VQA accuracy (GT-Vision-Lab vqaEval.py, reproduced exactly)") { questions, annotations, results, json };
        command.Guard(parse =>
        {
            var evaluation = VqaEvaluator.EvaluateFiles(parse.GetValue(questions)!, parse.GetValue(annotations)!, parse.GetValue(results)!);
            if (parse.GetValue(json))
            {
                CliRun.PrintJson(VqaJson(evaluation));
                return 0;
            }
            Console.WriteLine($"Overall accuracy: {Number(evaluation.Overall)}  ({evaluation.PerQuestion.Count} questions)");
            var byAnswer = new Table("answer type", "accuracy");
            foreach (var (type, accuracy) in evaluation.PerAnswerType) byAnswer.Add(type, Number(accuracy));
            Console.Write(byAnswer);
            var byQuestion = new Table("question type", "accuracy", "questions");
            foreach (var (type, accuracy) in evaluation.PerQuestionType) byQuestion.Add(type, Number(accuracy), evaluation.EvalQuestionType[type].Count);
            Console.Write(byQuestion);
            return 0;
        });
        return command;
    }

    /// <summary>The JSON layout of `eval vqa --json` (the keys of the vqa-metric fixture's expected.json).</summary>
    public static Dictionary<string, object> VqaJson(VqaEvaluation evaluation) => new()
    {
        ["overall"] = evaluation.Overall,
        ["perAnswerType"] = evaluation.PerAnswerType,
        ["perQuestionType"] = evaluation.PerQuestionType,
        ["perQuestion"] = evaluation.PerQuestion.OrderBy(p => p.Key)
            .Select(p => new Dictionary<string, object> { ["question_id"] = p.Key, ["accuracy"] = p.Value }).ToList(),
    };

    static Command BuildRetrieval()
    {
        var scores = new Option<string>("--scores") { Description = "safetensors file with a [captions x images] float tensor", Required = true };
        var mapping = new Option<string>("--mapping") { Description = "mapping JSON: txt_ids, img_ids, txt2img, img2txts", Required = true };
        var tensor = new Option<string>("--tensor") { Description = "Name of the score tensor", DefaultValueFactory = _ => "score_matrix" };
        var json = CommonOptions.Json("Print txt_r1/5/10, img_r1/5/10 (fractions), r_mean and rsum as JSON");
        var command = new Command("retrieval", "Image-text retrieval recall R@1/5/10 (textbook definition) from a score matrix") { scores, mapping, tensor, json };
        command.Guard(parse =>
        {
            var recall = RetrievalMetrics.ComputeFiles(parse.GetValue(scores)!, parse.GetValue(mapping)!, parse.GetValue(tensor)!);
            if (parse.GetValue(json))
            {
                CliRun.PrintJson(RetrievalJson(recall));
                return 0;
            }
            PrintRecall(recall);
            return 0;
        });
        return command;
    }

    public static Dictionary<string, double> RetrievalJson(RetrievalRecall r) => new()
    {
        ["txt_r1"] = r.TxtR1, ["txt_r5"] = r.TxtR5, ["txt_r10"] = r.TxtR10,
        ["img_r1"] = r.ImgR1, ["img_r5"] = r.ImgR5, ["img_r10"] = r.ImgR10,
        ["txt_r_mean"] = r.TxtRMean, ["img_r_mean"] = r.ImgRMean,
        ["r_mean"] = r.RMean, ["rsum"] = r.RSum,
    };

    public static void PrintRecall(RetrievalRecall r)
    {
        var table = new Table("direction", "R@1", "R@5", "R@10", "mean");
        table.Add("text retrieval (image -> text)", Percent(r.TxtR1), Percent(r.TxtR5), Percent(r.TxtR10), Percent(r.TxtRMean));
        table.Add("image retrieval (text -> image)", Percent(r.ImgR1), Percent(r.ImgR5), Percent(r.ImgR10), Percent(r.ImgRMean));
        Console.Write(table);
        Console.WriteLine($"R mean {Percent(r.RMean)}   RSUM {r.RSum.ToString("0.00", CultureInfo.InvariantCulture)}");
    }

    static string Number(double value) => value.ToString("0.00", CultureInfo.InvariantCulture);
    static string Percent(double fraction) => (100 * fraction).ToString("0.00", CultureInfo.InvariantCulture);
}
