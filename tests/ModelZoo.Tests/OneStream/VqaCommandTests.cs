using System.IO.Compression;
using System.Text;
using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.OneStream;
using ModelZoo.Processing.Regions;
using ModelZoo.Tests.Processing;
using ModelZoo.Tests.Support;
using NUnit.Framework;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.OneStream;

/// <summary>`modelzoo vqa` end to end: image files for ViLT, TSV and .npz region files for the region models.</summary>
public class VqaCommandTests
{
    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    string SaveCheckpoint(string preset, long seed, bool withNames)
    {
        manual_seed(seed);
        using var model = ModelCatalog.Default.Create(preset);
        var directory = Path.Combine(_directory, preset);
        Directory.CreateDirectory(directory);
        SafetensorsBuilder.Write(Path.Combine(directory, "model.safetensors"), model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));
        if (withNames)
            File.WriteAllText(Path.Combine(directory, "config.json"),
                JsonSerializer.Serialize(new { id2label = Enumerable.Range(0, 3129).ToDictionary(i => i.ToString(), i => $"answer {i}") }));
        return directory;
    }

    static List<(string Answer, float Score)> ParseAnswers(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.GetProperty("answers").EnumerateArray()
            .Select(a => (a.GetProperty("answer").GetString()!, a.GetProperty("score").GetSingle())).ToList();
    }

    static RegionFeatures Regions(string id, int boxes, int seed, int width = 640, int height = 480)
    {
        var random = new Random(seed);
        float Next(float scale) => (float)random.NextDouble() * scale;
        return new RegionFeatures
        {
            ImageId = id, ImageWidth = width, ImageHeight = height, BoxCount = boxes, FeatureSize = 2048,
            Features = Enumerable.Range(0, boxes * 2048).Select(_ => Next(2)).ToArray(),
            Boxes = Enumerable.Range(0, boxes).SelectMany(_ => { float x = Next(300), y = Next(200); return new[] { x, y, x + 10 + Next(300), y + 10 + Next(250) }; }).ToArray(),
            ObjectConfidences = Enumerable.Range(0, boxes).Select(i => i < boxes - 3 ? 0.9f : 0.1f).ToArray(),
        };
    }

    [Test]
    public void ViltAnswersAnImageFile()
    {
        var weights = SaveCheckpoint("vilt-tiny", 1, withNames: true);
        var image = Path.Combine(_directory, "shapes.png");
        File.WriteAllBytes(image, TestImages.Encode(TestImages.Synthetic(200, 150), SKEncodedImageFormat.Png));

        var (code, output, error) = CliRunner.Run("vqa", "--model", "vilt-tiny", "--weights", weights, "--image", image, "--question", "what shape is red?", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        var answers = ParseAnswers(output);
        Assert.That(answers, Has.Count.EqualTo(5));

        using var pipeline = VqaPipeline.Load("vilt-tiny", weights);
        var expected = pipeline.Answer(image, "what shape is red?");
        Assert.That(answers.Select(a => a.Answer), Is.EqualTo(expected.Select(a => a.Answer)));
        Assert.That(answers[0].Score, Is.EqualTo(expected[0].Score).Within(1e-6));

        (code, output, error) = CliRunner.Run("vqa", "--model", "vilt-tiny", "--weights", weights, "--image", image, "--question", "what shape is red?");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain("answer").And.Contain(expected[0].Answer));
    }

    [Test]
    public void UniterAnswersFromABottomUpTsvKeepingTheBoxesItsLoaderKeeps()
    {
        var weights = SaveCheckpoint("uniter-tiny-vqa", 2, withNames: false);
        var answersFile = Path.Combine(_directory, "ans2label.json");
        File.WriteAllText(answersFile, JsonSerializer.Serialize(Enumerable.Range(0, 3129).ToDictionary(i => $"a{i}", i => i)));
        var tsv = Path.Combine(_directory, "features.tsv");
        var second = Regions("262148", 14, 4);
        File.WriteAllLines(tsv, new[] { RegionFeatureTsv.Format(Regions("57870", 12, 3)), RegionFeatureTsv.Format(second) });

        var (code, output, error) = CliRunner.Run("vqa", "--model", "uniter-tiny-vqa", "--weights", weights, "--answers", answersFile,
            "--features", tsv, "--image-id", "262148", "--question", "what is on the table?", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        var answers = ParseAnswers(output);

        // UNITER keeps 11 of the 14 boxes (confidence above 0.2, at least 10): the same answers as those boxes given directly.
        using var pipeline = VqaPipeline.Load("uniter-tiny-vqa", weights, answersFile);
        Assert.That(second.UniterBoxCount(), Is.EqualTo(11));
        var expected = pipeline.Answer(DetectorRegions.From(second).Take(11), "what is on the table?");
        Assert.That(answers.Select(a => a.Answer), Is.EqualTo(expected.Select(a => a.Answer)));
        Assert.That(answers[0].Score, Is.EqualTo(expected[0].Score).Within(1e-6));
        var all = pipeline.Answer(DetectorRegions.From(second), "what is on the table?");
        Assert.That(all[0].Score, Is.Not.EqualTo(expected[0].Score), "control: all 14 boxes answer differently");

        (code, _, error) = CliRunner.Run("vqa", "--model", "uniter-tiny-vqa", "--weights", weights, "--answers", answersFile,
            "--features", tsv, "--image-id", "999", "--question", "what?");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("no image '999'").And.Contain("features.tsv"));
    }

    [Test]
    public void VisualBertAnswersFromADirectoryOfUniterNpzFiles()
    {
        var weights = SaveCheckpoint("visualbert-tiny", 5, withNames: true);
        var features = Path.Combine(_directory, "coco_val2014");
        Directory.CreateDirectory(features);
        var regions = Regions("42", 7, 6);
        WriteNpz(Path.Combine(features, "coco_val2014_000000000042.npz"), regions);
        WriteNpz(Path.Combine(features, "coco_val2014_000000000043.npz"), Regions("43", 5, 7));

        var (code, output, error) = CliRunner.Run("vqa", "--model", "visualbert-tiny", "--weights", weights, "--features", features,
            "--image-id", "42", "--question", "is there a dog?", "--json", "--top", "3");
        Assert.That(code, Is.EqualTo(0), error);
        var answers = ParseAnswers(output);
        Assert.That(answers, Has.Count.EqualTo(3));
        using var pipeline = VqaPipeline.Load("visualbert-tiny", weights);
        var expected = pipeline.Answer(new DetectorRegions(tensor(regions.Features, new long[] { 7, 2048 })), "is there a dog?", top: 3);
        Assert.That(answers.Select(a => a.Answer), Is.EqualTo(expected.Select(a => a.Answer)));
        Assert.That(answers[0].Score, Is.EqualTo(expected[0].Score).Within(1e-5));
    }

    [Test]
    public void TheDocumentationExampleRunsLineForLine()
    {
        // docs/one-stream.md "Answering questions from C#", with the tiny presets and files written here.
        var viltWeights = SaveCheckpoint("vilt-tiny", 8, withNames: true);
        var uniterWeights = SaveCheckpoint("uniter-tiny-vqa", 9, withNames: false);
        var image = Path.Combine(_directory, "cats.jpg");
        File.WriteAllBytes(image, TestImages.Encode(TestImages.Synthetic(160, 120), SKEncodedImageFormat.Jpeg));
        var answersFile = Path.Combine(_directory, "ans2label.json");
        File.WriteAllText(answersFile, JsonSerializer.Serialize(Enumerable.Range(0, 3129).ToDictionary(i => $"a{i}", i => i)));
        var vocab = Path.Combine(_directory, "vocab.txt");
        File.WriteAllLines(vocab, ModelZoo.Tokenization.Bert.BertWordPieceTokenizer.BaseUncased() is var t
            ? Enumerable.Range(0, t.VocabularySize).Select(i => t.IdToToken(i)!) : throw new InvalidOperationException());
        var npz = Path.Combine(_directory, "coco_val2014_000000393225.npz");
        WriteNpz(npz, Regions("393225", 9, 10));
        var printed = new List<string>();

        using var vilt = VqaPipeline.Load("vilt-tiny", viltWeights);
        foreach (var a in vilt.Answer(image, "How many cats are there?"))
            printed.Add($"{a.Answer,-12} {a.Score:0.000}");

        using var uniter = VqaPipeline.Load("uniter-tiny-vqa", uniterWeights, answersFile, vocabPath: vocab);
        var regions = UniterNpz.Read(npz);
        foreach (var a in uniter.Answer(regions, "What is the man holding?"))
            printed.Add($"{a.Answer,-12} {a.Score:0.000}");

        Assert.That(printed, Has.Count.EqualTo(10));
        Assert.That(printed.Take(5), Has.All.StartsWith("answer "));
        Assert.That(printed.Skip(5), Has.All.Match(@"^a\d+ +0\.\d{3}$"));
    }

    /// <summary>A UNITER-style .npz: features [n, 2048] and norm_bb [n, 6], float32.</summary>
    static void WriteNpz(string path, RegionFeatures r)
    {
        var normalized = new float[r.BoxCount * 6];
        for (int i = 0; i < r.BoxCount; i++)
        {
            float x1 = r.Boxes![i * 4] / r.ImageWidth, y1 = r.Boxes[i * 4 + 1] / r.ImageHeight, x2 = r.Boxes[i * 4 + 2] / r.ImageWidth, y2 = r.Boxes[i * 4 + 3] / r.ImageHeight;
            new[] { x1, y1, x2, y2, x2 - x1, y2 - y1 }.CopyTo(normalized, i * 6);
        }
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var (name, shape, values) in new[] { ("features", new[] { r.BoxCount, 2048 }, r.Features), ("norm_bb", new[] { r.BoxCount, 6 }, normalized) })
        {
            string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({shape[0]}, {shape[1]}), }}";
            header = header.PadRight(((10 + header.Length + 1 + 63) / 64) * 64 - 10 - 1) + "\n";
            using var stream = zip.CreateEntry(name + ".npy").Open();
            stream.Write(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0 });
            stream.Write(BitConverter.GetBytes((ushort)header.Length));
            stream.Write(Encoding.ASCII.GetBytes(header));
            foreach (var v in values) stream.Write(BitConverter.GetBytes(v));
        }
    }
}
