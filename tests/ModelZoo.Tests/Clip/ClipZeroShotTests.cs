using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Clip;
using ModelZoo.Processing.Images;
using ModelZoo.Tests.Support;
using ModelZoo.Tokenization.Clip;
using NUnit.Framework;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Clip;

public class ClipZeroShotTests
{
    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    string WriteImage(string name, int width, int height, SKColor color)
    {
        using var bitmap = new SKBitmap(width, height);
        bitmap.Erase(color);
        for (int x = 0; x < width; x += 3) bitmap.SetPixel(x, height / 2, SKColors.White);
        string path = Path.Combine(_directory, name);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    [Test]
    public void OneTemplateGivesTheSoftmaxOfClipLogits()
    {
        manual_seed(4);
        using var model = ModelCatalog.Default.Create<ClipModel>("clip-tiny");
        var classifier = new ClipZeroShotClassifier(model, ClipBpeTokenizer.Default());
        var images = randn(2, 3, 32, 32);
        var labels = new[] { "cat", "dog", "red car" };
        var predictions = classifier.Classify(images, labels, new[] { "a photo of a {}." }, topK: 2);

        using var _ = no_grad();
        var logits = model.forward(images, classifier.Tokenize(labels.Select(l => $"a photo of a {l}.").ToList())).LogitsPerImage;
        var expected = logits.softmax(-1);
        for (int i = 0; i < 2; i++)
        {
            var row = expected[i].data<float>().ToArray();
            Assert.That(predictions[i].Probabilities, Is.EqualTo(row).Within(1e-5));
            Assert.That(predictions[i].Top, Has.Count.EqualTo(2));
            Assert.That(predictions[i].Top[0].Probability, Is.EqualTo(row.Max()).Within(1e-6));
            Assert.That(predictions[i].Top[0].Label, Is.EqualTo(labels[Array.IndexOf(row, row.Max())]));
        }
    }

    [Test]
    public void SeveralTemplatesAverageTheNormalisedPromptFeatures()
    {
        using var model = ModelCatalog.Default.Create<ClipModel>("clip-tiny");
        var classifier = new ClipZeroShotClassifier(model, ClipBpeTokenizer.Default());
        var templates = new[] { "a photo of a {}.", "a drawing of a {}." };
        using var classes = classifier.ClassEmbeddings(new[] { "cat" }, templates);
        using var _ = no_grad();
        var features = model.EncodeText(classifier.Tokenize(new[] { "a photo of a cat.", "a drawing of a cat." }));
        var normalised = features / features.norm(-1, keepdim: true);
        var mean = normalised.mean(new long[] { 0 });
        Assert.That((classes[0] - mean / mean.norm()).abs().max().item<float>(), Is.LessThan(1e-6f));
        Assert.That(classes[0].norm().item<float>(), Is.EqualTo(1f).Within(1e-5));
        Assert.Throws<ArgumentException>(() => classifier.ClassEmbeddings(new[] { "cat" }, new[] { "no placeholder" }));
    }

    [Test]
    public void RetrievalRanksByCosineInBothDirections()
    {
        var images = tensor(new float[,] { { 1, 0 }, { 0, 2 } });
        var texts = tensor(new float[,] { { 0, 1 }, { 3, 0.1f }, { 1, 1 } });
        var imageToText = ClipRetrieval.ImageToText(images, texts, topK: 2);
        Assert.That(imageToText[0].Indices, Is.EqualTo(new[] { 1, 2 }));
        Assert.That(imageToText[1].Indices, Is.EqualTo(new[] { 0, 2 }));
        Assert.That(imageToText[1].Similarities[0], Is.EqualTo(1f).Within(1e-6));
        var textToImage = ClipRetrieval.TextToImage(images, texts, topK: 5);
        Assert.That(textToImage.Select(r => r.Indices[0]), Is.EqualTo(new[] { 1, 0, 0 }));
        Assert.That(textToImage[0].Indices, Has.Count.EqualTo(2), "k is capped by the gallery size");
    }

    [Test]
    public void TheClassifierPreprocessesFilesWithProcessingsClipTransform()
    {
        using var model = ModelCatalog.Default.Create<ClipModel>("clip-tiny");
        var classifier = new ClipZeroShotClassifier(model, ClipBpeTokenizer.Default());
        Assert.That((classifier.ImageProcessor.Size, classifier.ImageProcessor.Resampler), Is.EqualTo((32, ImageResampler.Pil)), "the model's resolution, PIL's bicubic");

        string path = WriteImage("wide.png", 60, 30, new SKColor(255, 0, 0));
        using var batch = classifier.ImageProcessor.ProcessFiles(new[] { path });
        Assert.That(batch.Pixels.shape, Is.EqualTo(new long[] { 1, 3, 32, 32 }));
        // A red corner pixel: (1 - mean) / std in R, (0 - mean) / std in G and B.
        Assert.That(batch.Pixels[0, 0, 0, 0].item<float>(), Is.EqualTo((1 - ClipImageProcessor.Mean[0]) / ClipImageProcessor.Std[0]).Within(1e-5));
        Assert.That(batch.Pixels[0, 1, 0, 0].item<float>(), Is.EqualTo(-ClipImageProcessor.Mean[1] / ClipImageProcessor.Std[1]).Within(1e-5));

        // ClassifyFiles = the processor's pixels through Classify.
        var fromFiles = classifier.ClassifyFiles(new[] { path }, new[] { "cat", "dog" });
        var fromPixels = classifier.Classify(batch.Pixels, new[] { "cat", "dog" });
        Assert.That(fromFiles[0].Probabilities, Is.EqualTo(fromPixels[0].Probabilities).Within(1e-6));

        var bad = Path.Combine(_directory, "bad.png");
        File.WriteAllText(bad, "not an image");
        var e = Assert.Throws<InvalidDataException>(() => classifier.ClassifyFiles(new[] { path, bad }, new[] { "cat", "dog" }));
        Assert.That(e!.Message, Does.Contain(bad));
    }

    [Test]
    public void ZeroShotCommandPrintsTheProbabilitiesOfTheLoadedWeights()
    {
        manual_seed(9);
        using var model = ModelCatalog.Default.Create<ClipModel>("clip-tiny");
        string weights = SafetensorsBuilder.Write(Path.Combine(_directory, "clip-tiny.safetensors"), model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));
        string red = WriteImage("red.png", 40, 50, new SKColor(220, 20, 20));
        string blue = WriteImage("blue.png", 32, 32, new SKColor(20, 20, 220));

        var (code, output, error) = CliRunner.Run("zero-shot", "--model", "clip-tiny", "--weights", weights, "--image", red, blue,
            "--labels", "cat, dog,car", "--template", "a photo of a {}.", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(output);
        var results = json.RootElement.GetProperty("images").EnumerateArray().ToList();
        Assert.That(results, Has.Count.EqualTo(2));

        var classifier = new ClipZeroShotClassifier(model, ClipBpeTokenizer.Default());
        using var pixels = new ClipImageProcessor(32).ProcessFiles(new[] { red, blue });
        var expected = classifier.Classify(pixels.Pixels, new[] { "cat", "dog", "car" });
        for (int i = 0; i < 2; i++)
        {
            var probabilities = results[i].GetProperty("probabilities").EnumerateArray().ToList();
            Assert.That(probabilities.Select(p => p.GetProperty("label").GetString()), Is.EqualTo(new[] { "cat", "dog", "car" }));
            var values = probabilities.Select(p => p.GetProperty("probability").GetSingle()).ToArray();
            Assert.That(values.Sum(), Is.EqualTo(1f).Within(1e-4));
            Assert.That(values, Is.EqualTo(expected[i].Probabilities).Within(1e-5));
        }

        (code, output, error) = CliRunner.Run("zero-shot", "--model", "clip-tiny", "--weights", weights, "--image", red, "--labels", "cat,dog", "--top-k", "1");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain(red).And.Contain("probability"));
        Assert.That(output.Contains("cat") ^ output.Contains("dog"), Is.True, "only the best label is printed");
    }

