using System.Diagnostics;
using System.Text.Json;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Weights;

/// <summary>Corrupted variants of a valid checkpoint: byte flips and truncations.</summary>
public static class CorruptionGenerator
{
    /// <summary>
    /// Every byte in [0, <paramref name="flipRegion"/>) flipped to its complement, the first 128 bytes also with their
    /// low and high bit flipped, then a sample of the rest (every <paramref name="stride"/>-th byte).
    /// </summary>
    public static IEnumerable<(string What, byte[] Bytes)> ByteFlips(byte[] valid, int flipRegion, int stride = 61)
    {
        for (int i = 0; i < valid.Length; i += i < flipRegion ? 1 : stride)
            foreach (byte mask in i < 128 ? new byte[] { 0xFF, 0x01, 0x80 } : new byte[] { 0xFF })
            {
                var copy = (byte[])valid.Clone();
                copy[i] ^= mask;
                yield return ($"byte {i} ^ 0x{mask:x2}", copy);
            }
    }

    /// <summary>Every length from 0 to the full length minus one for small files, else a sample plus the lengths near the ends.</summary>
    public static IEnumerable<(string What, byte[] Bytes)> Truncations(byte[] valid, int stride = 1)
    {
        var lengths = new SortedSet<int>();
        for (int n = 0; n < valid.Length; n += stride) lengths.Add(n);
        for (int n = Math.Max(0, valid.Length - 64); n < valid.Length; n++) lengths.Add(n);
        for (int n = 0; n < Math.Min(64, valid.Length); n++) lengths.Add(n);
        foreach (int n in lengths) yield return ($"truncated to {n} bytes", valid[..n]);
    }
}

