using System.Text;
using System.Text.Json;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Weights;

public class SafetensorsWriterTests
{
    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    static Dictionary<string, Tensor> AllDtypes() => new()
    {
        ["f32"] = randn(3, 4),
        ["f16"] = randn(5).to(ScalarType.Float16),
        ["bf16"] = randn(2, 2).to(ScalarType.BFloat16),
        ["f64"] = randn(2).to(ScalarType.Float64),
        ["i64"] = tensor(new long[] { 1, -2, 3 }),
        ["i32"] = tensor(new[] { 7, 8 }),
        ["i16"] = tensor(new short[] { -7, 8 }),
        ["i8"] = tensor(new sbyte[] { -7, 8 }),
        ["u8"] = tensor(new byte[] { 1, 255 }),
        ["bool"] = tensor(new[] { true, false, true }),
        ["empty"] = zeros(0, 4),
        ["scalar"] = tensor(3.5f),
        ["transposed"] = randn(3, 5).t(),
    };

    static void AssertReadsBack(string path, IReadOnlyDictionary<string, Tensor> expected, ScalarType? floatsAs = null)
    {
        using var reader = Checkpoint.Open(path);
        Assert.That(reader.Entries.Select(e => e.Name), Is.EquivalentTo(expected.Keys));
        foreach (var (name, tensor) in expected)
        {
            using var actual = reader.Read(name);
            var want = floatsAs is ScalarType t && tensor.is_floating_point() ? tensor.to(t) : tensor;
            Assert.That(actual.dtype, Is.EqualTo(want.dtype), name);
            Assert.That(actual.shape, Is.EqualTo(want.shape), name);
            Assert.That(actual.equal(want).all().item<bool>(), Is.True, name);
        }
    }

    [Test]
    public void RoundTripsEveryDtypeWithMetadataAndAnAlignedHeader()
    {
        var tensors = AllDtypes();
        var path = Path.Combine(_directory, "all.safetensors");
        var saved = SafetensorsWriter.Write(path, tensors, new SafetensorsWriteOptions { Metadata = new Dictionary<string, string> { ["source"] = "test" } });
        Assert.That(saved.Files, Is.EqualTo(new[] { path }));
        Assert.That(saved.IndexPath, Is.Null);
        AssertReadsBack(path, tensors);
        using (var reader = Checkpoint.Open(path))
        {
            Assert.That(reader.Metadata["source"], Is.EqualTo("test"));
            Assert.That(reader.Metadata["format"], Is.EqualTo("pt"));
        }
        var bytes = File.ReadAllBytes(path);
        Assert.That((8 + (long)BitConverter.ToUInt64(bytes, 0)) % 8, Is.EqualTo(0));
        Assert.That(Directory.GetFiles(_directory), Is.EqualTo(new[] { path }), "no temporary files are left");
    }

