using System.Diagnostics;
using ModelZoo.Evaluation.Data;
using ModelZoo.Evaluation.Retrieval;
using ModelZoo.Evaluation.Vqa;
using ModelZoo.Training.Tasks;
using static TorchSharp.torch;

namespace ModelZoo.Training.Demo;

/// <summary>How big the demo runs.</summary>
public sealed record DemoOptions
{
    public long Seed { get; init; } = 7;
    public int TrainImages { get; init; } = 2000;
    public int TestImages { get; init; } = 300;
    public int RetrievalTestImages { get; init; } = 100;
    public int VqaSteps { get; init; } = 1500;
    public int RetrievalSteps { get; init; } = 600;
    public int BatchSize { get; init; } = 64;
    public double LearningRate { get; init; } = 1e-3;
    public DemoModelConfig Model { get; init; } = new();
    public string? OutputDirectory { get; init; }
    public bool Progress { get; init; } = true;
    /// <summary>Start the VQA model from the trained dual encoder's patch embedding, image layers and word embeddings.</summary>
    public bool InitializeVqaFromRetrieval { get; init; } = true;

    /// <summary>The test-sized run: a few hundred images and steps, well under a minute.</summary>
    public static DemoOptions Quick { get; } = new()
    {
        TrainImages = 800, TestImages = 150, RetrievalTestImages = 50, VqaSteps = 250, RetrievalSteps = 150, BatchSize = 48,
        LearningRate = 2e-3,
    };
}

/// <summary>What the demo measured.</summary>
public sealed record DemoReport(
    VqaEvaluation Vqa, VqaEvaluation MajorityBaseline, string MajorityAnswer, int VqaTestQuestions,
    RetrievalRecall Retrieval, RetrievalRecall Chance, int RetrievalTestImages, int RetrievalTestCaptions,
    TrainingResult VqaTraining, TrainingResult RetrievalTraining, string? LearningCurvePath, TimeSpan Elapsed, TimeSpan CpuTime);

/// <summary>
/// The built-in demo: makes the shapes data set, fine-tunes a small one-stream VQA model (ViLT-style patches) and a
/// small dual encoder (CLIP-style) on it with the library's trainer, and measures both on held-out images with the
/// official VQA accuracy and retrieval recall, beside the majority-answer and chance baselines.
/// </summary>
public static class DemoRunner
{
    /// <summary>Writes the data set of a run (training and held-out VQA images) in the official formats, without training.</summary>
    public static IReadOnlyList<string> WriteData(DemoOptions options, string directory)
    {
        var world = new ShapesWorld(options.Model.ImageSize);
        return ShapesDataset.Write(directory, world.Generate(options.TrainImages, options.Seed, firstId: 1_000_000),
            world.Generate(options.TestImages, options.Seed + 1, firstId: 2_000_000));
    }

