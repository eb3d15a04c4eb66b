using ModelZoo.Evaluation.Data;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Common;
using ModelZoo.Tests.Support;
using ModelZoo.Training;
using ModelZoo.Training.Tasks;
using NUnit.Framework;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Pretraining;

public class ClipPretrainingTests
{
    string _dir = "";
    int _threads;

    [SetUp]
    public void SetUp()
    {
        _dir = TestPaths.TempDirectory();
        _threads = get_num_threads();
        set_num_threads(1);
    }

    [TearDown]
    public void TearDown()
    {
        set_num_threads(_threads);
        Directory.Delete(_dir, true);
    }

    static ClipDualEncoder ClipTiny(long seed) => (ClipDualEncoder)new ClipTaskModels().CreateRetrieval(new TaskModelRequest
    {
        Model = "clip-tiny", Preset = ModelCatalog.Default.Get("clip-tiny"), Seed = seed,
    });

    static TrainerOptions Options(string? output = null) => new()
    {
        LearningRate = 1e-3, BatchSize = 8, MaxSteps = 40, WarmupSteps = 2, Decay = DecayKind.Constant, Seed = 3, Progress = false,
        OutputDirectory = output, EvalEvery = 20,
    };

    [Test]
    public void InfoNceFallsOnSyntheticAlignedPairsAndRecallIsMeasured()
    {
        var data = SyntheticData.CaptionedImages(16, seed: 1);
        using var clip = ClipTiny(seed: 2);
        var task = new ContrastiveImageTextPretraining(clip, data, data);
        var result = new Trainer(Options()).Fit(task);

        double first = result.Losses.Take(5).Average(), last = result.Losses.TakeLast(5).Average();
        TestContext.Out.WriteLine($"clip-tiny symmetric InfoNCE {first:0.000} -> {last:0.000}");
        Assert.That(first, Is.EqualTo(Math.Log(8)).Within(0.6), "a random model starts near ln(batch)");
        Assert.That(last, Is.LessThan(first - 0.8));
        Assert.That(result.Evaluations.Select(e => e.Step), Is.EqualTo(new[] { 20, 40 }), "evaluated every N steps and at the end");
        var metrics = result.Evaluations[^1].Metrics;
        Assert.That(metrics.Keys, Is.SupersetOf(new[] { "txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean", "logit_scale" }));
        Assert.That(metrics["img_r1"], Is.GreaterThan(2.0 / 16), "image retrieval above chance (1/16) on the pairs it learned");
        Assert.That(metrics["logit_scale"], Is.LessThanOrEqualTo(100).And.GreaterThan(1));
    }

    [Test]
    public void LossIsClipsSymmetricInfoNceWithTheClampedLearnableScale()
    {
        var data = SyntheticData.CaptionedImages(4, seed: 4);
        using var clip = ClipTiny(seed: 5);
        clip.Module.train();
        var task = new ContrastiveImageTextPretraining(clip, data, Array.Empty<CaptionItem>());
        var scale = task.LogitScaleParameter!;
        using (no_grad()) scale.fill_(6.0);          // above ln 100
        var context = new TrainingContext();
        var seen = context.Random.State;
        float loss = task.Loss(new[] { 0, 1, 2, 3 }, context).item<float>();
        Assert.That(scale.item<float>(), Is.EqualTo((float)Math.Log(100)).Within(1e-6), "clamped in place before the step");

        // The same loss by hand: one caption per image (the task's random pick), logits 100 x cos(image, text).
        context.Random.State = seen;
        var captions = Enumerable.Range(0, 4).Select(i => data[i].Captions[context.Random.NextInt(2)]).ToList();
        using var _ = no_grad();
        var image = clip.EncodeImages(data.Select(d => d.Image).ToList());
        var text = clip.EncodeTexts(captions);
        var logits = 100 * image.matmul(text.t());
        var expected = (nn.functional.cross_entropy(logits, arange(4)) + nn.functional.cross_entropy(logits.t(), arange(4))) / 2;
        Assert.That(loss, Is.EqualTo(expected.item<float>()).Within(1e-4));

        using (no_grad()) scale.fill_(-0.5);
        task.Loss(new[] { 0, 1 }, context);
        Assert.That(scale.item<float>(), Is.EqualTo(0f), "and never below a scale of 1");

        var (decay, noDecay) = ParameterSelection.WeightDecayGroups(clip.Module);
        Assert.That(noDecay.Select(p => p.Name), Does.Contain("logit_scale"), "no weight decay on the temperature");
        Assert.That(decay.Select(p => p.Name), Does.Not.Contain("logit_scale"));
    }

