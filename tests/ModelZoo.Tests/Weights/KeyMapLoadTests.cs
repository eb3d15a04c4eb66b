using ModelZoo.Attention.Diagnostics;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Weights;

/// <summary>Key-map transforms (split, merge, transpose) through the real loader, tensor by tensor inside its dispose scopes.</summary>
public class KeyMapLoadTests
{
    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    sealed class AttentionHolder : nn.Module
    {
        public AttentionHolder() : base("holder") => register_module("attn", nn.MultiheadAttention(4, 2));
    }

    static nn.Module SeparateProjections() => nn.Sequential(
        ("blocks", nn.Sequential(("0", nn.Sequential(("query", nn.Linear(4, 4)), ("key", nn.Linear(4, 4)), ("value", nn.Linear(4, 4)), ("proj", nn.Linear(4, 3)))))));

    [Test]
    public void AFusedTensorSplitsIntoTheModelsPartsThroughTheLoader()
    {
        var qkvWeight = randn(12, 4);
        var qkvBias = randn(12);
        var proj = randn(4, 3); // stored [in, out] like a GPT-2 Conv1D
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "fused.safetensors"), new Dictionary<string, Tensor>
        {
            ["blocks.0.attn.qkv.weight"] = qkvWeight, ["blocks.0.attn.qkv.bias"] = qkvBias,
            ["blocks.0.proj.weight"] = proj, ["blocks.0.proj.bias"] = randn(3),
        });
        var map = KeyMap.Identity.Split("blocks.{i}.attn.qkv.{p}", 0, "blocks.{i}.query.{p}", "blocks.{i}.key.{p}", "blocks.{i}.value.{p}")
            .Transpose("blocks.{i}.proj.weight");
        using var model = SeparateProjections();
        var report = ModelLoader.Load(model, path, map);
        Assert.That(report.IsComplete, Is.True, report.ToText());
        var state = model.state_dict();
        Assert.That(state["blocks.0.query.weight"].equal(qkvWeight[..4]).all().item<bool>(), Is.True);
        Assert.That(state["blocks.0.key.weight"].equal(qkvWeight[4..8]).all().item<bool>(), Is.True);
        Assert.That(state["blocks.0.value.weight"].equal(qkvWeight[8..]).all().item<bool>(), Is.True);
        Assert.That(state["blocks.0.value.bias"].equal(qkvBias[8..]).all().item<bool>(), Is.True);
        Assert.That(state["blocks.0.proj.weight"].equal(proj.t()).all().item<bool>(), Is.True);

        // Loading a second time reads the fused tensor again.
        using var again = SeparateProjections();
        Assert.That(ModelLoader.Load(again, path, map).IsComplete, Is.True);
        Assert.That(again.state_dict()["blocks.0.key.weight"].equal(qkvWeight[4..8]).all().item<bool>(), Is.True);
    }

    [Test]
    public void SeparateTensorsMergeIntoAFusedParameterAndConvertBack()
    {
        // CLIP keeps nn.MultiheadAttention's packed in_proj_weight; a checkpoint with separate q/k/v merges into it.
        using var model = new AttentionHolder();
        var parts = new Dictionary<string, Tensor>
        {
            ["attn.q_proj.weight"] = randn(4, 4), ["attn.k_proj.weight"] = randn(4, 4), ["attn.v_proj.weight"] = randn(4, 4),
            ["attn.q_proj.bias"] = randn(4), ["attn.k_proj.bias"] = randn(4), ["attn.v_proj.bias"] = randn(4),
            ["attn.out_proj.weight"] = randn(4, 4), ["attn.out_proj.bias"] = randn(4),
        };
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "separate.safetensors"), parts);
        var map = KeyMap.Identity
            .Merge(new[] { "{m}.q_proj.weight", "{m}.k_proj.weight", "{m}.v_proj.weight" }, "{m}.in_proj_weight", 0)
            .Merge(new[] { "{m}.q_proj.bias", "{m}.k_proj.bias", "{m}.v_proj.bias" }, "{m}.in_proj_bias", 0);
        var report = ModelLoader.Load(model, path, map);
        Assert.That(report.IsComplete, Is.True, report.ToText());
        var fused = model.state_dict()["attn.in_proj_weight"];
        Assert.That(fused.equal(cat(new[] { parts["attn.q_proj.weight"], parts["attn.k_proj.weight"], parts["attn.v_proj.weight"] }, 0)).all().item<bool>(), Is.True);

        // The reverse map writes the separate layout again, byte for byte.
        var back = map.Reverse().Apply(model.state_dict());
        var written = SafetensorsWriter.Write(Path.Combine(_directory, "back.safetensors"), back.Tensors);
        using var reader = Checkpoint.Open(written.Path);
        foreach (var (name, expected) in parts)
        {
            using var actual = reader.Read(name);
            Assert.That(actual.equal(expected).all().item<bool>(), Is.True, name);
        }
    }

    [Test]
    public void RepeatedLoadsDoNotGrowMemory()
    {
        // Every path of the loader: direct reads (F32), conversion (F16 into F32), split and transpose, from safetensors
        // and a pickle. Every tensor is at least 4 MiB, so one tensor leaked per load would add 80 MB over 10 rounds;
        // the allocator's own drift measured here is well under a megabyte per round.
        const int n = 1024;
        var tensors = new Dictionary<string, Tensor>
        {
            ["blocks.0.attn.qkv.weight"] = randn(3 * n, n).to(ScalarType.Float16),
            ["blocks.0.proj.weight"] = randn(n, n), ["blocks.0.out.weight"] = randn(n, n),
        };
        var safetensors = SafetensorsBuilder.Write(Path.Combine(_directory, "a.safetensors"), tensors);
        var pickle = Path.Combine(_directory, "a.bin");
        File.WriteAllBytes(pickle, TorchSaveBuilder.Zip(tensors));
        var map = KeyMap.Identity.Split("blocks.{i}.attn.qkv.{p}", 0, "blocks.{i}.query.{p}", "blocks.{i}.key.{p}", "blocks.{i}.value.{p}")
            .Transpose("blocks.{i}.proj.weight");
        using var model = nn.Sequential(("blocks", nn.Sequential(("0", nn.Sequential(
            ("query", nn.Linear(n, n, hasBias: false)), ("key", nn.Linear(n, n, hasBias: false)), ("value", nn.Linear(n, n, hasBias: false)),
            ("proj", nn.Linear(n, n, hasBias: false)), ("out", nn.Linear(n, n, hasBias: false)))))));
        void Load()
        {
            Assert.That(ModelLoader.Load(model, safetensors, map).IsComplete, Is.True);
            Assert.That(ModelLoader.Load(model, pickle, map).IsComplete, Is.True);
        }
        for (int i = 0; i < 3; i++) Load();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = ProcessMemory.ResidentBytes();
        for (int i = 0; i < 10; i++) Load();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long after = ProcessMemory.ResidentBytes();
        Assume.That(before, Is.GreaterThan(0), "no /proc here");
        Assert.That(after - before, Is.LessThan(20L << 20), $"RSS {before / 1e6:0.0} MB -> {after / 1e6:0.0} MB");
    }
}
