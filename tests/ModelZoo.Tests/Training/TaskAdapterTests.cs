using ModelZoo.Evaluation.Data;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Lxmert;
using ModelZoo.Tests.Support;
using ModelZoo.Tokenization.Bert;
using ModelZoo.Training;
using ModelZoo.Training.Tasks;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Training;

public class TaskAdapterTests
{
    [Test]
    public void RegionVqaModelsFineTuneThroughTheAdapter()
    {
        // A small LXMERT over 16-d region features learns which region colour the question asks about.
        manual_seed(5);
        using var lxmert = new LxmertForQuestionAnswering(new LxmertConfig
        {
            LLayers = 1, XLayers = 1, RLayers = 1, HiddenSize = 32, NumAttentionHeads = 2, IntermediateSize = 64, VisualFeatDim = 16,
            HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0,
        }, 10);
        var tokenizer = BertWordPieceTokenizer.BaseUncased();
        using var adapter = new RegionVqaAdapter(lxmert, answers: 3, tokenizer);
        var answers = new AnswerVocabulary(new[] { "left", "right", "none" });
        var generator = new Generator(9);
        var items = Enumerable.Range(0, 48).Select(i =>
        {
            int label = i % 3;
            var features = randn(new long[] { 4, 16 }, generator: generator) * 0.1;
            features[0, label] += 3;   // the answer is written into region 0
            var boxes = tensor(new float[,] { { 0, 0, 10, 10 }, { 10, 0, 20, 10 }, { 0, 10, 10, 20 }, { 10, 10, 20, 20 } });
            var example = new VqaExample(i, i, "where is it?", Enumerable.Repeat(answers.Answers[label], 10).ToList(), "where", "other", answers.Answers[label]);
            return new VqaItem(example, new VisualInput { RegionFeatures = features, RegionBoxes = boxes, ImageWidth = 20, ImageHeight = 20 });
        }).ToList();

        var task = new VqaFineTuning(adapter, answers, items, items.Take(24).ToList());
        Assert.That(adapter.Logits(new[] { "where is it?" }, new[] { items[0].Image }).shape, Is.EqualTo(new long[] { 1, 3 }), "the first 3 of 10 outputs");
        var result = new Trainer(new TrainerOptions { LearningRate = 3e-3, BatchSize = 16, MaxSteps = 60, WarmupSteps = 2, Progress = false, Seed = 1 }).Fit(task);
        Assert.That(result.Losses.TakeLast(5).Average(), Is.LessThan(result.Losses.Take(5).Average() * 0.5));
        Assert.That(result.Evaluations[^1].Metrics["vqa_accuracy"], Is.GreaterThan(60), "chance is 33");

        Assert.Throws<ArgumentException>(() => new RegionVqaAdapter(lxmert, answers: 11, tokenizer), "more answers than the head has");
        var noRegions = VisualInput.FromPixels(zeros(3, 8, 8));
        var e = Assert.Throws<InvalidOperationException>(() => adapter.Logits(new[] { "q" }, new[] { noRegions }));
        Assert.That(e!.Message, Does.Contain("region features"));
    }

    /// <summary>A toy cross encoder: a caption names a class, an image is a noisy class vector, the match is a bilinear score.</summary>
    sealed class ToyCrossEncoder : nn.Module, ICrossEncoder
    {
        readonly TorchSharp.Modules.Embedding words;
        readonly TorchSharp.Modules.Linear image;

        public ToyCrossEncoder() : base("toy_itm")
        {
            words = nn.Embedding(8, 16);
            image = nn.Linear(8, 16);
            RegisterComponents();
        }

        public nn.Module Module => this;

        public Tensor MatchLogits(IReadOnlyList<string> captions, IReadOnlyList<VisualInput> images)
        {
            var ids = tensor(captions.Select(c => long.Parse(c.Split(' ')[1])).ToArray());
            var pixels = stack(images.Select(i => i.Pixels!.flatten()).ToArray());
            return (words.forward(ids) * image.forward(pixels)).sum(1);
        }
    }

