using System.Text.Json;
using ModelZoo.Evaluation.Retrieval;
using ModelZoo.Evaluation.ZeroShot;
using ModelZoo.Tests.Support;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Evaluation;

public class RetrievalMetricTests
{
    static string FixtureFile(string name) => Path.Combine(TestPaths.Fixture("retrieval-metric"), name);

    static JsonElement Expected(string section)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(FixtureFile("expected.json")));
        return document.RootElement.GetProperty(section).Clone();
    }

    [Test]
    public void FixtureRecallEqualsTheTextbookDefinition()
    {
        var ours = RetrievalMetrics.ComputeFiles(FixtureFile("scores.safetensors"), FixtureFile("mapping.json"));
        var truth = Expected("true_recall");
        const double atol = 1e-6; // the fixture's tolerance
        Assert.That(ours.TxtR1, Is.EqualTo(truth.GetProperty("txt_r1").GetDouble()).Within(atol));
        Assert.That(ours.TxtR5, Is.EqualTo(truth.GetProperty("txt_r5").GetDouble()).Within(atol));
        Assert.That(ours.TxtR10, Is.EqualTo(truth.GetProperty("txt_r10").GetDouble()).Within(atol));
        Assert.That(ours.ImgR1, Is.EqualTo(truth.GetProperty("img_r1").GetDouble()).Within(atol));
        Assert.That(ours.ImgR5, Is.EqualTo(truth.GetProperty("img_r5").GetDouble()).Within(atol));
        Assert.That(ours.ImgR10, Is.EqualTo(truth.GetProperty("img_r10").GetDouble()).Within(atol));

        // ViLT's compute_irtr_recall agrees (float32 values): ir = image retrieval, tr = text retrieval.
        var vilt = Expected("vilt_compute_irtr_recall");
        Assert.That(ours.ImgR1, Is.EqualTo(vilt.GetProperty("ir_r1").GetDouble()).Within(1e-6));
        Assert.That(ours.ImgR10, Is.EqualTo(vilt.GetProperty("ir_r10").GetDouble()).Within(1e-6));
        Assert.That(ours.TxtR5, Is.EqualTo(vilt.GetProperty("tr_r5").GetDouble()).Within(1e-6));
        Assert.That(ours.RMean, Is.EqualTo((0.55 + 0.9 + 0.95 + 0.29 + 0.54 + 0.71) / 6).Within(1e-12));
        Assert.That(ours.RSum, Is.EqualTo(55 + 90 + 95 + 29 + 54 + 71).Within(1e-9));
    }

    [Test]
    public void UnitersImageRetrievalOverCountIsNotReproduced()
    {
        var ours = RetrievalMetrics.ComputeFiles(FixtureFile("scores.safetensors"), FixtureFile("mapping.json"));
        var uniter = Expected("uniter_itm_eval");
        // Text retrieval: UNITER's script is right and we agree with it.
        Assert.That(ours.TxtR1, Is.EqualTo(uniter.GetProperty("txt_r1").GetDouble()).Within(1e-9));
        Assert.That(ours.TxtR10, Is.EqualTo(uniter.GetProperty("txt_r10").GetDouble()).Within(1e-9));
        // Image retrieval: the script counts caption rows with index < k as extra hits (0.30/0.58/0.78); we do not.
        foreach (var key in new[] { "img_r1", "img_r5", "img_r10" })
        {
            double theirs = uniter.GetProperty(key).GetDouble();
            double mine = key switch { "img_r1" => ours.ImgR1, "img_r5" => ours.ImgR5, _ => ours.ImgR10 };
            Assert.That(mine, Is.LessThan(theirs - 0.005), $"{key}: ours {mine} must be below UNITER's over-counted {theirs}");
        }
    }

    [Test]
    public void HandWorkedExample()
    {
        // 4 captions x 2 images; captions 0,1 describe image 0 and 2,3 image 1.
        var scores = new float[]
        {
            0.9f, 0.1f,  // caption 0: image 0 first (hit at 1)
            0.2f, 0.8f,  // caption 1: image 1 first (hit only at 2+)
            0.3f, 0.7f,  // caption 2: image 1 first (hit at 1)
            0.6f, 0.5f,  // caption 3: image 0 first
        };
        var mapping = RetrievalMapping.FromCaptionImages(new[] { 0, 0, 1, 1 }, 2);
        var recall = RetrievalMetrics.Compute(scores, 4, 2, mapping);
        Assert.That(recall.ImgR1, Is.EqualTo(0.5));
        Assert.That(recall.ImgR5, Is.EqualTo(1.0));
        // Image 0 ranks c0 0.9, c3 0.6, c2 0.3, c1 0.2: its c0 first, a hit. Image 1 ranks c1 0.8 (image 0's) first,
        // then its own c2 0.7: a miss at 1, a hit at 5.
        Assert.That(recall.TxtR1, Is.EqualTo(0.5));
        Assert.That(recall.TxtR5, Is.EqualTo(1.0));
    }

    [Test]
    public void MismatchedMappingIsAClearError()
    {
        var mapping = RetrievalMapping.FromCaptionImages(new[] { 0, 1 }, 2);
        var e = Assert.Throws<ArgumentException>(() => RetrievalMetrics.Compute(new float[6], 3, 2, mapping));
        Assert.That(e!.Message, Does.Contain("3 captions").And.Contain("2 txt_ids"));
    }

    [Test]
    public void ZeroShotTopKCountsLabelsAmongTheHighestLogits()
    {
        using var scope = NewDisposeScope();
        var logits = tensor(new float[,]
        {
            { 5, 1, 0, 0, 0, 0, 0 },   // label 0: top-1
            { 1, 5, 4, 3, 2, 0, -1 },  // label 6: last -> miss at 5
            { 0, 1, 2, 3, 4, 5, 6 },   // label 2: rank 4 -> top-5 hit
            { 1, 1, 1, 1, 1, 1, 1 },   // all equal, label 0 ranks first by index
        });
        var accuracy = ZeroShotClassification.Accuracy(logits, new long[] { 0, 6, 2, 0 });
        Assert.That(accuracy.Top1, Is.EqualTo(0.5));
        Assert.That(accuracy.Top5, Is.EqualTo(0.75));
    }

    [Test]
    public void ZeroShotClassWeightsAverageNormalisedPrompts()
    {
        using var scope = NewDisposeScope();
        var prompts = tensor(new float[,,] { { { 3, 0 }, { 0, 1 } }, { { -2, 0 }, { -5, 0 } } });
        var weights = ZeroShotClassification.ClassWeights(prompts);
        float s = 1 / MathF.Sqrt(2);
        Assert.That(weights.data<float>().ToArray(), Is.EqualTo(new[] { s, s, -1, 0 }).Within(1e-6));
        var logits = ZeroShotClassification.Logits(tensor(new float[,] { { 10, 10 } }), weights, scale: 1);
        Assert.That(logits[0, 0].item<float>(), Is.EqualTo(1).Within(1e-6));
    }
}
