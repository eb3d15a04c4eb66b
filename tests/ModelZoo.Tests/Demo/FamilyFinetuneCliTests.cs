using System.Text.Json;
using ModelZoo.Evaluation.Data;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Uniter;
using ModelZoo.Tests.Support;
using ModelZoo.Training.Tasks;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Demo;

/// <summary>
/// `modelzoo finetune` then `modelzoo eval` for the one-stream families' task adapters (ViLT over images, UNITER and
/// VisualBERT over the shapes data set's region files) at their tiny presets: the folder reloads and reproduces the
/// validation numbers, and pre-trained weights with another head size start the task head afresh.
/// </summary>
public class FamilyFinetuneCliTests
{
    static string _data = "";

    [OneTimeSetUp]
    public static void WriteData()
    {
        _data = DemoDataSet.WriteTemp();
    }

    [OneTimeTearDown] public static void Clean() => Directory.Delete(_data, true);

    static JsonElement RunJson(params string[] args)
    {
        var (code, stdout, error) = CliRunner.Run(args);
        Assert.That(code, Is.EqualTo(0), $"modelzoo {string.Join(' ', args)}: {error}");
        using var json = JsonDocument.Parse(stdout);
        return json.RootElement.Clone();
    }

    static string[] Finetune(string model, string task, string output, params string[] extra) => new[]
    {
        "finetune", "--model", model, "--task", task, "--train", Path.Combine(_data, $"{task}-train.json"), "--val", Path.Combine(_data, $"{task}-val.json"),
        "--out", output, "--batch-size", "8", "--lr", "1e-3", "--json",
    }.Concat(extra).ToArray();

    static void VqaRoundTrip(string model, int steps, params string[] extra)
    {
        string output = Path.Combine(_data, $"{model}-vqa");
        var trained = RunJson(Finetune(model, "vqa", output, new[] { "--max-steps", steps.ToString(), "--val-limit", "24" }.Concat(extra).ToArray()));
        Assert.That(trained.GetProperty("examples").GetInt32(), Is.EqualTo(24), "--val-limit keeps the first 24 questions");
        foreach (var file in new[] { "model.safetensors", "task.json", "answers.json", "metrics.jsonl" })
            Assert.That(File.Exists(Path.Combine(output, file)), Is.True, file);
        var evaluated = RunJson("eval", "--model", model, "--weights", output, "--task", "vqa", "--data", Path.Combine(_data, "vqa-val.json"), "--limit", "24", "--json");
        Assert.That(evaluated.GetProperty("overall").GetDouble(), Is.EqualTo(trained.GetProperty("overall").GetDouble()), "the saved folder gives the same predictions");
        var lines = File.ReadAllLines(Path.Combine(output, "metrics.jsonl"));
        Assert.That(lines.Count(l => l.Contains("\"loss\"")), Is.GreaterThanOrEqualTo(1));
    }

    static void RetrievalRoundTrip(string model, params string[] extra)
    {
        string output = Path.Combine(_data, $"{model}-retrieval");
        var trained = RunJson(Finetune(model, "retrieval", output, new[] { "--max-steps", "4", "--val-limit", "4" }.Concat(extra).ToArray()));
        var evaluated = RunJson("eval", "--model", model, "--weights", output, "--task", "retrieval", "--data", Path.Combine(_data, "retrieval-val.json"), "--limit", "4", "--json");
        foreach (var key in new[] { "img_r1", "img_r5", "txt_r1", "txt_r5" })
            Assert.That(evaluated.GetProperty(key).GetDouble(), Is.EqualTo(trained.GetProperty(key).GetDouble()), key);
        Assert.That(trained.GetProperty("img_r10").GetDouble(), Is.EqualTo(1.0), "4 images: every one is in the top 10");
    }

    [Test]
    public void ViltVqaOverImageFiles() => VqaRoundTrip("vilt-tiny", 6);

    [Test]
    public void ViltRetrievalAsAnItmCrossEncoder() => RetrievalRoundTrip("vilt-tiny");

