using System.CommandLine;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.OneStream;

namespace ModelZoo.Cli.Commands;

/// <summary>`modelzoo vqa`: the top answers of a VQA model (ViLT on an image; UNITER, VisualBERT, ViLBERT, LXMERT on region features).</summary>
public sealed class VqaCommand : ICliCommand
{
    public Command Build()
    {
        var model = new Option<string>("--model") { Description = "A VQA preset: vilt-b32-vqa (image); uniter-base-vqa, uniter-large-vqa, visualbert-vqa, lxmert-vqa, lxmert-gqa, vilbert-multitask (region features); demos: vilt-tiny, uniter-tiny-vqa, visualbert-tiny, lxmert-tiny-vqa, vilbert-tiny-multitask", Required = true };
        var weights = new Option<string?>("--weights") { Description = "Checkpoint file or directory (original or Hugging Face layout); without it the weights are random (demo only)" };
        var image = new Option<string?>("--image") { Description = "An image file (ViLT)" };
        var features = new Option<string?>("--features") { Description = "Detector region features: a bottom-up-attention TSV, a UNITER .npz, or a directory of .npz files (region models)" };
        var imageId = new Option<string?>("--image-id") { Description = "The image's id inside --features" };
        var question = new Option<string>("--question") { Description = "The question", Required = true };
        var answers = new Option<string?>("--answers") { Description = "Answer names (override the checkpoint's config.json id2label; needed when it has none): a JSON list, ans2label / id2label JSON, or one answer a line" };
        var vocab = new Option<string?>("--vocab") { Description = "WordPiece vocab.txt (UNITER needs bert-base-cased's; default: vocab.txt beside the weights)" };
        var top = new Option<int>("--top") { Description = "How many answers to print", DefaultValueFactory = _ => 5 };
        var device = CommonOptions.Device();
        var dtype = CommonOptions.Dtype();
        var json = CommonOptions.Json();
        var command = new Command("vqa", "Answer a question about an image; prints the top answers with their scores")
            { model, weights, image, features, imageId, question, answers, vocab, top, device, dtype, json };
        command.Guard(parse =>
        {
            using var loadReports = LoadCommand.PrintLoadReports(); // one line per checkpoint load, to stderr
            string? imagePath = parse.GetValue(image), featurePath = parse.GetValue(features), id = parse.GetValue(imageId);
            if ((imagePath is null) == (featurePath is null)) throw new ArgumentException("give either --image FILE or --features FILE --image-id ID");
            if (featurePath is not null && id is null) throw new ArgumentException("--features needs --image-id");
            string? weightsPath = parse.GetValue(weights);
            if (weightsPath is null) Console.Error.WriteLine("modelzoo: note: no --weights: the model has random weights, the answers mean nothing");

            using var pipeline = VqaPipeline.Load(parse.GetValue(model)!, weightsPath, parse.GetValue(answers), parse.GetValue(vocab),
                new ModelCreateOptions { Device = parse.GetValue(device)!, Dtype = parse.GetValue(dtype)! });
            string text = parse.GetValue(question)!;
            IReadOnlyList<VqaAnswer> result;
            if (pipeline.ReadsPixels)
            {
                if (imagePath is null) throw new ArgumentException($"{pipeline.Preset.Name} reads the image itself: give --image FILE");
                result = pipeline.Answer(imagePath, text, parse.GetValue(top));
            }
            else
            {
                if (featurePath is null) throw new ArgumentException($"{pipeline.Preset.Name} reads detector region features: give --features FILE --image-id ID");
                result = pipeline.Answer(VqaInputs.LoadRegions(featurePath, id!), text, parse.GetValue(top));
            }

            if (parse.GetValue(json))
            {
                CliRun.PrintJson(new
                {
                    model = pipeline.Preset.Name,
                    question = text,
                    answers = result.Select(a => new { answer = a.Answer, index = a.Index, score = a.Score }),
                });
                return 0;
            }
            Console.WriteLine($"{pipeline.Preset.Name}: {text}");
            var table = new Table("rank", "answer", "score");
            for (int i = 0; i < result.Count; i++) table.Add(i + 1, result[i].Answer, result[i].Score.ToString("0.0000"));
            Console.Write(table);
            return 0;
        });
        return command;
    }
}
