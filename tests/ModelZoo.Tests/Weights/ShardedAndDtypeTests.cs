using System.Text.Json;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Weights;

public class ShardedAndDtypeTests
{
    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    static Dictionary<string, Tensor> Tensors() => new()
    {
        ["embeddings.weight"] = randn(6, 4),
        ["layer.0.weight"] = randn(4, 4),
        ["layer.0.bias"] = randn(4),
        ["layer.1.weight"] = randn(4, 4).to(ScalarType.Float16),
        ["position_ids"] = arange(6L),
    };

    /// <summary>Writes the tensors in two shards plus a Hugging Face index; returns the index path.</summary>
    string WriteSharded(Dictionary<string, Tensor> tensors, string baseName, Func<string, Dictionary<string, Tensor>, string> writeShard,
        Action<Dictionary<string, string>>? editMap = null)
    {
        var names = tensors.Keys.ToList();
        var shards = new[] { names.Take(names.Count / 2).ToList(), names.Skip(names.Count / 2).ToList() };
        var weightMap = new Dictionary<string, string>();
        string extension = baseName == "model" ? ".safetensors" : ".bin";
        for (int i = 0; i < shards.Length; i++)
        {
            string file = $"{baseName}-{i + 1:00000}-of-{shards.Length:00000}{extension}";
            writeShard(Path.Combine(_directory, file), shards[i].ToDictionary(n => n, n => tensors[n]));
            foreach (var n in shards[i]) weightMap[n] = file;
        }
        editMap?.Invoke(weightMap);
        string index = Path.Combine(_directory, baseName + extension + ".index.json");
        File.WriteAllText(index, JsonSerializer.Serialize(new { metadata = new { total_size = 1234 }, weight_map = weightMap }));
        return index;
    }

    static string WriteSafetensors(string path, Dictionary<string, Tensor> tensors) => SafetensorsBuilder.Write(path, tensors);

    static string WritePickle(string path, Dictionary<string, Tensor> tensors)
    {
        File.WriteAllBytes(path, TorchSaveBuilder.Zip(tensors));
        return path;
    }

    [TestCase("model")]
    [TestCase("pytorch_model")]
    public void ShardedCheckpointsReadAsOneThroughTheirIndexOrTheirDirectory(string baseName)
    {
        var tensors = Tensors();
        var index = WriteSharded(tensors, baseName, baseName == "model" ? WriteSafetensors : WritePickle);
        foreach (var path in new[] { index, _directory })
        {
            using var reader = Checkpoint.Open(path);
            Assert.That(reader, Is.InstanceOf<ShardedCheckpointReader>());
            Assert.That(reader.Format, Does.EndWith("(sharded)").And.StartWith(baseName == "model" ? "safetensors" : "pytorch zip pickle"));
            Assert.That(reader.Entries.Select(e => e.Name), Is.EquivalentTo(tensors.Keys));
            Assert.That(reader.Metadata["total_size"], Is.EqualTo("1234"));
            Assert.That(reader.Metadata["shards"], Is.EqualTo("2"));
            foreach (var (name, expected) in tensors)
            {
                using var actual = reader.Read(name);
                Assert.That(actual.dtype, Is.EqualTo(expected.dtype), name);
                Assert.That(actual.equal(expected).all().item<bool>(), Is.True, name);
            }
        }
    }