    [Test]
    public void AResumedRunReproducesTheUninterruptedLossesBitForBit()
    {
        // 13 images in batches of 4: every epoch ends with a lone image (which borrows a random partner), captions are
        // picked at random, the data is reshuffled each epoch; the run crosses epochs before and after the resume.
        var data = SyntheticData.CaptionedImages(13, seed: 6);
        var options = Options() with { BatchSize = 4, MaxSteps = 10, CheckpointEvery = 4, KeepCheckpoints = 5, EvalEvery = 5, WeightDecay = 0.1 };
        string full = Path.Combine(_dir, "full");
        List<double> uninterrupted;
        float[] finalWeights;
        using (var clip = ClipTiny(seed: 7))
        {
            uninterrupted = new Trainer(options with { OutputDirectory = full }).Fit(new ContrastiveImageTextPretraining(clip, data, data.Take(5).ToList())).Losses.ToList();
            finalWeights = Flatten(clip.Module);
        }
        Assert.That(uninterrupted.Distinct().Count(), Is.EqualTo(10));

        using var fresh = ClipTiny(seed: 99);           // another process: different initial weights on purpose
        var resumed = new Trainer(options with { OutputDirectory = Path.Combine(_dir, "resumed") })
            .Fit(new ContrastiveImageTextPretraining(fresh, data, data.Take(5).ToList()), Path.Combine(full, "checkpoints", "step-00000004"));
        Assert.That(resumed.Losses.Count, Is.EqualTo(10));
        for (int i = 0; i < 10; i++)
            Assert.That(BitConverter.DoubleToInt64Bits(resumed.Losses[i]), Is.EqualTo(BitConverter.DoubleToInt64Bits(uninterrupted[i])), $"loss of step {i + 1}");
        Assert.That(Flatten(fresh.Module), Is.EqualTo(finalWeights), "final weights are bit-identical");
    }

    [Test]
    public void ReadsImageFoldersWithCaptionFilesAndSaysWhatIsMissing()
    {
        string folder = Path.Combine(_dir, "images");
        Directory.CreateDirectory(Path.Combine(folder, "sub"));
        WritePng(Path.Combine(folder, "b.png"), SKColors.Red);
        File.WriteAllText(Path.Combine(folder, "b.txt"), "a red square\n\n  the square is red  \n");
        WritePng(Path.Combine(folder, "sub", "a.png"), SKColors.Blue);
        File.WriteAllText(Path.Combine(folder, "sub", "a.txt"), "a blue square");
        var items = ContrastiveImageTextPretraining.ReadData(folder);
        Assert.That(items.Select(i => Path.GetFileName(i.Image.Path)), Is.EqualTo(new[] { "b.png", "a.png" }), "ordinal path order");
        Assert.That(items[0].Captions, Is.EqualTo(new[] { "a red square", "the square is red" }));

        // It trains from files (CLIP preprocessing of image files).
        using var clip = ClipTiny(seed: 8);
        var result = new Trainer(Options() with { MaxSteps = 2, BatchSize = 2 }).Fit(new ContrastiveImageTextPretraining(clip, items, items));
        Assert.That(result.Losses.All(double.IsFinite), Is.True);
        Assert.That(result.Evaluations[^1].Metrics["img_r10"], Is.EqualTo(1.0), "two images: both in the top 10");

        WritePng(Path.Combine(folder, "c.png"), SKColors.Green);
        var e = Assert.Throws<InvalidDataException>(() => ContrastiveImageTextPretraining.ReadData(folder));
        Assert.That(e!.Message, Does.Contain("c.png").And.Contain("c.txt"));
        var missing = Assert.Throws<FileNotFoundException>(() => ContrastiveImageTextPretraining.ReadData(Path.Combine(_dir, "nope.json")));
        Assert.That(missing!.Message, Does.Contain("nope.json"));
    }

    [Test]
    public void RepeatedStepsDoNotGrowMemory()
    {
        var data = SyntheticData.CaptionedImages(4, seed: 9);
        using var clip = ClipTiny(seed: 10);
        clip.Module.train();
        var task = new ContrastiveImageTextPretraining(clip, data, Array.Empty<CaptionItem>());
        var context = new TrainingContext();
        MemoryGrowth.AssertSteady(warmup: 20, passes: 60, pass: () =>
        {
            using var scope = NewDisposeScope();
            task.Loss(new[] { 0, 1, 2, 3 }, context).backward();
            clip.Module.zero_grad();
        });
    }

    static void WritePng(string path, SKColor colour)
    {
        using var bitmap = new SKBitmap(40, 30);
        bitmap.Erase(colour);
        using var image = SKImage.FromBitmap(bitmap);
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        using var file = File.Create(path);
        png.SaveTo(file);
    }

    static float[] Flatten(nn.Module model) =>
        model.parameters().SelectMany(p => p.detach().cpu().to(ScalarType.Float32).data<float>().ToArray()).ToArray();
}
