using System.Text.Json;
using ModelZoo.Evaluation.Data;
using ModelZoo.Training.Demo;
using ModelZoo.Tests.Support;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Demo;

public class DemoTests
{
    string _dir = "";

    [SetUp] public void SetUp() => _dir = TestPaths.TempDirectory();
    [TearDown] public void TearDown() => Directory.Delete(_dir, true);

    [Test]
    public void ShapesWorldIsSeededAndAnswersMatchTheScene()
    {
        var world = new ShapesWorld(48);
        var a = world.Generate(30, seed: 3);
        var b = world.Generate(30, seed: 3);
        Assert.That(a.Select(s => s.Questions.Select(q => q.Question + "=" + q.MultipleChoiceAnswer)), Is.EqualTo(b.Select(s => s.Questions.Select(q => q.Question + "=" + q.MultipleChoiceAnswer))));
        Assert.That(a[0].Pixels.equal(b[0].Pixels).all().item<bool>(), Is.True, "same pixels from the same seed");
        Assert.That(world.Generate(30, seed: 4).Select(s => s.Captions[0]), Is.Not.EqualTo(a.Select(s => s.Captions[0])));

        foreach (var scene in a)
        {
            Assert.That(scene.Pixels.shape, Is.EqualTo(new long[] { 3, 48, 48 }));
            Assert.That(scene.Captions, Has.Count.EqualTo(5));
            Assert.That(scene.Shapes.Select(s => s.X), Is.Ordered, "shapes are listed left to right");
            foreach (var q in scene.Questions)
            {
                Assert.That(q.Answers, Has.Count.EqualTo(10));
                string answer = q.MultipleChoiceAnswer!;
                if (q.Question.StartsWith("how many shapes")) Assert.That(answer, Is.EqualTo(scene.Shapes.Count.ToString()));
                if (q.Question.StartsWith("what color is the shape left of the "))
                {
                    string kind = q.Question["what color is the shape left of the ".Length..].TrimEnd('?');
                    int index = scene.Shapes.ToList().FindIndex(s => s.Kind == kind);
                    Assert.That(answer, Is.EqualTo(scene.Shapes[index - 1].Color), q.Question);
                }
                // Most of the ten annotators agree once answers are normalised as the official metric does.
                Assert.That(q.Answers.Count(x => AnswerVocabulary.Key(x) == answer), Is.GreaterThanOrEqualTo(5));
            }
        }
        // The colour of a drawn shape is visible at its centre.
        var first = a.SelectMany(s => s.Shapes.Select(shape => (s, shape))).First(p => p.shape.Color == "red");
        var centre = first.s.Pixels[.., (int)first.shape.Y, (int)first.shape.X].data<float>().ToArray();
        Assert.That(centre[0], Is.GreaterThan(0.7f));
        Assert.That(centre[2], Is.LessThan(0.4f));
    }

