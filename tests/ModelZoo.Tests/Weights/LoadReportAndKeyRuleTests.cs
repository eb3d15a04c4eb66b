using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Clip;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Weights;

/// <summary>Load summaries printed by the CLI, merge validation and freeing of split sources.</summary>
public class LoadReportAndKeyRuleTests
{
    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    [Test]
    public void ZeroShotPrintsTheLoadSummaryToStandardErrorNotIntoItsJson()
    {
        using var model = ModelCatalog.Default.Create<ClipModel>("clip-tiny", new ModelCreateOptions { Seed = 8 });
        // Hugging Face layout with its two position_ids buffers, which the key map ignores.
        var hf = ClipKeyMaps.HuggingFace.Reverse().Apply(model.state_dict()).Tensors.ToDictionary(t => t.Name, t => t.Materialize());
        hf["vision_model.embeddings.position_ids"] = arange(17L).unsqueeze(0);
        hf["text_model.embeddings.position_ids"] = arange(77L).unsqueeze(0);
        var weights = SafetensorsBuilder.Write(Path.Combine(_directory, "model.safetensors"), hf);
        string image = Path.Combine(_directory, "red.png");
        using (var bitmap = new SKBitmap(8, 8))
        {
            bitmap.Erase(SKColors.Red);
            using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(image, data.ToArray());
        }

        var (code, output, error) = CliRunner.Run("zero-shot", "--model", "clip-tiny", "--weights", weights, "--image", image, "--labels", "cat,dog", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using (JsonDocument.Parse(output)) { } // stdout stays pure JSON
        Assert.That(output, Does.Not.Contain("loaded"));
        int tensors = model.state_dict().Count;
        long values = model.state_dict().Values.Sum(t => t.numel());
        Assert.That(error, Does.Contain($"modelzoo: loaded {tensors} tensors ({values:N0} values) from {weights} (safetensors)"));
        Assert.That(error, Does.Contain("ignored by the key map 2 (").And.Contain("position_ids").And.Contain("no dtype changes"));
        Assert.That(error.Split('\n').Count(l => l.Contains("modelzoo: loaded")), Is.EqualTo(1));
        foreach (var t in hf.Values) t.Dispose();
    }

    [Test]
    public void LoadObserversSeeEveryLoadInTheirScopeOnly()
    {
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "linear.safetensors"),
            new Dictionary<string, Tensor> { ["weight"] = ones(2, 3, dtype: ScalarType.Float16), ["bias"] = zeros(2) });
        using var model = nn.Linear(3, 2);
        var seen = new List<LoadReport>();
        using (ModelLoader.ObserveLoads(seen.Add))
        {
            var inner = new List<LoadReport>();
            using (ModelLoader.ObserveLoads(inner.Add)) ModelLoader.Load(model, path);
            Assert.That(inner, Has.Count.EqualTo(1));
            Assert.That(seen, Is.Empty, "the inner observer replaces the outer one while it lasts");
            ModelLoader.Load(model, path);
        }
        ModelLoader.Load(model, path);
        Assert.That(seen, Has.Count.EqualTo(1));
        Assert.That(seen[0].ToSummary(), Does.Contain("loaded 2 tensors (8 values)").And.Contain("dtype changes F16 -> F32 (1)"));
    }

    [Test]
    public void MergeRefusesPartsThatDisagreeBeforeReadingAnything()
    {
        using var model = nn.MultiheadAttention(4, 2);
        var map = KeyMap.Identity.Merge(new[] { "q.{p}", "k.{p}", "v.{p}" }, "in_proj_{p}", 0);
        string Write(string name, Dictionary<string, Tensor> tensors) => SafetensorsBuilder.Write(Path.Combine(_directory, name), tensors);

        var shapes = Write("shapes.safetensors", new Dictionary<string, Tensor>
        {
            ["q.weight"] = randn(4, 4), ["k.weight"] = randn(4, 3), ["v.weight"] = randn(4, 4),
        });
        var e = Assert.Throws<CheckpointException>(() => ModelLoader.Load(model, shapes, map, new LoadOptions { Strict = false }));
        Assert.That(e!.Message, Does.Contain("in_proj_weight").And.Contain("'q.weight' has shape [4, 4]").And.Contain("'k.weight' has shape [4, 3]")
            .And.Contain("shapes.safetensors"));

        var dtypes = Write("dtypes.safetensors", new Dictionary<string, Tensor>
        {
            ["q.bias"] = randn(4), ["k.bias"] = randn(4).to(ScalarType.Float16), ["v.bias"] = randn(4),
        });
        e = Assert.Throws<CheckpointException>(() => ModelLoader.Load(model, dtypes, map, new LoadOptions { Strict = false }));
        Assert.That(e!.Message, Does.Contain("in_proj_bias").And.Contain("'q.bias' is F32").And.Contain("'k.bias' is F16"));

        // ModelLoader.Plan (what convert uses) refuses the same way, without reading.
        using var reader = Checkpoint.Open(shapes);
        Assert.Throws<CheckpointException>(() => ModelLoader.Plan(model, reader, map, new LoadOptions { Strict = false }));
    }

    /// <summary>A reader that remembers every tensor it hands out.</summary>
    sealed class RecordingReader(ICheckpointReader inner) : ICheckpointReader
    {
        public List<Tensor> Handed { get; } = new();
        public string Path => inner.Path;
        public string Format => inner.Format;
        public IReadOnlyList<TensorEntry> Entries => inner.Entries;
        public IReadOnlyDictionary<string, string> Metadata => inner.Metadata;
        public Tensor Read(string name)
        {
            var t = inner.Read(name);
            Handed.Add(t);
            return t;
        }
        public void Dispose() => inner.Dispose();
    }

    [Test]
    public void ANonStrictLoadThatSkipsSplitPartsFreesTheFusedTensor()
    {
        // The model takes query and key but has no value: the fused qkv tensor is read once and must not outlive the load.
        var qkv = randn(12, 4);
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "qkv.safetensors"), new Dictionary<string, Tensor> { ["attn.qkv.weight"] = qkv });
        using var model = nn.Sequential(("query", nn.Linear(4, 4, hasBias: false)), ("key", nn.Linear(4, 4, hasBias: false)));
        var map = KeyMap.Identity.Split("attn.qkv.{p}", 0, "query.{p}", "key.{p}", "value.{p}");
        using var reader = new RecordingReader(Checkpoint.Open(path));
        var report = ModelLoader.Load(model, reader, map, new LoadOptions { Strict = false });
        Assert.That(report.Unexpected, Is.EqualTo(new[] { "value.weight" }));
        Assert.That(model.state_dict()["key.weight"].equal(qkv[4..8]).all().item<bool>(), Is.True);
        Assert.That(reader.Handed, Has.Count.EqualTo(1), "the fused tensor is read once");
        Assert.That(reader.Handed[0].IsInvalid, Is.True, "the fused tensor was freed after the load");

        // At the key-map level: a MappedCheckpoint frees a half-taken split when disposed, and not before.
        var source = new List<Tensor>();
        var tensors = new List<MappedTensor> { new("attn.qkv.weight", "F32", new long[] { 12, 4 }, new[] { "attn.qkv.weight" }, () => { var t = randn(12, 4); source.Add(t); return t; }) };
        var mapped = map.Apply(tensors);
        using (var part = mapped.Tensors.Single(t => t.Name == "query.weight").Materialize())
            Assert.That(part.shape, Is.EqualTo(new long[] { 4, 4 }));
        Assert.That(source.Single().IsInvalid, Is.False, "held for the other parts");
        mapped.Dispose();
        Assert.That(source.Single().IsInvalid, Is.True);
    }
}
