using System.Text.Json;
using ModelZoo.Evaluation.ZeroShot;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Clip;
using ModelZoo.Tests.Processing;
using ModelZoo.Tests.Support;
using ModelZoo.Tokenization.Clip;
using ModelZoo.Training.Tasks;
using ModelZoo.Weights;
using NUnit.Framework;
using SkiaSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Evaluation;

/// <summary>`modelzoo eval zero-shot`: top-1 / top-5 of a CLIP model over a folder of class subfolders.</summary>
public class ZeroShotFolderTests
{
    string _directory = "";

    [SetUp]
    public void CreateFolder()
    {
        _directory = TestPaths.TempDirectory();
        var colours = new (string Name, byte R, byte G, byte B)[] { ("dark_red", 150, 10, 10), ("green", 10, 160, 20), ("blue", 20, 30, 170), ("yellow", 220, 210, 20) };
        foreach (var (name, r, g, b) in colours)
        {
            var folder = Path.Combine(_directory, "images", name);
            Directory.CreateDirectory(folder);
            for (int i = 0; i < 3; i++)
            {
                var image = TestImages.Synthetic(40 + 4 * i, 36, seed: i + r, noise: 30);
                var tinted = new ModelZoo.Processing.Images.RgbImage(image.Width, image.Height,
                    image.Pixels.Select((v, k) => (byte)((v + (k % 3 == 0 ? r : k % 3 == 1 ? g : b)) / 2)).ToArray());
                File.WriteAllBytes(Path.Combine(folder, $"{i}.png"), TestImages.Encode(tinted, SKEncodedImageFormat.Png));
            }
        }
        manual_seed(3);
        using var clip = ModelCatalog.Default.Create("clip-tiny");
        SafetensorsWriter.Write(Path.Combine(_directory, "clip.safetensors"), clip.state_dict().ToDictionary(p => p.Key, p => p.Value));
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_directory, true);

    [Test]
    public void FolderAccuracyIsTheTopKOfEveryImagesProbabilities()
    {
        string weights = Path.Combine(_directory, "clip.safetensors"), folder = Path.Combine(_directory, "images");
        using var clip = ModelCatalog.Default.Create<ClipModel>("clip-tiny", new() { WeightsPath = weights });
        var classifier = new ClipZeroShotClassifier(clip, ClipBpeTokenizer.Default());
        var templates = new[] { "a photo of a {}.", "a {} picture." };
        var result = ZeroShotEvaluation.Run(classifier, folder, templates: templates, batchSize: 5);
        Assert.That(result.Classes, Is.EqualTo(new[] { "blue", "dark_red", "green", "yellow" }));
        Assert.That(result.Labels, Is.EqualTo(new[] { "blue", "dark red", "green", "yellow" }));

        // The same numbers from the classifier's own per-file probabilities, all images at once.
        var files = result.Classes.SelectMany((c, i) => Enumerable.Range(0, 3).Select(k => (Path.Combine(folder, c, $"{k}.png"), (long)i))).ToList();
        var predictions = classifier.ClassifyFiles(files.Select(f => f.Item1).ToList(), result.Labels, templates);
        using var probabilities = tensor(predictions.SelectMany(p => p.Probabilities).ToArray(), new long[] { files.Count, 4 });
        var expected = ZeroShotClassification.Accuracy(probabilities, files.Select(f => f.Item2).ToList());
        Assert.That(result.Accuracy.Count, Is.EqualTo(12));
        Assert.That(result.Accuracy.Top1, Is.EqualTo(expected.Top1));
        Assert.That(result.Accuracy.Top5, Is.EqualTo(1.0), "four classes: every label is in the top 5");
        Assert.That(result.Predictions.Select(p => p.Predicted), Is.EqualTo(predictions.Select(p => Array.IndexOf(p.Probabilities.ToArray(), p.Probabilities.Max()))));

        var (code, stdout, error) = CliRunner.Run("eval", "zero-shot", "--model", "clip-tiny", "--weights", weights, "--folder", folder,
            "--template", templates[0], "--template", templates[1], "--batch-size", "7", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(stdout);
        Assert.That(json.RootElement.GetProperty("top1").GetDouble(), Is.EqualTo(expected.Top1));
        Assert.That(json.RootElement.GetProperty("images").GetInt32(), Is.EqualTo(12));
        Assert.That(json.RootElement.GetProperty("perClass").GetArrayLength(), Is.EqualTo(4));

        (code, stdout, error) = CliRunner.Run("eval", "zero-shot", "--model", "clip-tiny", "--weights", weights, "--folder", folder);
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(stdout, Does.Contain("top-1").And.Contain("chance").And.Contain("dark red"));
    }

    [Test]
    public void BadFoldersAndLabelsAreOneLineErrors()
    {
        string weights = Path.Combine(_directory, "clip.safetensors"), folder = Path.Combine(_directory, "images");
        var (code, _, error) = CliRunner.Run("eval", "zero-shot", "--model", "clip-tiny", "--weights", weights, "--folder", folder, "--labels", "a,b");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("2 labels for the 4 class folders"));
        (code, _, error) = CliRunner.Run("eval", "zero-shot", "--model", "clip-tiny", "--weights", weights, "--folder", folder, "--labels", "a,,b,c");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("empty label"));
        (code, _, error) = CliRunner.Run("eval", "zero-shot", "--model", "clip-tiny", "--folder", Path.Combine(folder, "green"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("at least two class subfolders"));
        (code, _, error) = CliRunner.Run("eval", "zero-shot", "--model", "bert-tiny", "--folder", folder);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("needs a CLIP preset"));
    }
}
