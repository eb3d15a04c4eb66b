using System.Text.Json;
using ModelZoo.Models.Bert;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Common;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Weights;

public class WeightsCliTests
{
    static string Data(string name) => Path.Combine(TestPaths.RepositoryRoot, "tests", "ModelZoo.Tests", "Weights", "Data", name);

    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    [Test]
    public void InspectListsEveryTensorOfAFixturePickleAndItsTiedStorage()
    {
        string path = Path.Combine(TestPaths.Fixture("vilbert"), "model.bin");
        var (code, output, error) = CliRunner.Run("inspect", path);
        Assert.That(code, Is.EqualTo(0), error);
        using var reader = Checkpoint.Open(path);
        Assert.That(output, Does.Contain("format:     pytorch zip pickle").And.Contain($"tensors:    {reader.Entries.Count}"));
        foreach (var entry in reader.Entries) Assert.That(output, Does.Contain(entry.Name));
        Assert.That(output, Does.Contain("pickle.shared_storage: bert.embeddings.word_embeddings.weight = cls.predictions.decoder.weight"));
    }

    [Test]
    public void InspectJsonGivesTotalsAndNonTensorEntries()
    {
        var (code, output, error) = CliRunner.Run("inspect", Data("lightning.ckpt"), "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        using var reader = Checkpoint.Open(Data("lightning.ckpt"));
        Assert.That(root.GetProperty("format").GetString(), Is.EqualTo("pytorch zip pickle"));
        Assert.That(root.GetProperty("tensorCount").GetInt32(), Is.EqualTo(reader.Entries.Count));
        Assert.That(root.GetProperty("parameters").GetInt64(), Is.EqualTo(reader.Entries.Sum(e => e.ElementCount)));
        Assert.That(root.GetProperty("tensors").GetArrayLength(), Is.EqualTo(reader.Entries.Count));
        var first = root.GetProperty("tensors")[0];
        Assert.That(first.GetProperty("name").GetString(), Is.EqualTo("model.embeddings.weight"));
        Assert.That(first.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()), Is.EqualTo(new long[] { 5, 3 }));
        Assert.That(root.GetProperty("metadata").GetProperty("hyper_parameters").GetString(),
            Does.Contain("AttributeDict object, not executed: {'lr': 0.001, 'backbone': 'vit'"));
        Assert.That(root.GetProperty("metadata").GetProperty("epoch").GetString(), Is.EqualTo("3"));
    }