public class CorruptionTests
{
    static string Data(string name) => Path.Combine(TestPaths.RepositoryRoot, "tests", "ModelZoo.Tests", "Weights", "Data", name);

    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    /// <summary>Opens and reads everything; true if it loaded, false if refused with a CheckpointException. Anything else fails the test.</summary>
    static bool LoadsOrFailsCleanly(string path, string what)
    {
        var watch = Stopwatch.StartNew();
        try
        {
            using var reader = Checkpoint.Open(path);
            foreach (var entry in reader.Entries)
            {
                using var tensor = reader.Read(entry.Name);
                if (!tensor.shape.SequenceEqual(entry.Shape) || StorageDtype.FromScalarType(tensor.dtype) != entry.Dtype)
                    Assert.Fail($"{what}: '{entry.Name}' read as {tensor.dtype} [{string.Join(", ", tensor.shape)}], indexed as {entry.Dtype} {entry.ShapeText}");
            }
            return true;
        }
        catch (CheckpointException e)
        {
            if (!e.Message.Contains(Path.GetDirectoryName(path)!, StringComparison.Ordinal)) Assert.Fail($"{what}: the error does not name the file: {e.Message}");
            return false;
        }
        catch (Exception e) when (e is not AssertionException)
        {
            Assert.Fail($"{what}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            return false;
        }
        finally
        {
            if (watch.Elapsed.TotalSeconds > 5) Assert.Fail($"{what} took {watch.Elapsed.TotalSeconds:F1} s");
        }
    }

    (int Loaded, int Refused) Run(string name, byte[] valid, IEnumerable<(string What, byte[] Bytes)> variants)
    {
        var path = Path.Combine(_directory, name);
        Assert.That(LoadsOrFailsCleanly(WriteAll(path, valid), "the valid file"), Is.True);
        int loaded = 0, refused = 0;
        foreach (var (what, bytes) in variants)
            if (LoadsOrFailsCleanly(WriteAll(path, bytes), what)) loaded++;
            else refused++;
        return (loaded, refused);
    }

    static string WriteAll(string path, byte[] bytes)
    {
        File.WriteAllBytes(path, bytes);
        return path;
    }

    static byte[] SmallSafetensors()
    {
        var tensors = new Dictionary<string, Tensor>
        {
            ["embeddings.weight"] = randn(4, 3), ["layer.0.bias"] = randn(3).to(ScalarType.Float16),
            ["ids"] = arange(3L), ["mask"] = tensor(new[] { true, false }),
        };
        return SafetensorsBuilder.Build(tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    public static IEnumerable<TestCaseData> Files()
    {
        yield return new TestCaseData("model.safetensors", (Func<byte[]>)SmallSafetensors).SetName("Safetensors");
        foreach (var file in new[] { "zip_protocol2.pt", "zip_protocol4.pt", "legacy_protocol2.pt", "lightning.ckpt" })
            yield return new TestCaseData(file, (Func<byte[]>)(() => File.ReadAllBytes(Data(file)))).SetName("Pickle " + file);
        yield return new TestCaseData("ViT-B-32.pt", (Func<byte[]>)(() => TorchSaveBuilder.ZipFile(TorchPickleReaderTests.ClipLikeScriptArchive())))
            .SetName("TorchScript archive");
    }

    [TestCaseSource(nameof(Files))]
    public void EveryByteFlipLoadsOrFailsCleanly(string name, Func<byte[]> make)
    {
        var valid = make();
        // Flip every byte of the structure (the safetensors header; the first KB of a pickle file: the zip header and
        // pickle, or the legacy header pickles), then every 7th byte of the rest.
        int region = name.EndsWith(".safetensors") ? 8 + (int)BitConverter.ToUInt64(valid, 0) : 1024;
        var (loaded, refused) = Run(name, valid, CorruptionGenerator.ByteFlips(valid, region, stride: 7));
        TestContext.Out.WriteLine($"{name}: {loaded} variants still load, {refused} refused");
        Assert.That(refused, Is.GreaterThan(0));
    }

    [TestCaseSource(nameof(Files))]
    public void EveryTruncationIsRefused(string name, Func<byte[]> make)
    {
        var valid = make();
        var (loaded, _) = Run(name, valid, CorruptionGenerator.Truncations(valid, stride: name.EndsWith(".safetensors") ? 1 : 4));
        Assert.That(loaded, Is.EqualTo(0), "a truncated file loaded");
    }

    [Test]
    public void TheFixturePicklesLoadOrFailCleanlyUnderSampledCorruption()
    {
        var valid = File.ReadAllBytes(Path.Combine(TestPaths.Fixture("uniter"), "model.bin"));
        // The pickle (first ~13 KB) flipped byte by byte with the complement; the storages and zip directory sampled.
        var flips = CorruptionGenerator.ByteFlips(valid, flipRegion: 0, stride: 701)
            .Concat(Enumerable.Range(0, 13_000).Where(i => i % 37 == 3).Select(i => { var c = (byte[])valid.Clone(); c[i] ^= 0xFF; return ($"byte {i}", c); }));
        Run("model.bin", valid, flips);
        var (loaded, _) = Run("model.bin", valid, CorruptionGenerator.Truncations(valid, stride: 4999));
        Assert.That(loaded, Is.EqualTo(0));
    }

    [Test]
    public void CorruptedShardIndexesLoadOrFailCleanly()
    {
        SafetensorsBuilder.Write(Path.Combine(_directory, "model-00001-of-00002.safetensors"), new Dictionary<string, Tensor> { ["a"] = ones(2) });
        SafetensorsBuilder.Write(Path.Combine(_directory, "model-00002-of-00002.safetensors"), new Dictionary<string, Tensor> { ["b"] = ones(3) });
        var index = JsonSerializer.SerializeToUtf8Bytes(new
        {
            metadata = new { total_size = 20 },
            weight_map = new Dictionary<string, string> { ["a"] = "model-00001-of-00002.safetensors", ["b"] = "model-00002-of-00002.safetensors" },
        });
        Run("model.safetensors.index.json", index, CorruptionGenerator.ByteFlips(index, index.Length).Concat(CorruptionGenerator.Truncations(index)));
    }
}