    [Test]
    public void AnIndexNamingAMissingShardNamesIt()
    {
        var index = WriteSharded(Tensors(), "model", WriteSafetensors);
        File.Delete(Path.Combine(_directory, "model-00002-of-00002.safetensors"));
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(index).Dispose());
        Assert.That(e!.Message, Does.Contain("model.safetensors.index.json").And.Contain("model-00002-of-00002.safetensors").And.Contain("does not exist"));
    }

    [Test]
    public void AnIndexThatDisagreesWithItsShardsIsRefused()
    {
        var index = WriteSharded(Tensors(), "model", WriteSafetensors, map => map["ghost.weight"] = "model-00001-of-00002.safetensors");
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(index).Dispose());
        Assert.That(e!.Message, Does.Contain("ghost.weight").And.Contain("does not hold it"));

        index = WriteSharded(Tensors(), "model", WriteSafetensors, map => map.Remove("layer.0.bias"));
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(index).Dispose());
        Assert.That(e!.Message, Does.Contain("layer.0.bias").And.Contain("does not list it"));

        index = WriteSharded(Tensors(), "model", WriteSafetensors, map => map["layer.0.bias"] = "model-00001-of-00002.safetensors");
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(index).Dispose());
        Assert.That(e!.Message, Does.Contain("layer.0.bias").And.Contain("assigns it to"));

        index = WriteSharded(Tensors(), "model", WriteSafetensors, map => map["layer.0.bias"] = "../elsewhere.safetensors");
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(index).Dispose());
        Assert.That(e!.Message, Does.Contain("not a plain file name"));
    }

    [Test]
    public void BrokenIndexesAndDirectoriesGiveClearErrors()
    {
        var index = Path.Combine(_directory, "model.safetensors.index.json");
        File.WriteAllText(index, "{\"weight_map\": {\"a\": ");
        Assert.That(Assert.Throws<CheckpointException>(() => Checkpoint.Open(index).Dispose())!.Message, Does.Contain("not valid JSON"));
        File.WriteAllText(index, "{\"metadata\": {}}");
        Assert.That(Assert.Throws<CheckpointException>(() => Checkpoint.Open(index).Dispose())!.Message, Does.Contain("no \"weight_map\""));
        File.WriteAllText(index, "");
        Assert.That(Assert.Throws<CheckpointException>(() => Checkpoint.Open(index).Dispose())!.Message, Does.Contain("empty"));
        File.Delete(index);

        File.WriteAllText(Path.Combine(_directory, "config.json"), "{}");
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(_directory).Dispose());
        Assert.That(e!.Message, Does.Contain(_directory).And.Contain("holds no checkpoint"));

        SafetensorsBuilder.Write(Path.Combine(_directory, "a.safetensors"), new Dictionary<string, Tensor> { ["x"] = ones(1) });
        SafetensorsBuilder.Write(Path.Combine(_directory, "b.safetensors"), new Dictionary<string, Tensor> { ["x"] = ones(1) });
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(_directory).Dispose());
        Assert.That(e!.Message, Does.Contain("several checkpoints").And.Contain("a.safetensors").And.Contain("b.safetensors"));

        var empty = Path.Combine(_directory, "empty.bin");
        File.WriteAllBytes(empty, Array.Empty<byte>());
        Assert.That(Assert.Throws<CheckpointException>(() => Checkpoint.Open(empty).Dispose())!.Message, Does.Contain("empty.bin").And.Contain("0 bytes"));
        Assert.That(Assert.Throws<CheckpointException>(() => Checkpoint.Open(Path.Combine(_directory, "nope.bin")).Dispose())!.Message, Does.Contain("no such file"));
    }

    static readonly ScalarType[] FloatTypes = { ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16 };

    [Test]
    public void EveryFloatDtypeLoadsIntoAModelOfEveryFloatDtype([Values("safetensors", "pickle")] string format)
    {
        foreach (var stored in FloatTypes)
            foreach (var modelType in FloatTypes)
            {
                var source = new Dictionary<string, Tensor> { ["weight"] = randn(3, 5).to(stored), ["bias"] = randn(3).to(stored) };
                var path = Path.Combine(_directory, $"linear-{stored}-{modelType}." + (format == "pickle" ? "bin" : "safetensors"));
                if (format == "pickle") WritePickle(path, source);
                else SafetensorsBuilder.Write(path, source);
                using var model = nn.Linear(5, 3).to(modelType);
                var report = ModelLoader.Load(model, path);
                Assert.That(report.IsComplete, Is.True);
                foreach (var (name, expected) in source)
                {
                    var actual = model.state_dict()[name];
                    Assert.That(actual.dtype, Is.EqualTo(modelType), $"{stored} -> {modelType}");
                    Assert.That(actual.equal(expected.to(modelType)).all().item<bool>(), Is.True, $"{name}: {stored} -> {modelType}");
                }
                string change = $"{StorageDtype.FromScalarType(stored)} -> {StorageDtype.FromScalarType(modelType)}";
                if (stored == modelType) Assert.That(report.DtypeChanges, Is.Empty);
                else Assert.That(report.DtypeChanges[change], Is.EqualTo(2), change);
            }
    }
}