    [Test]
    public void InspectExitsNonZeroOnAnUnsoundFileAndNamesIt()
    {
        var bytes = File.ReadAllBytes(Data("zip_protocol2.pt"));
        var path = Path.Combine(_directory, "broken.pt");
        File.WriteAllBytes(path, bytes[..^40]);
        var (code, output, error) = CliRunner.Run("inspect", path);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(output, Is.Empty);
        Assert.That(error, Does.StartWith("modelzoo: error: ").And.Contain("broken.pt"));

        var evil = new PickleWriter().Proto(2).EmptyDict().Mark().Str("w").Global("builtins", "eval").Str("1+1").Tuple1().Reduce().SetItems().Stop();
        path = Path.Combine(_directory, "evil.bin");
        File.WriteAllBytes(path, TorchSaveBuilder.Zip(evil.ToArray(), new Dictionary<string, byte[]>()));
        (code, _, error) = CliRunner.Run("inspect", path);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("builtins.eval").And.Contain("'w'"));
    }

    [Test]
    public void InspectCheckValuesCountsNaNAndInf()
    {
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "nan.safetensors"), new Dictionary<string, Tensor>
        {
            ["good"] = ones(3), ["bad"] = tensor(new[] { 1f, float.NaN, float.PositiveInfinity }), ["ids"] = arange(3L),
        });
        var (code, output, error) = CliRunner.Run("inspect", path, "--check-values");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain("1 tensors hold NaN or Inf: bad"));
        (code, output, _) = CliRunner.Run("inspect", path, "--check-values", "--json");
        using var json = JsonDocument.Parse(output);
        var bad = json.RootElement.GetProperty("tensors").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "bad");
        Assert.That(bad.GetProperty("nonFinite").GetInt64(), Is.EqualTo(2));
    }

    /// <summary>A bert-tiny checkpoint in the Hugging Face BertForPreTraining layout, saved with torch.save.</summary>
    (BertModel Source, string Path) HuggingFaceBertPickle()
    {
        var source = ModelCatalog.Default.Create<BertModel>("bert-tiny", new ModelCreateOptions { Seed = 11 });
        var state = source.state_dict().ToDictionary(kv => "bert." + kv.Key, kv => kv.Value);
        state["cls.predictions.bias"] = zeros(30522);
        var path = Path.Combine(_directory, "pytorch_model.bin");
        File.WriteAllBytes(path, TorchSaveBuilder.Zip(state));
        return (source, path);
    }

    static void AssertSameParameters(nn.Module expected, nn.Module actual, ScalarType? dtype = null)
    {
        var actualState = actual.state_dict();
        foreach (var (key, value) in expected.state_dict())
        {
            var want = dtype is ScalarType t && value.is_floating_point() ? value.to(t) : value;
            Assert.That(actualState[key].equal(want).all().item<bool>(), Is.True, key);
        }
    }

    [Test]
    public void ConvertWritesSafetensorsAndConfigThatLoadBackInAnyDtype()
    {
        var (source, input) = HuggingFaceBertPickle();
        using var sourceModel = source;
        var output = Path.Combine(_directory, "out", "model.safetensors");
        var (code, text, error) = CliRunner.Run("convert", input, "--model", "bert-tiny", "--out", output, "--dtype", "bf16");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(text, Does.Contain("ignored by the key map: 1").And.Contain("cls.predictions.bias").And.Contain(output));
        var config = ConfigJson.Load<BertConfig>(Path.Combine(_directory, "out", "config.json"));
        Assert.That(config.HiddenSize, Is.EqualTo(128));
        using (var reader = Checkpoint.Open(output))
        {
            Assert.That(reader.Entries.Where(e => StorageDtype.IsFloating(e.Dtype)).All(e => e.Dtype == "BF16"), Is.True);
            Assert.That(reader.Metadata["modelzoo.model"], Is.EqualTo("bert-tiny"));
            Assert.That(reader.Entries.Any(e => e.Name.StartsWith("bert.")), Is.False, "the original layout is the model's own keys");
        }
        using var loaded = ModelCatalog.Default.Create<BertModel>("bert-tiny", new ModelCreateOptions { WeightsPath = Path.Combine(_directory, "out"), Dtype = "bf16" });
        AssertSameParameters(source, loaded, ScalarType.BFloat16);
    }

    [Test]
    public void ConvertWritesTheHuggingFaceLayoutInShards()
    {
        var (source, input) = HuggingFaceBertPickle();
        using var sourceModel = source;
        var outDir = Path.Combine(_directory, "hf");
        var (code, output, error) = CliRunner.Run("convert", input, "--model", "bert-tiny", "--out", outDir + "/", "--layout", "huggingface", "--max-shard-size", "4MB", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(output);
        Assert.That(json.RootElement.GetProperty("files").GetArrayLength(), Is.GreaterThan(1));
        Assert.That(json.RootElement.GetProperty("layout").GetString(), Is.EqualTo("huggingface"));
        Assert.That(File.Exists(Path.Combine(outDir, "model.safetensors.index.json")), Is.True);
        using (var reader = Checkpoint.Open(outDir))
        {
            Assert.That(reader, Is.InstanceOf<ShardedCheckpointReader>());
            Assert.That(reader.Entries.All(e => e.Name.StartsWith("bert.")), Is.True);
        }
        using var loaded = ModelCatalog.Default.Create<BertModel>("bert-tiny", new ModelCreateOptions { WeightsPath = outDir });
        AssertSameParameters(source, loaded);
    }

    [Test]
    public void ConvertDtypeReportsEveryChange()
    {
        // bert-tiny in F32 with one F16 tensor: --dtype bf16 changes both kinds, leaves the int64 buffer alone.
        using var source = ModelCatalog.Default.Create<BertModel>("bert-tiny", new ModelCreateOptions { Seed = 12 });
        var state = source.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        state["pooler.dense.bias"] = state["pooler.dense.bias"].to(ScalarType.Float16);
        var input = SafetensorsBuilder.Write(Path.Combine(_directory, "mixed.safetensors"), state);
        int floating = state.Values.Count(t => t.is_floating_point());
        var output = Path.Combine(_directory, "bf16.safetensors");
        var (code, text, error) = CliRunner.Run("convert", input, "--model", "bert-tiny", "--out", output, "--dtype", "bf16", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using (var json = JsonDocument.Parse(text))
        {
            var changes = json.RootElement.GetProperty("report").GetProperty("dtypeChanges");
            Assert.That(changes.GetProperty("F32 -> BF16").GetInt32(), Is.EqualTo(floating - 1));
            Assert.That(changes.GetProperty("F16 -> BF16").GetInt32(), Is.EqualTo(1));
            Assert.That(changes.EnumerateObject().Count(), Is.EqualTo(2));
        }
        (code, text, error) = CliRunner.Run("convert", input, "--model", "bert-tiny", "--out", output, "--dtype", "bf16");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(text, Does.Contain($"dtype changes: F16 -> BF16 (1), F32 -> BF16 ({floating - 1})"));

        // Without --dtype nothing changes and nothing is reported.
        (code, text, error) = CliRunner.Run("convert", input, "--model", "bert-tiny", "--out", output, "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using (var json = JsonDocument.Parse(text))
            Assert.That(json.RootElement.GetProperty("report").GetProperty("dtypeChanges").EnumerateObject().Count(), Is.EqualTo(0));
    }

    [Test]
    public void ConvertOutAFolderWritesTheHuggingFaceFolderLayout()
    {
        var (source, input) = HuggingFaceBertPickle();
        using var sourceModel = source;
        foreach (var folder in new[] { Path.Combine(_directory, "bert-converted"), Path.Combine(_directory, "nested", "bert.v2") })
        {
            // A name without .safetensors (not yet existing, no trailing slash) is a folder.
            var (code, output, error) = CliRunner.Run("convert", input, "--model", "bert-tiny", "--out", folder);
            Assert.That(code, Is.EqualTo(0), error);
            Assert.That(Directory.Exists(folder), Is.True);
            Assert.That(Directory.GetFiles(folder).Select(Path.GetFileName).OrderBy(f => f), Is.EqualTo(new[] { "config.json", "model.safetensors" }));
            Assert.That(output, Does.Contain(Path.Combine(folder, "model.safetensors")));
            using var loaded = ModelCatalog.Default.Create<BertModel>("bert-tiny", new ModelCreateOptions { WeightsPath = folder });
            AssertSameParameters(source, loaded);
        }
        // An existing folder works too; a .safetensors name stays a file.
        var (c, _, e) = CliRunner.Run("convert", input, "--model", "bert-tiny", "--out", Path.Combine(_directory, "bert-converted"));
        Assert.That(c, Is.EqualTo(0), e);
        var file = Path.Combine(_directory, "single.safetensors");
        (c, _, e) = CliRunner.Run("convert", input, "--model", "bert-tiny", "--out", file);
        Assert.That(c, Is.EqualTo(0), e);
        Assert.That(File.Exists(file), Is.True);
        // An existing file that is not .safetensors is refused, not overwritten.
        var other = Path.Combine(_directory, "notes.txt");
        File.WriteAllText(other, "keep me");
        (c, _, e) = CliRunner.Run("convert", input, "--model", "bert-tiny", "--out", other);
        Assert.That(c, Is.EqualTo(1));
        Assert.That(e, Does.Contain("notes.txt"));
        Assert.That(File.ReadAllText(other), Is.EqualTo("keep me"));
    }

    [Test]
    public void InspectJsonDescribesATwoShardSetAsAWhole()
    {
        var (source, input) = HuggingFaceBertPickle();
        using var sourceModel = source;
        var folder = Path.Combine(_directory, "sharded");
        // bert-tiny is ~17 MB in F32: 10MB shards give exactly two.
        var (code, _, error) = CliRunner.Run("convert", input, "--model", "bert-tiny", "--out", folder, "--max-shard-size", "10MB");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(Directory.GetFiles(folder, "*.safetensors").Length, Is.EqualTo(2));

        string output;
        (code, output, error) = CliRunner.Run("inspect", folder, "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        var files = root.GetProperty("files").EnumerateArray().Select(f => Path.GetFileName(f.GetString()!)).ToList();
        Assert.That(files, Has.Count.EqualTo(3));
        Assert.That(files, Does.Contain("model.safetensors.index.json").And.Contain("model-00001-of-00002.safetensors").And.Contain("model-00002-of-00002.safetensors"));
        var state = source.state_dict();
        Assert.That(root.GetProperty("tensorCount").GetInt32(), Is.EqualTo(state.Count));
        Assert.That(root.GetProperty("parameters").GetInt64(), Is.EqualTo(state.Values.Sum(t => t.numel())));
        Assert.That(root.GetProperty("tensors").GetArrayLength(), Is.EqualTo(state.Count));
        Assert.That(root.GetProperty("fileBytes").GetInt64(), Is.EqualTo(Directory.GetFiles(folder).Where(f => !f.EndsWith("config.json")).Sum(f => new FileInfo(f).Length)));
    }

    [Test]
    public void ConvertRefusesACheckpointThatDoesNotFitAndWritesNothing()
    {
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "small.safetensors"), new Dictionary<string, Tensor>
        {
            ["embeddings.word_embeddings.weight"] = randn(10, 4),
        });
        var output = Path.Combine(_directory, "out.safetensors");
        var (code, _, error) = CliRunner.Run("convert", path, "--model", "bert-tiny", "--out", output);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("embeddings.word_embeddings.weight").And.Contain("[30522, 128]").And.Contain("[10, 4]"));
        Assert.That(File.Exists(output), Is.False);
        (code, _, error) = CliRunner.Run("convert", path, "--model", "bert-tiny", "--out", output, "--layout", "klingon");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("no 'klingon' layout").And.Contain("original, huggingface"));
    }

    [Test]
    public void LoadPrintsTheReport()
    {
        var (source, input) = HuggingFaceBertPickle();
        using var sourceModel = source;
        var (code, output, error) = CliRunner.Run("load", "bert-tiny", input);
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain("loaded ").And.Contain("pytorch zip pickle").And.Contain("ignored by the key map: 1").And.Contain("complete: every model tensor loaded"));

        // Non-strict with a tensor the model lacks: reported as unexpected; --json gives the report as data.
        var state = source.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        state["extra.weight"] = ones(2);
        state.Remove("pooler.dense.bias");
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "odd.safetensors"), state);
        (code, _, error) = CliRunner.Run("load", "bert-tiny", path);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("pooler.dense.bias").And.Contain("extra.weight"));
        (code, output, error) = CliRunner.Run("load", "bert-tiny", path, "--non-strict", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(output);
        var report = json.RootElement.GetProperty("report");
        Assert.That(report.GetProperty("complete").GetBoolean(), Is.False);
        Assert.That(report.GetProperty("missing").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "pooler.dense.bias" }));
        Assert.That(report.GetProperty("unexpected").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "extra.weight" }));
        Assert.That(report.GetProperty("tensorsLoaded").GetInt32(), Is.EqualTo(state.Count - 1));
    }
}