    [Test]
    public void TheClassifierPutsTheModelInEvalModeForResNetBatchNorm()
    {
        manual_seed(5);
        using var model = new ClipModel(ClipModelTests.SmallResNet with { VocabSize = 49408 });
        model.train();
        var classifier = new ClipZeroShotClassifier(model, ClipBpeTokenizer.Default());
        Assert.That(model.training, Is.False);
        // In eval mode BatchNorm uses running statistics, so an image's result does not depend on its batch.
        var images = randn(2, 3, 64, 64);
        var labels = new[] { "cat", "dog", "car" };
        var alone = classifier.Classify(images[..1], labels);
        var together = classifier.Classify(images, labels);
        Assert.That(alone[0].Probabilities, Is.EqualTo(together[0].Probabilities).Within(1e-5));
    }

    [Test]
    public void ZeroShotCommandWithTwoTemplatesEqualsClassifyAndListsEveryLabel()
    {
        manual_seed(11);
        using var model = ModelCatalog.Default.Create<ClipModel>("clip-tiny");
        string weights = SafetensorsBuilder.Write(Path.Combine(_directory, "clip-tiny.safetensors"), model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));
        string green = WriteImage("green.png", 48, 40, new SKColor(20, 200, 40));
        string[] templates = ["a photo of a {}.", "a blurry drawing of the {}."];
        string[] labels = ["cat", "dog", "car", "tree"];

