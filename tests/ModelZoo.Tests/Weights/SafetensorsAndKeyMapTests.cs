using ModelZoo.Models.Bert;
using ModelZoo.Models.Catalog;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Weights;

public class SafetensorsAndKeyMapTests
{
    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    [Test]
    public void ReadsEveryDtypeBackExactly()
    {
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32"] = randn(3, 4),
            ["f16"] = randn(5).to(ScalarType.Float16),
            ["bf16"] = randn(2, 2).to(ScalarType.BFloat16),
            ["f64"] = randn(2).to(ScalarType.Float64),
            ["i64"] = tensor(new long[] { 1, -2, 3 }),
            ["i32"] = tensor(new[] { 7, 8 }),
            ["u8"] = tensor(new byte[] { 1, 255 }),
            ["bool"] = tensor(new[] { true, false, true }),
            ["empty"] = zeros(0, 4),
            ["scalar"] = tensor(3.5f),
        };
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "all.safetensors"), tensors);
        using var reader = Checkpoint.Open(path);
        Assert.That(reader.Format, Is.EqualTo("safetensors"));
        Assert.That(reader.Entries.Select(e => e.Name), Is.EquivalentTo(tensors.Keys));
        foreach (var (name, expected) in tensors)
        {
            using var actual = reader.Read(name);
            Assert.That(actual.dtype, Is.EqualTo(expected.dtype), name);
            Assert.That(actual.shape, Is.EqualTo(expected.shape), name);
            Assert.That(actual.equal(expected).all().item<bool>(), Is.True, name);
        }
    }

    [Test]
    public void SplitAndMergeAreEachOthersReverse()
    {
        var qkv = arange(24f).reshape(6, 4);
        var tensors = new Dictionary<string, Tensor> { ["blocks.0.attn.qkv.weight"] = qkv, ["blocks.0.attn.qkv.bias"] = arange(6f) };
        var map = KeyMap.Identity.Split("{layer}.attn.qkv.{param}", 0, "{layer}.q.{param}", "{layer}.k.{param}", "{layer}.v.{param}");
        var split = map.Apply(tensors);
        Assert.That(split.Tensors.Select(t => t.Name), Is.EquivalentTo(new[]
            { "blocks.0.q.weight", "blocks.0.k.weight", "blocks.0.v.weight", "blocks.0.q.bias", "blocks.0.k.bias", "blocks.0.v.bias" }));
        var k = split.Tensors.Single(t => t.Name == "blocks.0.k.weight");
        Assert.That(k.Shape, Is.EqualTo(new long[] { 2, 4 }));
        Assert.That(k.Materialize().equal(qkv.narrow(0, 2, 2)).all().item<bool>(), Is.True);

        var parts = split.Tensors.ToDictionary(t => t.Name, t => t.Materialize());
        var merged = map.Reverse().Apply(parts);
        Assert.That(merged.Tensors.Select(t => t.Name), Is.EquivalentTo(tensors.Keys));
        Assert.That(merged.Tensors.Single(t => t.Name == "blocks.0.attn.qkv.weight").Materialize().equal(qkv).all().item<bool>(), Is.True);
    }

    [Test]
    public void RenamesPrefixesTransposesIgnoresAndLegacyNames()
    {
        var map = KeyMap.Identity.StripPrefix("module.").Ignore("{x}.position_ids").Rename("h.{i}.attn.{p}", "blocks.{i}.attention.{p}")
            .Transpose("blocks.{i}.attention.c_attn.weight").LegacyLayerNormNames();
        var tensors = new Dictionary<string, Tensor>
        {
            ["module.h.0.attn.c_attn.weight"] = randn(4, 12),
            ["module.embeddings.position_ids"] = arange(5L),
            ["module.ln.gamma"] = ones(3),
            ["module.ln.beta"] = zeros(3),
        };
        var mapped = map.Apply(tensors);
        Assert.That(mapped.Ignored, Is.EqualTo(new[] { "module.embeddings.position_ids" }));
        Assert.That(mapped.Tensors.Select(t => t.Name), Is.EquivalentTo(new[] { "blocks.0.attention.c_attn.weight", "ln.weight", "ln.bias" }));
        var transposed = mapped.Tensors.Single(t => t.Name.Contains("c_attn"));
        Assert.That(transposed.Shape, Is.EqualTo(new long[] { 12, 4 }));
        Assert.That(transposed.Materialize().equal(tensors["module.h.0.attn.c_attn.weight"].t()).all().item<bool>(), Is.True);
        Assert.That(map.MapName("module.h.3.attn.c_proj.bias"), Is.EqualTo("blocks.3.attention.c_proj.bias"));
        Assert.That(KeyMap.Identity.RenameRegex("a", "b").IsReversible, Is.False);
    }

    [Test]
    public void AStrictLoadThatDoesNotFitNamesTheKeyAndBothShapesAndChangesNothing()
    {
        using var model = new BertModel(new BertConfig { VocabSize = 50, HiddenSize = 8, NumHiddenLayers = 1, NumAttentionHeads = 2, IntermediateSize = 16, MaxPositionEmbeddings = 10 });
        var state = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        state["pooler.dense.weight"] = randn(8, 7);
        state.Remove("embeddings.LayerNorm.bias");
        state["extra.weight"] = randn(2);
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "bad.safetensors"), state);
        var before = model.state_dict()["encoder.layer.0.attention.self.query.weight"].clone();

        var e = Assert.Throws<CheckpointException>(() => ModelLoader.Load(model, path));
        Assert.That(e!.Message, Does.Contain("bad.safetensors").And.Contain("pooler.dense.weight").And.Contain("[8, 8]").And.Contain("[8, 7]")
            .And.Contain("embeddings.LayerNorm.bias").And.Contain("extra.weight"));
        Assert.That(model.state_dict()["encoder.layer.0.attention.self.query.weight"].equal(before).all().item<bool>(), Is.True);

        var report = ModelLoader.Load(model, path, options: new LoadOptions { Strict = false });
        Assert.That(report.Missing, Is.EqualTo(new[] { "embeddings.LayerNorm.bias" }));
        Assert.That(report.Unexpected, Is.EqualTo(new[] { "extra.weight" }));
        Assert.That(report.ShapeMismatches.Single().Key, Is.EqualTo("pooler.dense.weight"));
        Assert.That(report.TensorsLoaded, Is.EqualTo(state.Count - 2));
    }

    [Test]
    public void ALoadedModelReproducesTheSavedOneAndConvertsDtypes()
    {
        var catalog = ModelCatalog.Default;
        using var source = catalog.Create<BertModel>("bert-tiny", new ModelCreateOptions { Seed = 5 });
        var state = source.state_dict().ToDictionary(kv => "bert." + kv.Key, kv => kv.Value);
        state["cls.predictions.bias"] = zeros(30522);
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "hf.safetensors"), state);

        LoadReport? report = null;
        using var loaded = catalog.Create<BertModel>("bert-tiny", new ModelCreateOptions { Seed = 6, WeightsPath = path, OnLoadReport = r => report = r });
        Assert.That(report!.IsComplete, Is.True, report.ToText());
        Assert.That(report.Ignored, Is.EqualTo(new[] { "cls.predictions.bias" }));
        var ids = randint(1, 30000, new long[] { 2, 9 });
        using (no_grad())
            Assert.That((source.forward(ids).SequenceOutput - loaded.forward(ids).SequenceOutput).abs().max().item<float>(), Is.EqualTo(0f));

        using var half = catalog.Create<BertModel>("bert-tiny", new ModelCreateOptions { Dtype = "bf16", WeightsPath = path, OnLoadReport = r => report = r });
        Assert.That(report!.DtypeChanges["F32 -> BF16"], Is.EqualTo(report.TensorsLoaded));
    }
}