    [Test]
    public void CrossEncodersTrainWithSampledNegativesAndScoreEveryPair()
    {
        manual_seed(2);
        using var model = new ToyCrossEncoder();
        var generator = new Generator(4);
        CaptionItem Item(int cls)
        {
            var pixels = randn(new long[] { 8 }, generator: generator) * 0.3;
            pixels[cls] += 2;
            return new CaptionItem(new VisualInput { Pixels = pixels.reshape(1, 2, 4) }, new[] { $"class {cls}", $"class {cls} again" });
        }
        var train = Enumerable.Range(0, 64).Select(i => Item(i % 8)).ToList();
        var validation = Enumerable.Range(0, 8).Select(Item).ToList();
        var before = RetrievalTraining.EvaluateRecall(model, validation);
        var task = new RetrievalTraining(model, train, validation) { Negatives = 2 };
        var result = new Trainer(new TrainerOptions { LearningRate = 5e-2, BatchSize = 16, MaxSteps = 60, WarmupSteps = 0, Progress = false, Seed = 3 }).Fit(task);
        var after = RetrievalTraining.EvaluateRecall(model, validation);
        Assert.That(result.Losses.TakeLast(5).Average(), Is.LessThan(result.Losses.Take(5).Average() * 0.5), "BCE over positives and sampled negatives goes down");
        Assert.That(after.ImgR1, Is.GreaterThan(0.8), $"image R@1 {before.ImgR1} -> {after.ImgR1} (chance 0.125)");
        Assert.That(after.TxtR1, Is.GreaterThan(0.8));
        var scores = RetrievalTraining.ScoreMatrix(model, validation, batchSize: 5, out var owner);
        Assert.That(scores.shape, Is.EqualTo(new long[] { 16, 8 }), "every caption against every image, across batch boundaries");
        Assert.That(owner, Is.EqualTo(Enumerable.Range(0, 8).SelectMany(i => new[] { i, i })));
    }

    [Test]
    public void ProvidersAreFoundByReflectionAndCoverTheCatalogsRegionVqaPresets()
    {
        Assert.That(TaskModels.Providers.Select(p => p.GetType().Name), Does.Contain("RegionVqaTaskModels").And.Contain("DemoTaskModels"));
        var supported = TaskModels.Supported().ToList();
        Assert.That(supported, Does.Contain("demo-vilt").And.Contain("demo-clip"));
        foreach (var preset in ModelCatalog.Default.List().Where(p => p.Family is "lxmert" or "vilbert" && p.Heads.Any(h => h.Contains("VQA", StringComparison.OrdinalIgnoreCase))))
            Assert.That(supported, Does.Contain(preset.Name), preset.Name);
        Assert.That(supported, Does.Not.Contain("bert-tiny"), "a text encoder answers no questions");
        var e = Assert.Throws<NotSupportedException>(() => TaskModels.Find("bert-tiny", "vqa"));
        Assert.That(e!.Message, Does.Contain("no task adapter for 'bert-tiny'"));
    }

    [Test]
    public void ManifestsReadRegionsFromABottomUpTsvFile()
    {
        var dir = TestPaths.TempDirectory();
        try
        {
            ModelZoo.Processing.Regions.RegionFeatures Regions(string id, float value) => new()
            {
                ImageId = id, ImageWidth = 640, ImageHeight = 480, BoxCount = 3, FeatureSize = 4,
                Features = Enumerable.Repeat(value, 12).ToArray(), Boxes = new float[] { 0, 0, 10, 10, 5, 5, 20, 20, 1, 2, 3, 4 },
            };
            File.WriteAllLines(Path.Combine(dir, "feats.tsv"), new[] { ModelZoo.Processing.Regions.RegionFeatureTsv.Format(Regions("7", 1)),
                ModelZoo.Processing.Regions.RegionFeatureTsv.Format(Regions("8", 2)) });
            File.WriteAllText(Path.Combine(dir, "q.json"), "{\"questions\": []}");
            File.WriteAllText(Path.Combine(dir, "m.json"), "{\"task\": \"vqa\", \"questions\": \"q.json\", \"features\": \"feats.tsv\"}");
            var manifest = TaskManifest.Load(Path.Combine(dir, "m.json"));
            var (features, boxes, width, height) = manifest.Visual(8).Regions();
            Assert.That(features.shape, Is.EqualTo(new long[] { 3, 4 }));
            Assert.That(features.sum().item<float>(), Is.EqualTo(24));
            Assert.That(boxes[1].data<float>().ToArray(), Is.EqualTo(new float[] { 5, 5, 20, 20 }));
            Assert.That((width, height), Is.EqualTo((640, 480)));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void RegionFilesRoundTripAndNameBadContent()
    {
        var dir = TestPaths.TempDirectory();
        try
        {
            var path = Path.Combine(dir, "1.safetensors");
            RegionFiles.Write(path, ones(5, 7), zeros(5, 4), 640, 480);
            var (features, boxes, width, height) = RegionFiles.Read(path);
            Assert.That(features.shape, Is.EqualTo(new long[] { 5, 7 }));
            Assert.That(boxes.shape, Is.EqualTo(new long[] { 5, 4 }));
            Assert.That((width, height), Is.EqualTo((640, 480)));
            var bad = Path.Combine(dir, "2.safetensors");
            ModelZoo.Weights.SafetensorsWriter.Write(bad, new Dictionary<string, Tensor> { ["features"] = ones(2, 3) });
            var e = Assert.Throws<InvalidDataException>(() => RegionFiles.Read(bad));
            Assert.That(e!.Message, Does.Contain(bad).And.Contain("\"boxes\""));
        }
        finally { Directory.Delete(dir, true); }
    }
}
