using System.CommandLine;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Clip;
using ModelZoo.Tokenization.Clip;
using static TorchSharp.torch;

namespace ModelZoo.Cli.Commands;

/// <summary>`modelzoo zero-shot`: CLIP zero-shot classification of image files among free-text labels.</summary>
public sealed class ZeroShotCommand : ICliCommand
{
    public Command Build()
    {
        var model = new Option<string>("--model") { Description = "A CLIP preset (clip-vit-b32, clip-vit-b16, clip-vit-l14, clip-rn50, ...)", DefaultValueFactory = _ => "clip-vit-b32" };
        var weights = new Option<string?>("--weights") { Description = "Checkpoint: openai/CLIP release .pt (TorchScript), a CLIP state_dict, or a Hugging Face CLIPModel file/folder. Without it the weights are random (for trying the command only)" };
        var images = new Option<string[]>("--image") { Description = "Image file(s)", Required = true, AllowMultipleArgumentsPerToken = true };
        var labels = new Option<string>("--labels") { Description = "Comma-separated labels, e.g. \"cat,dog,car\"", Required = true };
        var templates = new Option<string[]>("--template") { Description = "Prompt template(s) with {} for the label (repeatable; default \"a photo of a {}.\")" };
        var top = new Option<int>("--top-k") { Description = "How many labels to print per image (default: all)", DefaultValueFactory = _ => 0 };
        var json = CommonOptions.Json();
        var device = CommonOptions.Device();
        var dtype = CommonOptions.Dtype();
        var command = new Command("zero-shot", "Classify images among text labels with CLIP: prints each label's probability")
            { model, weights, images, labels, templates, top, json, device, dtype };
        command.Guard(parse =>
        {
            using var loadReports = LoadCommand.PrintLoadReports(); // one line per checkpoint load, to stderr
            var labelList = parse.GetValue(labels)!.Split(',').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
            if (labelList.Count == 0) throw new ArgumentException("--labels holds no label");
            if (labelList.Distinct(StringComparer.Ordinal).Count() != labelList.Count) throw new ArgumentException("--labels repeats a label");
            var templateList = parse.GetValue(templates) is { Length: > 0 } given ? given : ClipZeroShotClassifier.DefaultTemplates.ToArray();
            var imageFiles = parse.GetValue(images)!;
            foreach (var file in imageFiles)
                if (!File.Exists(file)) throw new FileNotFoundException($"{file}: no such image file", file);
            string name = parse.GetValue(model)!;
            var preset = ModelCatalog.Default.Get(name);
            if (preset.Family != "clip") throw new ArgumentException($"'{name}' is a {preset.Family} model; zero-shot classification needs a CLIP preset (see `modelzoo list --family clip`)");
            string? weightsPath = parse.GetValue(weights);
            if (weightsPath is null) Console.Error.WriteLine($"modelzoo: note: no --weights given, so {name} has random weights and the probabilities mean nothing");

            using var clip = ModelCatalog.Default.Create<ClipModel>(name, new ModelCreateOptions
            {
                WeightsPath = weightsPath, Device = parse.GetValue(device)!, Dtype = parse.GetValue(dtype)!,
            });
            var classifier = new ClipZeroShotClassifier(clip, ClipBpeTokenizer.Default());
            int k = parse.GetValue(top) is int t && t > 0 ? Math.Min(t, labelList.Count) : labelList.Count;
            var predictions = classifier.ClassifyFiles(imageFiles, labelList, templateList, k);

            if (parse.GetValue(json))
            {
                CliRun.PrintJson(new
                {
                    model = name,
                    templates = templateList,
                    images = imageFiles.Zip(predictions, (file, p) => new
                    {
                        image = file,
                        probabilities = labelList.Zip(p.Probabilities, (label, prob) => new { label, probability = prob }),
                        top = p.Top.Select(x => new { label = x.Label, probability = x.Probability }),
                    }),
                });
                return 0;
            }
            for (int i = 0; i < imageFiles.Length; i++)
            {
                Console.WriteLine(imageFiles[i]);
                var table = new Table("label", "probability");
                foreach (var (label, probability) in predictions[i].Top) table.Add(label, probability.ToString("0.0000"));
                Console.Write(table);
                if (i + 1 < imageFiles.Length) Console.WriteLine();
            }
            return 0;
        });
        return command;
    }
}