    [Test]
    public void ConvertsFloatingTensorsOnlyWhenADtypeIsGiven()
    {
        var tensors = AllDtypes();
        foreach (var (dtype, type) in new[] { ("F16", ScalarType.Float16), ("BF16", ScalarType.BFloat16), ("F32", ScalarType.Float32) })
        {
            var path = Path.Combine(_directory, dtype + ".safetensors");
            SafetensorsWriter.Write(path, tensors, new SafetensorsWriteOptions { Dtype = dtype });
            AssertReadsBack(path, tensors, floatsAs: type);
        }
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(Path.Combine(_directory, "x.safetensors"), tensors, new SafetensorsWriteOptions { Dtype = "I64" }));
    }

    [Test]
    public void ShardsLikeHuggingFaceAndReadsBackThroughTheIndex()
    {
        var tensors = new Dictionary<string, Tensor>();
        for (int i = 0; i < 7; i++) tensors[$"layer.{i}.weight"] = randn(10, 10); // 400 bytes each
        tensors["big"] = randn(50, 10); // 2000 bytes: larger than a shard, gets its own
        var path = Path.Combine(_directory, "model.safetensors");
        var saved = SafetensorsWriter.Write(path, tensors, new SafetensorsWriteOptions { MaxShardBytes = ByteSize.Parse("1KB"), ConfigJson = "{\"hidden_size\": 10}" });
        Assert.That(saved.Files.Select(Path.GetFileName), Is.EqualTo(new[]
        {
            "model-00001-of-00005.safetensors", "model-00002-of-00005.safetensors", "model-00003-of-00005.safetensors",
            "model-00004-of-00005.safetensors", "model-00005-of-00005.safetensors",
        }));
        Assert.That(saved.IndexPath, Is.EqualTo(Path.Combine(_directory, "model.safetensors.index.json")));
        using (var index = JsonDocument.Parse(File.ReadAllText(saved.IndexPath!)))
        {
            Assert.That(index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64(), Is.EqualTo(7 * 400 + 2000));
            var map = index.RootElement.GetProperty("weight_map");
            Assert.That(map.GetProperty("layer.0.weight").GetString(), Is.EqualTo("model-00001-of-00005.safetensors"));
            Assert.That(map.GetProperty("layer.2.weight").GetString(), Is.EqualTo("model-00002-of-00005.safetensors"));
            Assert.That(map.GetProperty("big").GetString(), Is.EqualTo("model-00005-of-00005.safetensors"));
        }
        foreach (var file in saved.Files) Assert.That(new FileInfo(file).Length, Is.LessThanOrEqualTo(1000 + 400).Or.EqualTo(new FileInfo(saved.Files[^1]).Length));
        Assert.That(File.ReadAllText(Path.Combine(_directory, "config.json")), Is.EqualTo("{\"hidden_size\": 10}\n"));
        AssertReadsBack(_directory, tensors);

        // Saving again with bigger shards replaces the set: stale shards of the earlier save are removed.
        saved = SafetensorsWriter.Write(path, tensors, new SafetensorsWriteOptions { MaxShardBytes = 2400 });
        Assert.That(saved.Files.Count, Is.EqualTo(2));
        Assert.That(Directory.GetFiles(_directory, "*.safetensors").Select(Path.GetFileName).OrderBy(n => n),
            Is.EqualTo(new[] { "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors" }));
        AssertReadsBack(_directory, tensors);

        // And a single-file save removes the index and shards, so the directory opens as the new file.
        saved = SafetensorsWriter.Write(path, tensors);
        Assert.That(Directory.GetFiles(_directory).Select(Path.GetFileName).OrderBy(n => n), Is.EqualTo(new[] { "config.json", "model.safetensors" }));
        AssertReadsBack(_directory, tensors);
    }

    [Test]
    public void OverwritingALargerFileLeavesNoGarbageBehind()
    {
        var path = Path.Combine(_directory, "model.safetensors");
        File.WriteAllBytes(path, Enumerable.Repeat((byte)0xAB, 1 << 16).ToArray());
        var small = new Dictionary<string, Tensor> { ["w"] = ones(2) };
        SafetensorsWriter.Write(path, small);
        var bytes = File.ReadAllBytes(path);
        Assert.That(bytes.Length, Is.EqualTo(8 + (long)BitConverter.ToUInt64(bytes, 0) + 8));
        AssertReadsBack(path, small);
    }

    [Test]
    public void AFailureWhileWritingLeavesTheOldFileUntouchedAndNoTemporaries()
    {
        var path = Path.Combine(_directory, "model.safetensors");
        var original = new Dictionary<string, Tensor> { ["w"] = arange(4f) };
        SafetensorsWriter.Write(path, original);
        var before = File.ReadAllBytes(path);
        var failing = new List<MappedTensor>
        {
            new("a", "F32", new long[] { 2 }, new[] { "a" }, () => ones(2)),
            new("b", "F32", new long[] { 2 }, new[] { "b" }, () => throw new IOException("disk on fire")),
        };
        Assert.Throws<IOException>(() => SafetensorsWriter.Write(path, failing));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
        Assert.That(Directory.GetFiles(_directory), Is.EqualTo(new[] { path }));

        // The same for a sharded save: no shard, index or temporary appears.
        Assert.Throws<IOException>(() => SafetensorsWriter.Write(path, failing, new SafetensorsWriteOptions { MaxShardBytes = 8 }));
        Assert.That(Directory.GetFiles(_directory), Is.EqualTo(new[] { path }));

        // A tensor whose shape differs from its plan is caught, not written.
        var lying = new List<MappedTensor> { new("a", "F32", new long[] { 3 }, new[] { "a" }, () => ones(2)) };
        Assert.Throws<InvalidOperationException>(() => SafetensorsWriter.Write(path, lying));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
    }

    [Test]
    public void AModelStateDictRoundTripsThroughAReversedKeyMap()
    {
        // The model's names -> the checkpoint's layout (reverse of the loading map) -> load back through the map.
        using var model = nn.Sequential(("fc", nn.Linear(4, 6)), ("out", nn.Linear(6, 2)));
        var loadMap = KeyMap.Identity.StripPrefix("module.").Rename("net_{name}.{p}", "{name}.{p}");
        Assert.That(loadMap.IsReversible, Is.True);
        var state = model.state_dict();
        var written = loadMap.Reverse().Apply(state);
        Assert.That(written.Tensors.Select(t => t.Name), Is.EquivalentTo(new[] { "module.net_fc.weight", "module.net_fc.bias", "module.net_out.weight", "module.net_out.bias" }));
        var path = Path.Combine(_directory, "original.safetensors");
        SafetensorsWriter.Write(path, written.Tensors);
        using var copy = nn.Sequential(("fc", nn.Linear(4, 6)), ("out", nn.Linear(6, 2)));
        var report = ModelLoader.Load(copy, path, loadMap);
        Assert.That(report.IsComplete, Is.True, report.ToText());
        foreach (var (name, value) in state)
            Assert.That(copy.state_dict()[name].equal(value).all().item<bool>(), Is.True, name);
    }

    [TestCase("2GB", 2_000_000_000L)]
    [TestCase("500MB", 500_000_000L)]
    [TestCase("1GiB", 1L << 30)]
    [TestCase("10KiB", 10240L)]
    [TestCase("4096", 4096L)]
    [TestCase("1.5GB", 1_500_000_000L)]
    [TestCase(" 3 mb ", 3_000_000L)]
    public void ParsesShardSizesTheHuggingFaceWay(string text, long bytes) => Assert.That(ByteSize.Parse(text), Is.EqualTo(bytes));

    [TestCase("")]
    [TestCase("GB")]
    [TestCase("-1GB")]
    [TestCase("2 parsecs")]
    [TestCase("0")]
    public void RefusesSizesThatAreNotSizes(string text) => Assert.Throws<ArgumentException>(() => ByteSize.Parse(text));
}