    [Test]
    public void QuickDemoBeatsItsBaselinesAndWritesTheLearningCurve()
    {
        var options = DemoOptions.Quick with { OutputDirectory = _dir, Progress = false };
        int threads = get_num_threads();
        set_num_threads(1);
        DemoReport report;
        try { report = DemoRunner.Run(options); }
        finally { set_num_threads(threads); }

        TestContext.Out.WriteLine($"VQA {report.Vqa.Overall} vs majority {report.MajorityBaseline.Overall}; img R@1 {report.Retrieval.ImgR1} vs chance {report.Chance.ImgR1}; " +
                                  $"txt R@1 {report.Retrieval.TxtR1}; {report.Elapsed.TotalSeconds:0} s");
        Assert.That(report.Vqa.Overall, Is.GreaterThan(2 * report.MajorityBaseline.Overall + 10), "VQA accuracy far above the majority answer");
        Assert.That(report.Retrieval.ImgR1, Is.GreaterThan(5 * report.Chance.ImgR1), "image R@1 far above chance");
        Assert.That(report.Retrieval.TxtR1, Is.GreaterThan(5 * report.Chance.TxtR1), "text R@1 far above chance");

        var png = File.ReadAllBytes(report.LearningCurvePath!);
        Assert.That(png.Take(8), Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), "a PNG file");
        Assert.That(File.ReadAllLines(Path.Combine(_dir, "vqa", "metrics.jsonl")), Has.Length.GreaterThan(options.VqaSteps));
    }

    [Test]
    public void DemoModelsAreDeterministicInEvalModeAndRandomInTraining()
    {
        // Catches dropout modules that eval() does not reach (a PreNormTransformerLayer's residual dropout was one).
        using var scope = NewDisposeScope();
        var scenes = new ShapesWorld(48).Generate(4, seed: 1);
        var vocabulary = WordVocabulary.Build(scenes.SelectMany(s => s.Captions));
        using var clip = new DemoClip(new DemoModelConfig { Dropout = 0.5 }, vocabulary);
        var images = scenes.Select(s => ModelZoo.Training.Tasks.VisualInput.FromPixels(s.Pixels)).ToList();
        clip.eval();
        using (no_grad())
        {
            var a = clip.EncodeImages(images);
            var b = clip.EncodeImages(images);
            Assert.That(a.equal(b).all().item<bool>(), Is.True, "eval mode: no dropout");
            clip.train();
            Assert.That(clip.EncodeImages(images).equal(a).all().item<bool>(), Is.False, "train mode: dropout is active");
        }
    }

    [Test]
    public void RepeatedPredictionDoesNotGrowMemory()
    {
        var scenes = new ShapesWorld(48).Generate(4, seed: 2);
        var vocabulary = WordVocabulary.Build(scenes.SelectMany(s => s.Questions.Select(q => q.Question).Concat(s.Captions)));
        var answers = AnswerVocabulary.Build(scenes.SelectMany(s => s.Questions));
        using var vqa = new DemoViltVqa(new DemoModelConfig(), vocabulary, answers.Count);
        using var clip = new DemoClip(new DemoModelConfig(), vocabulary);
        var items = scenes.SelectMany(s => s.Questions.Select(q => new ModelZoo.Training.Tasks.VqaItem(q, ModelZoo.Training.Tasks.VisualInput.FromPixels(s.Pixels)))).ToList();
        var captions = scenes.Select(s => new ModelZoo.Training.Tasks.CaptionItem(ModelZoo.Training.Tasks.VisualInput.FromPixels(s.Pixels), s.Captions)).ToList();
        void Pass()
        {
            ModelZoo.Training.Tasks.VqaFineTuning.Predict(vqa, answers, items, batchSize: 16);
            ModelZoo.Training.Tasks.RetrievalTraining.EvaluateRecall(clip, captions, batchSize: 16);
        }
        for (int i = 0; i < 60; i++) Pass();   // the allocator settles after some 60 passes
        GC.Collect();
        long before = ModelZoo.Attention.Diagnostics.ProcessMemory.ResidentBytes();
        for (int i = 0; i < 60; i++) Pass();
        GC.Collect();
        long after = ModelZoo.Attention.Diagnostics.ProcessMemory.ResidentBytes();
        Assume.That(before, Is.GreaterThan(0), "no /proc here");
        Assert.That((after - before) / (double)before, Is.LessThan(0.03), $"RSS {before / 1e6:0.0} MB -> {after / 1e6:0.0} MB");
    }

    [Test]
    public void ChanceRecallMatchesTheCountingArgument()
    {
        var chance = DemoRunner.ChanceRecall(images: 100, captions: 500, captionsPerImage: 5);
        Assert.That(chance.ImgR1, Is.EqualTo(0.01));
        Assert.That(chance.ImgR10, Is.EqualTo(0.10));
        Assert.That(chance.TxtR1, Is.EqualTo(0.01).Within(1e-12));             // 5 of 500 captions
        Assert.That(chance.TxtR5, Is.EqualTo(1 - 495.0 / 500 * 494 / 499 * 493 / 498 * 492 / 497 * 491 / 496).Within(1e-12));
    }
}