        var (code, output, error) = CliRunner.Run("zero-shot", "--model", "clip-tiny", "--weights", weights, "--image", green,
            "--labels", string.Join(",", labels), "--template", templates[0], "--template", templates[1], "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(output);
        Assert.That(json.RootElement.GetProperty("templates").EnumerateArray().Select(t => t.GetString()), Is.EqualTo(templates));
        var classifier = new ClipZeroShotClassifier(model, ClipBpeTokenizer.Default());
        using var pixels = classifier.ImageProcessor.ProcessFiles(new[] { green });
        var expected = classifier.Classify(pixels.Pixels, labels, templates)[0].Probabilities;
        var oneTemplate = classifier.Classify(pixels.Pixels, labels, templates[..1])[0].Probabilities;
        Assert.That(expected.Zip(oneTemplate, (a, b) => Math.Abs(a - b)).Max(), Is.GreaterThan(1e-6f), "the second template changes the result");
        var printed = json.RootElement.GetProperty("images")[0].GetProperty("probabilities").EnumerateArray()
            .Select(p => p.GetProperty("probability").GetSingle()).ToArray();
        Assert.That(printed, Is.EqualTo(expected).Within(1e-5));

        (code, output, error) = CliRunner.Run("zero-shot", "--model", "clip-tiny", "--weights", weights, "--image", green,
            "--labels", string.Join(",", labels), "--template", templates[0], "--template", templates[1]);
        Assert.That(code, Is.EqualTo(0), error);
        var rows = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).SkipWhile(l => !l.StartsWith("label")).Skip(2).ToList();
        Assert.That(rows.Select(r => r.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]), Is.EquivalentTo(labels), "without --top-k every label is listed");
        var values = rows.Select(r => float.Parse(r.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.That(values, Is.Ordered.Descending);
        Assert.That(values.Sum(), Is.EqualTo(1f).Within(1e-3));
    }

    [Test]
    public void ZeroShotCommandErrorsAreOneLine()
    {
        string red = WriteImage("red.png", 8, 8, SKColors.Red);
        var (code, _, error) = CliRunner.Run("zero-shot", "--model", "bert-tiny", "--image", red, "--labels", "a,b");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.StartWith("modelzoo: error: 'bert-tiny' is a bert model"));
        (code, _, error) = CliRunner.Run("zero-shot", "--model", "clip-tiny", "--image", Path.Combine(_directory, "missing.jpg"), "--labels", "a,b");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("missing.jpg"));
        (code, _, error) = CliRunner.Run("zero-shot", "--model", "clip-tiny", "--weights", Path.Combine(_directory, "none.pt"), "--image", red, "--labels", "a,b");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("none.pt"));
    }
}