    public static DemoReport Run(DemoOptions options, Action<string>? log = null)
    {
        log ??= _ => { };
        var clock = Stopwatch.StartNew();
        var cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
        var world = new ShapesWorld(options.Model.ImageSize);
        log($"making the shapes data set: {options.TrainImages} training images, {options.TestImages} held-out VQA images, {options.RetrievalTestImages} held-out retrieval images");
        var train = world.Generate(options.TrainImages, options.Seed, firstId: 1_000_000);
        var test = world.Generate(options.TestImages, options.Seed + 1, firstId: 2_000_000);
        var retrievalTest = world.Generate(options.RetrievalTestImages, options.Seed + 2, firstId: 3_000_000);

        var vocabulary = WordVocabulary.Build(train.SelectMany(s => s.Questions.Select(q => q.Question).Concat(s.Captions)));
        var answers = AnswerVocabulary.Build(train.SelectMany(s => s.Questions));
        var trainItems = train.SelectMany(s => s.Questions.Select(q => new VqaItem(q, VisualInput.FromPixels(s.Pixels)))).ToList();
        var testItems = test.SelectMany(s => s.Questions.Select(q => new VqaItem(q, VisualInput.FromPixels(s.Pixels)))).ToList();

        // Retrieval first: the dual encoder, trained contrastively on the training images' captions.
        manual_seed(options.Seed + 1);
        using var clip = new DemoClip(options.Model, vocabulary);
        var captionTrain = train.Select(s => new CaptionItem(VisualInput.FromPixels(s.Pixels), s.Captions)).ToList();
        var captionTest = retrievalTest.Select(s => new CaptionItem(VisualInput.FromPixels(s.Pixels), s.Captions)).ToList();
        var retrievalTask = new RetrievalTraining(clip, captionTrain, captionTest);
        var retrievalTraining = new Trainer(TrainerOptionsFor(options, options.RetrievalSteps, "retrieval", Path.Combine(options.OutputDirectory ?? "", "retrieval")))
            .Fit(retrievalTask);
        var recall = RetrievalTraining.EvaluateRecall(clip, captionTest);
        int captions = captionTest.Sum(c => c.Captions.Count);
        var chance = ChanceRecall(captionTest.Count, captions, captionTest[0].Captions.Count);

        // VQA: the one-stream model, fine-tuned from the dual encoder's towers (as ViLT starts from a pre-trained ViT).
        manual_seed(options.Seed);
        using var vqaModel = new DemoViltVqa(options.Model, vocabulary, answers.Count);
        if (options.InitializeVqaFromRetrieval)
            log($"the VQA model starts from the dual encoder: {vqaModel.InitializeFrom(clip)} tensors (patch embedding, image transformer, word embeddings)");
        var vqaTask = new VqaFineTuning(vqaModel, answers, trainItems, testItems.Take(Math.Min(testItems.Count, 300)).ToList());
        var vqaTraining = new Trainer(TrainerOptionsFor(options, options.VqaSteps, "vqa", Path.Combine(options.OutputDirectory ?? "", "vqa"))).Fit(vqaTask);
        var predictions = VqaFineTuning.Predict(vqaModel, answers, testItems);
        var testExamples = testItems.Select(t => t.Example).ToList();
        var vqa = VqaFineTuning.Score(testExamples, predictions);
        string majority = train.SelectMany(s => s.Questions).GroupBy(q => AnswerVocabulary.Key(q.MultipleChoiceAnswer!))
            .OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).First().Key;
        var baseline = VqaFineTuning.Score(testExamples, testExamples.Select(_ => majority).ToList());

        string? curve = null;
        if (options.OutputDirectory is not null)
        {
            curve = Path.Combine(options.OutputDirectory, "learning-curve.png");
            LearningCurve.Write(curve, new[]
            {
                new LearningCurve.Series("VQA (BCE x answers)", vqaTraining.Losses, vqaTraining.Evaluations.Select(e => (e.Step, e.Metrics["vqa_accuracy"] / 100)).ToList(), "VQA accuracy"),
                new LearningCurve.Series("retrieval (contrastive)", retrievalTraining.Losses, retrievalTraining.Evaluations.Select(e => (e.Step, e.Metrics["img_r1"])).ToList(), "image R@1"),
            });
        }
        return new DemoReport(vqa, baseline, majority, testExamples.Count, recall, chance, captionTest.Count, captions,
            vqaTraining, retrievalTraining, curve, clock.Elapsed, Process.GetCurrentProcess().TotalProcessorTime - cpuStart);
    }

    static TrainerOptions TrainerOptionsFor(DemoOptions options, int steps, string label, string output) => new()
    {
        LearningRate = options.LearningRate, WeightDecay = 0.01, BatchSize = options.BatchSize, MaxSteps = steps, WarmupRatio = 0.1,
        Decay = DecayKind.Cosine, MaxGradNorm = 1.0, EvalEvery = Math.Max(1, steps / 5), Seed = options.Seed, Label = label,
        Progress = options.Progress, LogEvery = Math.Max(1, steps / 10), OutputDirectory = options.OutputDirectory is null ? null : output,
        CheckpointEvery = 0, KeepCheckpoints = 1,
    };

    /// <summary>
    /// Expected recall of random scores: image retrieval R@K = K / images; text retrieval R@K = the chance that one
    /// of an image's c captions is among K drawn from all captions without replacement.
    /// </summary>
    public static RetrievalRecall ChanceRecall(int images, int captions, int captionsPerImage)
    {
        double Image(int k) => Math.Min(1.0, (double)k / images);
        double Text(int k)
        {
            double miss = 1;
            for (int i = 0; i < Math.Min(k, captions); i++) miss *= (double)(captions - captionsPerImage - i) / (captions - i);
            return 1 - Math.Max(0, miss);
        }
        return new RetrievalRecall(Text(1), Text(5), Text(10), Image(1), Image(5), Image(10));
    }
}
