using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.OneStream;
using ModelZoo.Processing.Regions;
using ModelZoo.Tests.Support;
using NUnit.Framework;
using static TorchSharp.torch;

namespace ModelZoo.Tests.TwoStream;

/// <summary>`modelzoo vqa --features TSV --image-id ID` for the two-stream models, through their tiny presets.</summary>
public class TwoStreamVqaCommandTests : SingleThreadedTests
{
    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    /// <summary>Random weights of <paramref name="preset"/> saved as model.safetensors in a folder of their own.</summary>
    public static string SaveCheckpoint(string directory, string preset, long seed)
    {
        manual_seed(seed);
        using var model = ModelCatalog.Default.Create(preset);
        var folder = Path.Combine(directory, preset);
        Directory.CreateDirectory(folder);
        SafetensorsBuilder.Write(Path.Combine(folder, "model.safetensors"), model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));
        return folder;
    }

    /// <summary>An answer table as airsplay/lxmert ships it (trainval_label2ans.json: a JSON list).</summary>
    public static string SaveAnswers(string directory, int count)
    {
        var path = Path.Combine(directory, "trainval_label2ans.json");
        File.WriteAllText(path, JsonSerializer.Serialize(Enumerable.Range(0, count).Select(i => $"a{i}")));
        return path;
    }

    /// <summary>One image of a bottom-up-attention TSV: 2048-d features, pixel boxes inside a <paramref name="width"/> × <paramref name="height"/> image.</summary>
    public static RegionFeatures Regions(string id, int boxes, int seed, int width = 640, int height = 480)
    {
        var random = new Random(seed);
        float Next(float scale) => (float)random.NextDouble() * scale;
        return new RegionFeatures
        {
            ImageId = id, ImageWidth = width, ImageHeight = height, BoxCount = boxes, FeatureSize = 2048,
            Features = Enumerable.Range(0, boxes * 2048).Select(_ => Next(2)).ToArray(),
            Boxes = Enumerable.Range(0, boxes).SelectMany(_ => { float x = Next(300), y = Next(200); return new[] { x, y, x + 10 + Next(300), y + 10 + Next(250) }; }).ToArray(),
            ObjectConfidences = Enumerable.Range(0, boxes).Select(_ => 0.9f).ToArray(),
        };
    }

    static List<(string Answer, float Score)> ParseAnswers(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.GetProperty("answers").EnumerateArray()
            .Select(a => (a.GetProperty("answer").GetString()!, a.GetProperty("score").GetSingle())).ToList();
    }

    [TestCase("lxmert-tiny-vqa", 31)]
    [TestCase("vilbert-tiny-multitask", 32)]
    public void AnswersFromABottomUpTsvEqualThePipelineOnTheSameRegions(string preset, int seed)
    {
        var weights = SaveCheckpoint(_directory, preset, seed);
        var answersFile = SaveAnswers(_directory, 3129);
        var tsv = Path.Combine(_directory, "val2014_obj36.tsv");
        var first = Regions("57870", 12, seed + 1);
        var second = Regions("262148", 9, seed + 2, 500, 375);
        File.WriteAllLines(tsv, new[] { RegionFeatureTsv.Format(first), RegionFeatureTsv.Format(second) });
        const string question = "what is the man holding?";

        var (code, output, error) = CliRunner.Run("vqa", "--model", preset, "--weights", weights, "--answers", answersFile,
            "--features", tsv, "--image-id", "262148", "--question", question, "--json");
        Assert.That(code, Is.EqualTo(0), error);
        var answers = ParseAnswers(output);
        Assert.That(answers, Has.Count.EqualTo(5));

        using var pipeline = VqaPipeline.Load(preset, weights, answersFile);
        var expected = pipeline.Answer(DetectorRegions.From(second), question);
        Assert.That(answers.Select(a => a.Answer), Is.EqualTo(expected.Select(a => a.Answer)));
        for (int i = 0; i < expected.Count; i++)
            Assert.That(answers[i].Score, Is.EqualTo(expected[i].Score).Within(1e-6), $"answer {i}");
        // Control: the other image of the file answers differently, so the command did read image 262148.
        var other = pipeline.Answer(DetectorRegions.From(first), question);
        Assert.That(other[0].Score, Is.Not.EqualTo(expected[0].Score).Within(1e-7));

        (code, _, error) = CliRunner.Run("vqa", "--model", preset, "--weights", weights, "--answers", answersFile,
            "--features", tsv, "--image-id", "999", "--question", question);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("no image '999'").And.Contain("val2014_obj36.tsv"));
    }
}
