using System.Text;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Weights;

/// <summary>Each kind of broken safetensors file gives a clear error naming the file (and the tensor where there is one).</summary>
public class BadInputTests
{
    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    /// <summary>A safetensors file from a literal header and a data section.</summary>
    static byte[] Raw(string header, int dataBytes, ulong? declaredLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        return BitConverter.GetBytes(declaredLength ?? (ulong)json.Length).Concat(json).Concat(new byte[dataBytes]).ToArray();
    }

    CheckpointException Refused(byte[] bytes, string name = "bad.safetensors")
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<CheckpointException>(() =>
        {
            using var reader = Checkpoint.Open(path);
            foreach (var entry in reader.Entries) reader.Read(entry.Name).Dispose();
        })!;
        Assert.That(e.Message, Does.Contain(name));
        return e;
    }

    const string Two = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";

    [Test]
    public void ATruncatedFileIsRefused() =>
        Assert.That(Refused(Raw(Two, 16)[..^3]).Message, Does.Contain("truncated"));

    [Test]
    public void AFileShorterThanTheLengthFieldIsRefused() =>
        Assert.That(Refused(new byte[] { 1, 2, 3 }).Message, Does.Contain("too short"));

    [Test]
    public void AHeaderLengthLargerThanTheFileIsRefused() =>
        Assert.That(Refused(Raw(Two, 16, declaredLength: 1UL << 40)).Message, Does.Contain("larger than the rest of the file"));

    [Test]
    public void AHeaderThatIsNotJsonIsRefused()
    {
        Assert.That(Refused(Raw("{\"a\": [1, 2", 0)).Message, Does.Contain("not valid JSON"));
        Assert.That(Refused(Raw("[1, 2, 3]", 0)).Message, Does.Contain("not a JSON object"));
        var invalidUtf8 = Raw("{\"\u00e9\":1}", 0);
        invalidUtf8[11] = 0xFF;
        Assert.That(Refused(invalidUtf8).Message, Does.Contain("JSON"));
        Assert.That(Refused(Raw(Two + "xx", 16)).Message, Does.Contain("after the header object"));
    }

    [Test]
    public void OffsetsOutOfBoundsOverlappingOrLeavingHolesAreRefused()
    {
        var e = Refused(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 12));
        Assert.That(e.Message, Does.Contain("'b'").And.Contain("run past the end"));
        e = Refused(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12));
        Assert.That(e.Message, Does.Contain("'b'").And.Contain("overlaps"));
        e = Refused(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20));
        Assert.That(e.Message, Does.Contain("'b'").And.Contain("hole"));
        e = Refused(Raw(Two, 24));
        Assert.That(e.Message, Does.Contain("8 bytes at the end of the data belong to no tensor"));
        e = Refused(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8));
        Assert.That(e.Message, Does.Contain("'a'").And.Contain("not an increasing range"));
        e = Refused(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", 8));
        Assert.That(e.Message, Does.Contain("'a'").And.Contain("bad data_offsets"));
    }

    [Test]
    public void AnUnknownDtypeIsRefused() =>
        Assert.That(Refused(Raw("{\"a\":{\"dtype\":\"F8_E9M9\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2)).Message,
            Does.Contain("'a'").And.Contain("unknown dtype 'F8_E9M9'"));

    [Test]
    public void AShapeThatDoesNotMatchTheByteRangeIsRefused()
    {
        var e = Refused(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2, 3],\"data_offsets\":[0,16]}}", 16));
        Assert.That(e.Message, Does.Contain("'a'").And.Contain("[2, 3]").And.Contain("needs 24 bytes").And.Contain("give 16"));
        e = Refused(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8));
        Assert.That(e.Message, Does.Contain("bad shape"));
        e = Refused(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296, 4294967296, 4294967296],\"data_offsets\":[0,8]}}", 8));
        Assert.That(e.Message, Does.Contain("too large"));
    }

    [Test]
    public void DuplicateKeysAreRefused() =>
        Assert.That(Refused(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8)).Message,
            Does.Contain("'a'").And.Contain("twice"));

    [Test]
    public void AMissingFieldIsRefused()
    {
        Assert.That(Refused(Raw("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4)).Message, Does.Contain("no dtype"));
        Assert.That(Refused(Raw("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4)).Message, Does.Contain("no shape"));
        Assert.That(Refused(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4)).Message, Does.Contain("no data_offsets"));
        Assert.That(Refused(Raw("{\"__metadata__\": [1]}", 0)).Message, Does.Contain("__metadata__ is not an object"));
    }

    [Test]
    public void AZeroByteFileIsRefused()
    {
        Assert.That(Refused(Array.Empty<byte>(), "empty.safetensors").Message, Does.Contain("empty (0 bytes)"));
        Assert.That(Refused(Array.Empty<byte>(), "empty.bin").Message, Does.Contain("empty (0 bytes)"));
    }

    [Test]
    public void AFileOfNoKnownFormatIsRefused() =>
        Assert.That(Refused(Encoding.ASCII.GetBytes("hello, I am not a checkpoint at all"), "notes.bin").Message, Does.Contain("not a recognised checkpoint"));

    [Test]
    public void AValidFileStillLoads()
    {
        var path = Path.Combine(_directory, "good.safetensors");
        File.WriteAllBytes(path, Raw(Two, 16));
        using var reader = Checkpoint.Open(path);
        Assert.That(reader.Entries.Select(e => e.Name), Is.EqualTo(new[] { "a", "b" }));
        using var a = reader.Read("a");
        Assert.That(a.sum().item<float>(), Is.EqualTo(0f));
    }
}
