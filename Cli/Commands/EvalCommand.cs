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
        command.Add(BuildZeroShot());
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

    static Command BuildZeroShot()
    {
        var model = new Option<string>("--model") { Description = "A CLIP preset (clip-vit-b32, clip-rn50, clip-tiny, ...)", Required = true };
        var weights = new Option<string?>("--weights") { Description = "CLIP checkpoint (release .pt, state_dict, Hugging Face file or folder); without it the weights are random" };
        var folder = new Option<string>("--folder") { Description = "Labelled images: one subfolder per class (ROOT/CLASS/*.jpg)", Required = true };
        var labels = new Option<string?>("--labels") { Description = "Comma-separated label texts for the class folders in sorted order (default: the folder names, _ and - as spaces)" };
        var templates = new Option<string[]>("--template") { Description = "Prompt template(s) with {} for the label (repeatable; default \"a photo of a {}.\")" };
        var batch = new Option<int>("--batch-size") { Description = "Images per forward pass", DefaultValueFactory = _ => 32 };
        var json = CommonOptions.Json("Print top1, top5 (fractions), images, classes and the per-class top-1 accuracy as JSON");
        var device = CommonOptions.Device();
        var dtype = CommonOptions.Dtype();
        var command = new Command("zero-shot", "Zero-shot classification accuracy (top-1, top-5) of a CLIP model over a folder of class subfolders")
            { model, weights, folder, labels, templates, batch, json, device, dtype };
        command.Guard(parse =>
        {
            using var loadReports = LoadCommand.PrintLoadReports(); // one line per checkpoint load, to stderr
            string name = parse.GetValue(model)!;
            var preset = ModelZoo.Models.Catalog.ModelCatalog.Default.Get(name);
            if (preset.Family != "clip") throw new ArgumentException($"'{name}' is a {preset.Family} model; zero-shot classification needs a CLIP preset (see `modelzoo list --family clip`)");
            string root = parse.GetValue(folder)!;
            if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"{root}: image folder not found");
            var labelTexts = parse.GetValue(labels) is string given ? given.Split(',').Select(l => l.Trim()).ToList() : null;
            if (labelTexts is not null && labelTexts.Any(l => l.Length == 0)) throw new ArgumentException("--labels holds an empty label");
            if (labelTexts is not null && labelTexts.Distinct(StringComparer.Ordinal).Count() != labelTexts.Count) throw new ArgumentException("--labels repeats a label");
            var templateList = parse.GetValue(templates) is { Length: > 0 } t ? t : ModelZoo.Models.Clip.ClipZeroShotClassifier.DefaultTemplates.ToArray();
            string? weightsPath = parse.GetValue(weights);
            if (weightsPath is null) Console.Error.WriteLine($"modelzoo: note: no --weights given, so {name} has random weights and the accuracy means nothing");
            using var clip = ModelZoo.Models.Catalog.ModelCatalog.Default.Create<ModelZoo.Models.Clip.ClipModel>(name, new ModelZoo.Models.Catalog.ModelCreateOptions
            {
                WeightsPath = weightsPath, Device = parse.GetValue(device)!, Dtype = parse.GetValue(dtype)!,
            });
            var classifier = new ModelZoo.Models.Clip.ClipZeroShotClassifier(clip, ModelZoo.Tokenization.Clip.ClipBpeTokenizer.Default());
            bool terminal = !Console.IsErrorRedirected;
            var result = ModelZoo.Training.Tasks.ZeroShotEvaluation.Run(classifier, root, labelTexts, templateList, parse.GetValue(batch), (done, total) =>
            {
                const int width = 20;
                int filled = (int)Math.Round((double)width * done / total);
                string line = $"zero-shot [{new string('#', filled)}{new string('-', width - filled)}] {done}/{total} images";
                if (terminal) Console.Error.Write("\r" + line + (done == total ? Environment.NewLine : ""));
                else if (done == total) Console.Error.WriteLine(line);
            });
            var perClass = result.Classes.Select((c, i) =>
            {
                var mine = result.Predictions.Where(p => p.Label == i).ToList();
                return (Class: c, Images: mine.Count, Top1: mine.Count == 0 ? 0 : (double)mine.Count(p => p.Predicted == i) / mine.Count);
            }).ToList();
            if (parse.GetValue(json))
            {
                CliRun.PrintJson(new
                {
                    model = name, top1 = result.Accuracy.Top1, top5 = result.Accuracy.Top5, images = result.Accuracy.Count,
                    classes = result.Classes.Count, templates = templateList,
                    perClass = perClass.Select(c => new { @class = c.Class, images = c.Images, top1 = c.Top1 }),
                });
                return 0;
            }
            Console.WriteLine($"{name} zero-shot on {result.Accuracy.Count} images of {result.Classes.Count} classes ({templateList.Length} template(s)):");
            var table = new Table("", "top-1", "top-5");
            table.Add("accuracy", Percent(result.Accuracy.Top1), Percent(result.Accuracy.Top5));
            table.Add("chance", Percent(1.0 / result.Classes.Count), Percent(Math.Min(1.0, 5.0 / result.Classes.Count)));
            Console.Write(table);
            var byClass = new Table("class", "label", "images", "top-1");
            for (int i = 0; i < perClass.Count; i++) byClass.Add(perClass[i].Class, result.Labels[i], perClass[i].Images.ToString(CultureInfo.InvariantCulture), Percent(perClass[i].Top1));
            Console.Write(byClass);
            return 0;
        });
        return command;
    }

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
