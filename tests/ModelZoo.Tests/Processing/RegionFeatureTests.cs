using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using ModelZoo.Processing.Regions;
using ModelZoo.Tests.Support;
using NUnit.Framework;

namespace ModelZoo.Tests.Processing;

public class RegionFeatureTests
{
    string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, true);

    static RegionFeatures Sample(string id, int boxes, int dim, int seed)
    {
        var random = new Random(seed);
        float F() => (float)random.NextDouble();
        var pixelBoxes = new float[boxes * 4];
        for (int i = 0; i < boxes; i++)
        {
            float x1 = 600 * F(), y1 = 400 * F();
            (pixelBoxes[i * 4], pixelBoxes[i * 4 + 1], pixelBoxes[i * 4 + 2], pixelBoxes[i * 4 + 3]) = (x1, y1, x1 + 40 * F(), y1 + 80 * F());
        }
        return new RegionFeatures
        {
            ImageId = id, ImageHeight = 480, ImageWidth = 640, BoxCount = boxes, FeatureSize = dim,
            Features = Enumerable.Range(0, boxes * dim).Select(_ => F() * 10).ToArray(),
            Boxes = pixelBoxes,
            ObjectIds = Enumerable.Range(0, boxes).Select(i => (long)(i * 7 + seed)).ToArray(),
            ObjectConfidences = Enumerable.Range(0, boxes).Select(_ => F()).ToArray(),
            AttributeIds = Enumerable.Range(0, boxes).Select(i => (long)i + 3_000_000_000L).ToArray(),
            AttributeConfidences = Enumerable.Range(0, boxes).Select(_ => F()).ToArray(),
        };
    }

    [Test]
    public void LxmertTsvRoundTripsAndStreams()
    {
        var rows = new[] { Sample("COCO_val2014_000000000042", 36, 2048, 1), Sample("img2", 10, 2048, 2), Sample("img3", 1, 16, 3) };
        var path = Path.Combine(_dir, "features.tsv");
        File.WriteAllText(path, string.Join("\n", rows.Select(RegionFeatureTsv.Format)) + "\n");
        var read = RegionFeatureTsv.Read(path).ToList();
        Assert.That(read, Has.Count.EqualTo(3));
        for (int i = 0; i < 3; i++)
        {
            var (a, b) = (rows[i], read[i]);
            Assert.That((b.ImageId, b.ImageHeight, b.ImageWidth, b.BoxCount, b.FeatureSize), Is.EqualTo((a.ImageId, 480, 640, a.BoxCount, a.FeatureSize)));
            Assert.That(b.Features, Is.EqualTo(a.Features));
            Assert.That(b.Boxes, Is.EqualTo(a.Boxes));
            Assert.That(b.ObjectIds, Is.EqualTo(a.ObjectIds));
            Assert.That(b.AttributeIds, Is.EqualTo(a.AttributeIds), "int64 ids survive beyond 2^31");
            Assert.That(b.ObjectConfidences, Is.EqualTo(a.ObjectConfidences));
            Assert.That(b.AttributeConfidences, Is.EqualTo(a.AttributeConfidences));
        }
        Assert.That(RegionFeatureTsv.Read(path, limit: 2).Count(), Is.EqualTo(2));
    }

    [Test]
    public void AnIndexReadsOneImageByIdWithoutTheRest()
    {
        var rows = new[] { Sample("first", 3, 8, 1), Sample("second", 5, 8, 2), Sample("third", 2, 8, 3) };
        var path = Path.Combine(_dir, "indexed.tsv");
        var bad = string.Join('\t', RegionFeatureTsv.Format(Sample("broken", 2, 8, 4)).Split('\t').Select((f, i) => i == 7 ? "9" : f));
        File.WriteAllText(path, RegionFeatureTsv.Format(rows[0]) + "\r\n" + RegionFeatureTsv.Format(rows[1]) + "\n\r\n" + bad + "\n" + RegionFeatureTsv.Format(rows[2]));
        using var index = RegionFeatureTsvIndex.Build(path);
        Assert.That(index.ImageIds, Is.EquivalentTo(new[] { "first", "second", "broken", "third" }));
        var second = index.Read("second");
        Assert.That(second.Features, Is.EqualTo(rows[1].Features));
        Assert.That(index.Read("third").Boxes, Is.EqualTo(rows[2].Boxes), "the last line has no newline");
        Assert.That(index.Read("first").ObjectIds, Is.EqualTo(rows[0].ObjectIds), "a CRLF line");
        var e = Assert.Throws<InvalidDataException>(() => index.Read("broken"));
        Assert.That(e!.Message, Does.Contain(path + ": line 4"));
        Assert.That(Assert.Throws<KeyNotFoundException>(() => index.Read("fourth"))!.Message, Does.Contain("'fourth'").And.Contain(path));
    }

    [Test]
    public void AHandWrittenLxmertLineIsRead()
    {
        // A 10-field line as LXMERT's extraction writes it (base64 of little-endian int64 ids and float32 arrays),
        // spelled out here rather than made by RegionFeatureTsv.Format: 2 boxes of 3 features, image 480 x 640.
        string line = string.Join('\t',
            "COCO_val2014_000000000042", "480", "640",
            "AwAAAAAAAAACAQAAAAAAAA==",                           // objects_id [3, 258]
            "AAAAPwAAgD4=",                                       // objects_conf [0.5, 0.25]
            "BwAAAAAAAAAAAAAAAAAAAA==",                           // attrs_id [7, 0]
            "AABAPwAAgD8=",                                       // attrs_conf [0.75, 1]
            "2",
            "AAAgQQAAoEEAAN1CAABcQwAAAAAAAAAAAMAfRACA70M=",       // boxes [[10, 20, 110.5, 220], [0, 0, 639, 479]]
            "AACAPwAAAMAAAAA+AABgQAAAAABvEoM6");                  // features [[1, -2, 0.125], [3.5, 0, 0.001]]
        var path = Path.Combine(_dir, "val2014_obj36.tsv");
        File.WriteAllText(path, line + "\n");
        var r = RegionFeatureTsv.Read(path).Single();
        Assert.That((r.ImageId, r.ImageHeight, r.ImageWidth, r.BoxCount, r.FeatureSize), Is.EqualTo(("COCO_val2014_000000000042", 480, 640, 2, 3)));
        Assert.That(r.ObjectIds, Is.EqualTo(new long[] { 3, 258 }));
        Assert.That(r.ObjectConfidences, Is.EqualTo(new[] { 0.5f, 0.25f }));
        Assert.That(r.AttributeIds, Is.EqualTo(new long[] { 7, 0 }));
        Assert.That(r.AttributeConfidences, Is.EqualTo(new[] { 0.75f, 1f }));
        Assert.That(r.Boxes, Is.EqualTo(new[] { 10f, 20f, 110.5f, 220f, 0f, 0f, 639f, 479f }));
        Assert.That(r.Features, Is.EqualTo(new[] { 1f, -2f, 0.125f, 3.5f, 0f, 0.001f }));
        Assert.That(RegionFeatureTsv.Format(r), Is.EqualTo(line), "and Format writes the same line back");
    }

    [Test]
    public void OriginalSixFieldLayoutIsRead()
    {
        var r = Sample("9", 3, 4, 5);
        string B(float[] v) => Convert.ToBase64String(v.SelectMany(BitConverter.GetBytes).ToArray());
        var path = Path.Combine(_dir, "bottomup.tsv");
        File.WriteAllText(path, $"9\t640\t480\t3\t{B(r.Boxes!)}\t{B(r.Features)}\r\n");
        var read = RegionFeatureTsv.Read(path).Single();
        Assert.That((read.ImageWidth, read.ImageHeight, read.BoxCount, read.FeatureSize), Is.EqualTo((640, 480, 3, 4)));
        Assert.That(read.Features, Is.EqualTo(r.Features));
        Assert.That(read.ObjectIds, Is.Null);
    }

    [Test]
    public void MalformedRowsNameTheLineAndField()
    {
        var good = RegionFeatureTsv.Format(Sample("a", 2, 8, 1));
        var fields = good.Split('\t');
        var path = Path.Combine(_dir, "bad.tsv");
        void Expect(string badLine, params string[] fragments)
        {
            File.WriteAllText(path, good + "\n" + badLine + "\n" + good + "\n");
            using var rows = RegionFeatureTsv.Read(path).GetEnumerator();
            Assert.That(rows.MoveNext(), "the good first line is read before the bad one");
            var e = Assert.Throws<InvalidDataException>(() => rows.MoveNext());
            Assert.That(e!.Message, Does.Contain(path + ": line 2"));
            foreach (var f in fragments) Assert.That(e.Message, Does.Contain(f));
        }
        Expect(string.Join('\t', fields.Take(7)), "7 tab-separated fields");
        Expect(string.Join('\t', fields.Select((f, i) => i == 1 ? "48O" : f)), "img_h", "not an integer");
        Expect(string.Join('\t', fields.Select((f, i) => i == 7 ? "3" : f)), "objects_id", "expected 24");
        Expect(string.Join('\t', fields.Select((f, i) => i == 9 ? "@@not base64@@" : f)), "features", "base64");
        Expect(string.Join('\t', fields.Select((f, i) => i == 9 ? Convert.ToBase64String(new byte[12]) : f)), "features", "do not split into 2 boxes");
    }

    [Test]
    public void LongLinesAreReadOneAtATime()
    {
        // 100 boxes of 2048 floats: a 1.1 MB line, as real files have; the reader must not need the whole file.
        var path = Path.Combine(_dir, "long.tsv");
        using (var writer = new StreamWriter(path))
            for (int i = 0; i < 5; i++) writer.WriteLine(RegionFeatureTsv.Format(Sample("img" + i, 100, 2048, i)));
        int count = 0;
        foreach (var r in RegionFeatureTsv.Read(path))
        {
            Assert.That(r.Features, Has.Length.EqualTo(100 * 2048));
            count++;
        }
        Assert.That(count, Is.EqualTo(5));
        Assert.That(new FileInfo(path).Length, Is.GreaterThan(5_000_000));
    }

    // An .npy file as NumPy writes it: format 1.0, header padded with spaces to a multiple of 64, then the data.
    static byte[] Npy(string descr, long[] shape, byte[] data, bool fortran = false)
    {
        string shapeText = shape.Length == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";
        var header = $"{{'descr': '{descr}', 'fortran_order': {(fortran ? "True" : "False")}, 'shape': {shapeText}, }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + (64 - total % 64) % 64) + "\n";
        var bytes = new List<byte> { 0x93 };
        bytes.AddRange(Encoding.ASCII.GetBytes("NUMPY"));
        bytes.AddRange(new byte[] { 1, 0, (byte)header.Length, (byte)(header.Length >> 8) });
        bytes.AddRange(Encoding.ASCII.GetBytes(header));
        bytes.AddRange(data);
        return bytes.ToArray();
    }

    static byte[] F32(IEnumerable<float> v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    static byte[] F16(IEnumerable<float> v) => v.SelectMany(x => BitConverter.GetBytes((Half)x)).ToArray();

    void WriteNpz(string path, CompressionLevel level, params (string Name, byte[] Npy)[] entries)
    {
        using var zip = new ZipArchive(File.Create(path), ZipArchiveMode.Create);
        foreach (var (name, npy) in entries)
        {
            using var stream = zip.CreateEntry(name + ".npy", level).Open();
            stream.Write(npy);
        }
    }

    [TestCase(CompressionLevel.NoCompression, false)]   // np.savez
    [TestCase(CompressionLevel.Optimal, true)]          // np.savez_compressed, float16 as UNITER's dumps
    public void UniterNpzIsReadWithItsNormalisedBoxes(CompressionLevel level, bool half)
    {
        int n = 4, d = 6, classes = 3;
        var features = Enumerable.Range(0, n * d).Select(i => i * 0.25f).ToArray();
        var normBb = new float[] { 0.1f, 0.2f, 0.5f, 0.6f, 0.4f, 0.4f, 0, 0, 1, 1, 1, 1, 0.25f, 0.5f, 0.75f, 1, 0.5f, 0.5f, 0.3f, 0.3f, 0.4f, 0.9f, 0.1f, 0.6f };
        var conf = new float[] { 0.9f, 0.1f, 0.5f, 0.25f };
        var soft = Enumerable.Range(0, n * classes).Select(i => i / 12f).ToArray();
        var path = Path.Combine(_dir, "COCO_train2014_000000000009.npz");
        byte[] Data(float[] v) => half ? F16(v) : F32(v);
        string type = half ? "<f2" : "<f4";
        WriteNpz(path, level, ("features", Npy(type, [n, d], Data(features))), ("norm_bb", Npy(type, [n, 6], Data(normBb))),
            ("conf", Npy(type, [n], Data(conf))), ("soft_labels", Npy(type, [n, classes], Data(soft))));

        var r = UniterNpz.Read(path);
        Assert.That((r.ImageId, r.BoxCount, r.FeatureSize, r.SoftLabelSize), Is.EqualTo(("COCO_train2014_000000000009", n, d, classes)));
        Assert.That(r.Features, Is.EqualTo(half ? features.Select(x => (float)(Half)x) : features));
        var location = BoxFeatures.Uniter(r);
        Assert.That(location, Has.Length.EqualTo(n * 7));
        float H(float x) => half ? (float)(Half)x : x;
        Assert.That(location[..7], Is.EqualTo(new[] { H(0.1f), H(0.2f), H(0.5f), H(0.6f), H(0.4f), H(0.4f), H(0.4f) * H(0.4f) }));
        Assert.That(r.UniterBoxCount(), Is.EqualTo(10), "min_bb 10 when few boxes pass 0.2");
        Assert.That(r.UniterBoxCount(min: 1), Is.EqualTo(3));
    }

    [Test]
    public void NpyHeadersDtypesAndOrdersAreParsed()
    {
        var path = Path.Combine(_dir, "mixed.npz");
        // A 2x3 int64 array in Fortran order: memory holds columns, [[1, 2, 3], [4, 5, 6]].
        var fortran = new long[] { 1, 4, 2, 5, 3, 6 }.SelectMany(BitConverter.GetBytes).ToArray();
        var bigEndian = new byte[8];
        BinaryPrimitives.WriteDoubleBigEndian(bigEndian, 2.5);
        WriteNpz(path, CompressionLevel.Optimal, ("ids", Npy("<i8", [2, 3], fortran, fortran: true)), ("scalar", Npy(">f8", [1], bigEndian)),
            ("flags", Npy("|b1", [3], [1, 0, 1])), ("bytes", Npy("|u1", [2], [200, 7])));
        var arrays = NpyArray.LoadNpz(path);
        Assert.That(arrays["ids"].ToInt64s(), Is.EqualTo(new long[] { 1, 2, 3, 4, 5, 6 }));
        Assert.That(arrays["ids"].Shape, Is.EqualTo(new long[] { 2, 3 }));
        Assert.That(arrays["scalar"].ToFloats(), Is.EqualTo(new[] { 2.5f }));
        Assert.That(arrays["flags"].ToInt64s(), Is.EqualTo(new long[] { 1, 0, 1 }));
        Assert.That(arrays["bytes"].ToInt64s(), Is.EqualTo(new long[] { 200, 7 }));
    }

    [Test]
    public void BrokenNpzFilesAreClearErrors()
    {
        var notZip = Path.Combine(_dir, "a.npz");
        File.WriteAllText(notZip, "hello");
        Assert.That(Assert.Throws<InvalidDataException>(() => UniterNpz.Read(notZip))!.Message, Does.Contain(notZip));

        var missing = Path.Combine(_dir, "b.npz");
        WriteNpz(missing, CompressionLevel.NoCompression, ("features", Npy("<f4", [1, 2], F32([1, 2]))));
        Assert.That(Assert.Throws<InvalidDataException>(() => UniterNpz.Read(missing))!.Message, Does.Contain("no 'norm_bb'"));

        var truncated = Path.Combine(_dir, "c.npz");
        WriteNpz(truncated, CompressionLevel.NoCompression, ("features", Npy("<f4", [2, 2], F32([1, 2, 3]))), ("norm_bb", Npy("<f4", [2, 6], F32(new float[12]))));
        Assert.That(Assert.Throws<InvalidDataException>(() => UniterNpz.Read(truncated))!.Message, Does.Contain("features.npy").And.Contain("header promises 16"));

        var objects = Path.Combine(_dir, "d.npz");
        WriteNpz(objects, CompressionLevel.NoCompression, ("features", Npy("|O", [1], [0])));
        Assert.That(Assert.Throws<InvalidDataException>(() => UniterNpz.Read(objects))!.Message, Does.Contain("'|O' is not supported"));

        var shape = Path.Combine(_dir, "e.npz");
        WriteNpz(shape, CompressionLevel.NoCompression, ("features", Npy("<f4", [2, 2], F32(new float[4]))), ("norm_bb", Npy("<f4", [3, 6], F32(new float[18]))));
        Assert.That(Assert.Throws<InvalidDataException>(() => UniterNpz.Read(shape))!.Message, Does.Contain("norm_bb has shape (3, 6), expected (2, 6)"));
    }

    [Test]
    public void LocationFeaturesPerFamily()
    {
        var r = new RegionFeatures
        {
            ImageId = "x", ImageWidth = 200, ImageHeight = 100, BoxCount = 2, FeatureSize = 3,
            Features = [1, 2, 3, 5, 6, 10],
            Boxes = [20, 10, 120, 60, 0, 0, 200, 100],
        };
        Assert.That(BoxFeatures.Lxmert(r), Is.EqualTo(new[] { 0.1f, 0.1f, 0.6f, 0.6f, 0, 0, 1, 1 }));

        var (features, locations, count) = BoxFeatures.Vilbert(r);
        Assert.That(count, Is.EqualTo(3));
        Assert.That(features, Is.EqualTo(new[] { 3f, 4f, 6.5f, 1, 2, 3, 5, 6, 10 }), "the mean feature comes first");
        // Area ratio: (60 - 10) * (120 - 20) / (200 * 100) = 0.25.
        Assert.That(locations, Is.EqualTo(new[] { 0, 0, 1, 1, 1, 0.1f, 0.1f, 0.6f, 0.6f, 0.25f, 0, 0, 1, 1, 1 }));

        // UNITER from pixel boxes: x1, y1, x2, y2, w, h normalised, then w * h.
        Assert.That(BoxFeatures.Uniter(r), Is.EqualTo(new[] { 0.1f, 0.1f, 0.6f, 0.6f, 0.5f, 0.5f, 0.25f, 0, 0, 1, 1, 1, 1, 1 }));

        using var batch = RegionBatch.Create([(features, locations, count), (r.Features[..3], new float[] { 0, 0, 1, 1, 1 }, 1)], 3, 5);
        Assert.That(batch.Features.shape, Is.EqualTo(new long[] { 2, 3, 3 }));
        Assert.That(batch.Mask.data<long>().ToArray(), Is.EqualTo(new long[] { 1, 1, 1, 1, 0, 0 }));
        Assert.That(batch.Locations[1, 1].abs().sum().item<float>(), Is.EqualTo(0f));

        var npzLike = r with { Boxes = null, ImageWidth = 0, ImageHeight = 0 };
        Assert.That(Assert.Throws<InvalidDataException>(() => BoxFeatures.Lxmert(npzLike))!.Message, Does.Contain("no pixel boxes"));
    }
}