    [Test]
    public void UniterVqaAndRetrievalOverRegionFiles()
    {
        VqaRoundTrip("uniter-tiny-vqa", 6);
        RetrievalRoundTrip("uniter-tiny-retrieval");
    }

    [Test]
    public void VisualBertVqaOverRegionFiles()
    {
        VqaRoundTrip("visualbert-tiny", 6);
        var (code, _, error) = CliRunner.Run(Finetune("visualbert-tiny", "retrieval", Path.Combine(_data, "vb-r")));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("supports vqa"));
    }

    /// <summary>
    /// ViLBERT and LXMERT fine-tune for VQA from a pre-trained backbone file that has none of the task heads (as
    /// model_LXRT.pth lacks a VQA head of our size and pretrained_model.bin lacks vil_prediction): the heads start
    /// from their initialisation, the backbone from the file.
    /// </summary>
    [TestCase("lxmert-tiny-vqa", "answer_head.")]
    [TestCase("vilbert-tiny-multitask", "vil_prediction.")]
    public void TwoStreamVqaStartsFromABackboneWithoutHeads(string model, string head)
    {
        // ViLBERT's pretrained_model.bin has no task-token embeddings either: they are new in the multi-task model.
        string backbone = Path.Combine(_data, $"{model}-backbone.safetensors");
        manual_seed(21);
        using (var pretrained = ModelCatalog.Default.Create(model))
        {
            var all = pretrained.state_dict();
            var tensors = all.Where(p => !p.Key.StartsWith(head, StringComparison.Ordinal) && !p.Key.Contains(".task_embeddings.", StringComparison.Ordinal))
                .ToDictionary(p => p.Key, p => p.Value);
            Assert.That(tensors.Count, Is.LessThan(all.Count), "the head is left out");
            SafetensorsWriter.Write(backbone, tensors);
        }
        // A strict load of the whole preset refuses the file; the task adapter takes it.
        Assert.Throws<CheckpointException>(() => ModelCatalog.Default.Create(model, new() { WeightsPath = backbone }).Dispose());

        var preset = ModelCatalog.Default.Get(model);
        using var reader = Checkpoint.Open(backbone);
        using (var vqa = new RegionVqaTaskModels().CreateVqa(new TaskModelRequest
               {
                   Model = model, Preset = preset, WeightsPath = backbone, Answers = new AnswerVocabulary(new[] { "red", "blue" }), Seed = 5,
               }))
        {
            var parameters = vqa.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            var backboneKeys = reader.Entries.Select(e => e.Name).Where(n => n.EndsWith(".weight", StringComparison.Ordinal)).Take(20).ToList();
            Assert.That(backboneKeys, Is.Not.Empty);
            foreach (var key in backboneKeys)
            {
                using var saved = reader.Read(key);
                Assert.That(parameters[key].equal(saved).all().item<bool>(), Is.True, $"{key} loaded from the backbone file");
            }
        }
        VqaRoundTrip(model, 4, "--weights", backbone);
    }

    [Test]
    public void AGivenVocabularyIsKeptInTheFineTunedFolder()
    {
        string vocab = TestPaths.Vocab("bert-base-uncased-vocab.txt");
        string output = Path.Combine(_data, "uniter-vocab");
        RunJson(Finetune("uniter-tiny-vqa", "vqa", output, "--max-steps", "2", "--val-limit", "8", "--vocab", vocab));
        Assert.That(File.ReadAllBytes(Path.Combine(output, FineTuning.VocabFile)), Is.EqualTo(File.ReadAllBytes(vocab)));
        using var task = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, FineTuning.TaskFile)));
        Assert.That(task.RootElement.GetRawText(), Does.Contain("bert-wordpiece"));
        RunJson("eval", "--model", "uniter-tiny-vqa", "--weights", output, "--task", "vqa", "--data", Path.Combine(_data, "vqa-val.json"), "--limit", "8", "--json");
    }

    [Test]
    public void PretrainedWeightsWithAnotherHeadSizeStartTheHeadAfresh()
    {
        // A "pre-trained" uniter-tiny-vqa checkpoint with the 3129-answer head; the shapes data set has far fewer answers.
        string pretrained = Path.Combine(_data, "uniter-pretrained.safetensors");
        manual_seed(11);
        using (var model = ModelCatalog.Default.Create("uniter-tiny-vqa"))
            SafetensorsWriter.Write(pretrained, model.state_dict().ToDictionary(p => p.Key, p => p.Value));
        using var reader = Checkpoint.Open(pretrained);
        var saved = reader.Read("uniter.embeddings.word_embeddings.weight");

        var answers = new AnswerVocabulary(new[] { "red", "blue", "green" });
        var preset = ModelCatalog.Default.Get("uniter-tiny-vqa");
        using var vqa = new UniterTaskModels().CreateVqa(new TaskModelRequest
        {
            Model = preset.Name, Preset = preset, WeightsPath = pretrained, Answers = answers, Seed = 3,
        });
        var parameters = vqa.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.That(parameters["uniter.embeddings.word_embeddings.weight"].equal(saved).all().item<bool>(), Is.True, "the backbone loaded");
        Assert.That(parameters["vqa_output.3.weight"].shape, Is.EqualTo(new long[] { 3, 256 }), "a head of the vocabulary's size");
        Assert.That(vqa.Answers, Is.EqualTo(3));

        // A checkpoint that lacks part of the backbone is refused, naming the key, and loads nothing.
        string broken = Path.Combine(_data, "uniter-broken.safetensors");
        var tensors = new Dictionary<string, Tensor>();
        foreach (var entry in reader.Entries.Where(e => !e.Name.StartsWith("uniter.encoder.layer.1.", StringComparison.Ordinal)))
            tensors[entry.Name] = reader.Read(entry.Name);
        SafetensorsWriter.Write(broken, tensors);
        var e = Assert.Throws<CheckpointException>(() => new UniterTaskModels().CreateVqa(new TaskModelRequest
        {
            Model = preset.Name, Preset = preset, WeightsPath = broken, Answers = answers,
        }));
        Assert.That(e!.Message, Does.Contain("uniter.encoder.layer.1.").And.Contain("nothing was loaded"));
    }

    [Test]
    public void CasedVocabulariesMustBeGivenAndFitTheModel()
    {
        var cased = ModelCatalog.Default.Get("uniter-base-vqa");
        Assert.That(BertTaskTokenizer.IsCased(cased), Is.True);
        var e = Assert.Throws<ArgumentException>(() => BertTaskTokenizer.For(cased, null, null, 28996));
        Assert.That(e!.Message, Does.Contain("--vocab").And.Contain("cased"));

        // The bert-base-uncased vocabulary (30522) does not fit UNITER's 28996 word embeddings.
        e = Assert.Throws<ArgumentException>(() => BertTaskTokenizer.For(cased, TestPaths.Vocab("bert-base-uncased-vocab.txt"), null, 28996));
        Assert.That(e!.Message, Does.Contain("30522").And.Contain("28996"));

        // A cased vocabulary keeps case; beside the weights it is found without --vocab.
        string directory = Path.Combine(_data, "cased");
        Directory.CreateDirectory(directory);
        File.WriteAllLines(Path.Combine(directory, BertTaskTokenizer.VocabFile), new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Red", "red", "?" });
        var (tokenizer, file) = BertTaskTokenizer.For(cased, null, Path.Combine(directory, "model.safetensors"), 28996);
        Assert.That(file, Is.EqualTo(Path.Combine(directory, BertTaskTokenizer.VocabFile)));
        var ids = tokenizer.Encode("Red red?", new ModelZoo.Tokenization.EncodeOptions { AddSpecialTokens = false }).InputIds;
        Assert.That(ids, Is.EqualTo(new[] { 5, 6, 7 }));

        var uncased = ModelCatalog.Default.Get("uniter-tiny-vqa");
        Assert.That(BertTaskTokenizer.For(uncased, null, null, 30522).VocabFile, Is.Null, "the bundled bert-base-uncased vocabulary");
    }
}
