using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Clip;
using ModelZoo.Models.Vatt;
using ModelZoo.Tests.Support;
using NUnit.Framework;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Pretraining;

/// <summary>`modelzoo pretrain` end to end: CLIP on the demo's written data, VATT on clips the test writes.</summary>
public class PretrainCliTests
{
    static string _data = "";
    int _threads;

    [OneTimeSetUp]
    public static void WriteData()
    {
        _data = DemoDataSet.WriteTemp();
    }

    [OneTimeTearDown] public static void Clean() => Directory.Delete(_data, true);

    [SetUp] public void OneThread() { _threads = get_num_threads(); set_num_threads(1); }
    [TearDown] public void Restore() => set_num_threads(_threads);

    static string[] ClipArgs(string output, params string[] more) => new[]
    {
        "pretrain", "--model", "clip-tiny", "--task", "clip-contrastive", "--train", Path.Combine(_data, "retrieval-train.json"),
        "--val", Path.Combine(_data, "retrieval-val.json"), "--out", output, "--steps", "6", "--batch-size", "16", "--lr", "1e-3",
        "--eval-every", "3", "--checkpoint-every", "3", "--json",
    }.Concat(more).ToArray();

    static List<JsonElement> Log(string output) => File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    [Test]
    public void ClipContrastiveOnTheDemoDataResumesExactlyAndEvaluates()
    {
        string first = Path.Combine(_data, "clip-pretrain");
        var (code, stdout, error) = CliRunner.Run(ClipArgs(first));
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        Assert.That(root.GetProperty("steps").GetInt32(), Is.EqualTo(6));
        Assert.That(root.GetProperty("train_examples").GetInt32(), Is.EqualTo(800), "one example per training image");
        Assert.That(root.GetProperty("img_r10").GetDouble(), Is.InRange(0, 1));
        Assert.That(root.GetProperty("logit_scale").GetDouble(), Is.InRange(1, 100));
        foreach (var file in new[] { "model.safetensors", "task.json", "metrics.jsonl", "checkpoints/step-00000003", "checkpoints/step-00000006" })
            Assert.That(File.Exists(Path.Combine(first, file)) || Directory.Exists(Path.Combine(first, file)), file);
        var log = Log(first);
        Assert.That(log.Count(r => r.TryGetProperty("loss", out _)), Is.EqualTo(6));
        Assert.That(log.Where(r => r.TryGetProperty("eval", out _)).Select(r => r.GetProperty("step").GetInt32()), Is.EqualTo(new[] { 3, 6 }));
        Assert.That(error, Does.Contain("clip-contrastive").And.Contain("6/6"), "the progress bar");

        // Resumed from step 3 in another folder: steps 4 to 6 are bit-identical.
        string resumed = Path.Combine(_data, "clip-resumed");
        (code, stdout, error) = CliRunner.Run(ClipArgs(resumed, "--resume", Path.Combine(first, "checkpoints", "step-00000003")));
        Assert.That(code, Is.EqualTo(0), error);
        using var again = JsonDocument.Parse(stdout);
        Assert.That(again.RootElement.GetProperty("final_loss").GetDouble(), Is.EqualTo(root.GetProperty("final_loss").GetDouble()));
        var losses = log.Where(r => r.TryGetProperty("loss", out _)).Select(r => r.GetProperty("loss").GetDouble()).ToList();
        var resumedLosses = Log(resumed).Where(r => r.TryGetProperty("loss", out _)).Select(r => (r.GetProperty("step").GetInt32(), r.GetProperty("loss").GetDouble())).ToList();
        Assert.That(resumedLosses, Is.EqualTo(new[] { (4, losses[3]), (5, losses[4]), (6, losses[5]) }));

        // The folder is a CLIP dual encoder: `eval --task retrieval` reproduces the recall, and the weights load as clip-tiny.
        (code, stdout, error) = CliRunner.Run("eval", "--model", "clip-tiny", "--weights", first, "--task", "retrieval", "--data", Path.Combine(_data, "retrieval-val.json"), "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var evaluated = JsonDocument.Parse(stdout);
        foreach (var key in new[] { "img_r1", "txt_r5", "img_r10" })
            Assert.That(evaluated.RootElement.GetProperty(key).GetDouble(), Is.EqualTo(root.GetProperty(key).GetDouble()), key);
        using var clip = ModelCatalog.Default.Create<ClipModel>("clip-tiny", new ModelCreateOptions { WeightsPath = Path.Combine(first, "model.safetensors") });
        Assert.That(clip.LogitScale.exp().item<float>(), Is.EqualTo(root.GetProperty("logit_scale").GetDouble()).Within(1e-4));
    }

    [Test]
    public void VattContrastiveFromAClipManifest()
    {
        string clips = Path.Combine(_data, "clips");
        string train = SyntheticData.Clips(clips, "train", concepts: 4, clipsPerConcept: 2, seed: 11);
        string val = SyntheticData.Clips(clips, "val", concepts: 4, clipsPerConcept: 1, seed: 11);
        string output = Path.Combine(_data, "vatt-pretrain");
        var (code, stdout, error) = CliRunner.Run("pretrain", "--model", "vatt-tiny", "--task", "vatt-contrastive", "--train", train, "--val", val,
            "--out", output, "--steps", "3", "--batch-size", "4", "--lr", "1e-3", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(stdout);
        Assert.That(json.RootElement.GetProperty("steps").GetInt32(), Is.EqualTo(3));
        Assert.That(json.RootElement.GetProperty("video_to_text_r1").GetDouble(), Is.InRange(0, 1));
        Assert.That(json.RootElement.GetProperty("audio_to_video_r1").GetDouble(), Is.InRange(0, 1));
        var words = File.ReadAllLines(Path.Combine(output, "words.txt"));
        Assert.That(words.Take(2), Is.EqualTo(new[] { "[PAD]", "[UNK]" }));
        using (var loaded = ModelCatalog.Default.Create<VattModel>("vatt-tiny", new ModelCreateOptions { WeightsPath = output })) { }

        // Continuing from the output folder keeps its word list; `finetune` takes the same task (one set of options).
        string next = Path.Combine(_data, "vatt-next");
        (code, stdout, error) = CliRunner.Run("finetune", "--model", "vatt-tiny", "--weights", output, "--task", "vatt-contrastive", "--train", val,
            "--out", next, "--steps", "1", "--batch-size", "4");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(stdout, Does.Contain("pre-trained vatt-tiny with vatt-contrastive: 1 steps"));
        Assert.That(File.ReadAllLines(Path.Combine(next, "words.txt")), Is.EqualTo(words));
    }

    [Test]
    public void WrongTasksAndModelsAreClearErrors()
    {
        string output = Path.Combine(_data, "never");
        var (code, _, error) = CliRunner.Run("pretrain", "--model", "clip-tiny", "--task", "retrieval", "--train", Path.Combine(_data, "retrieval-train.json"), "--out", output);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("clip-contrastive, vatt-contrastive").And.Contain("'retrieval'"));
        (code, _, error) = CliRunner.Run("pretrain", "--model", "clip-tiny", "--task", "vatt-contrastive", "--train", Path.Combine(_data, "retrieval-train.json"), "--out", output);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("needs a VATT preset"));
        (code, _, error) = CliRunner.Run("pretrain", "--model", "demo-vilt", "--task", "clip-contrastive", "--train", Path.Combine(_data, "retrieval-train.json"), "--out", output);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("dual encoder"));
        (code, _, error) = CliRunner.Run("pretrain", "--model", "vatt-tiny", "--task", "vatt-contrastive", "--train", Path.Combine(_data, "retrieval-train.json"), "--out", output);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("retrieval-train.json:1"), "a JSON manifest is not a clip manifest: the line is named");
        (code, _, error) = CliRunner.Run("finetune", "--model", "vatt-tiny", "--task", "vqa", "--train", Path.Combine(_data, "vqa-train.json"), "--out", output);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("supports vatt-contrastive"));
    }
}
