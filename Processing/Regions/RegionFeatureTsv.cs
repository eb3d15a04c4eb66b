using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace ModelZoo.Processing.Regions;

/// <summary>
/// Streams the bottom-up-attention TSV files of LXMERT and ViLBERT one line at a time (they are tens of GB; a line
/// holds one image, a few hundred KB of base64). Two layouts, told apart by the number of tab-separated fields:
/// LXMERT's 10 (img_id, img_h, img_w, objects_id, objects_conf, attrs_id, attrs_conf, num_boxes, boxes, features;
/// ids int64, the rest float32) and the original extractor's 6 (image_id, image_w, image_h, num_boxes, boxes,
/// features). A malformed line is an <see cref="InvalidDataException"/> naming the file, the line and the field.
/// </summary>
public static class RegionFeatureTsv
{
    public static IEnumerable<RegionFeatures> Read(string path, int? limit = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"region feature file not found: {path}", path);
        return ReadLines(path, limit);
    }

    static IEnumerable<RegionFeatures> ReadLines(string path, int? limit)
    {
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: false, new FileStreamOptions { BufferSize = 1 << 20 });
        int lineNumber = 0, count = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (line.Length == 0) continue; // csv skips empty rows
            if (limit is int l && count >= l) yield break;
            yield return Parse(line, path, lineNumber);
            count++;
        }
    }

    /// <summary>Parses one TSV line; <paramref name="source"/> and <paramref name="lineNumber"/> name it in errors.</summary>
    public static RegionFeatures Parse(string line, string source = "(tsv)", int lineNumber = 1)
    {
        var fields = line.Split('\t');
        string Where(string field) => $"{source}: line {lineNumber}, field {field}";
        int Int(int index, string field)
        {
            var text = fields[index].Trim();
            return int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value)
                ? value : throw new InvalidDataException($"{Where(field)}: '{Truncate(text)}' is not an integer");
        }
        byte[] Bytes(int index, string field, int? expected, int unit)
        {
            var bytes = Base64(fields[index], Where(field));
            if (expected is int e && bytes.Length != e)
                throw new InvalidDataException($"{Where(field)}: {bytes.Length} bytes after base64, expected {e}");
            if (bytes.Length % unit != 0)
                throw new InvalidDataException($"{Where(field)}: {bytes.Length} bytes is not a whole number of {unit}-byte values");
            return bytes;
        }

        if (fields.Length == 10)
        {
            // Fields are checked in file order, so an error names the first bad one.
            int height = Int(1, "img_h"), width = Int(2, "img_w"), n = Int(7, "num_boxes");
            if (n < 0) throw new InvalidDataException($"{Where("num_boxes")}: {n} boxes");
            var objectIds = Int64s(Bytes(3, "objects_id", n * 8, 8));
            var objectConfidences = Floats(Bytes(4, "objects_conf", n * 4, 4));
            var attributeIds = Int64s(Bytes(5, "attrs_id", n * 8, 8));
            var attributeConfidences = Floats(Bytes(6, "attrs_conf", n * 4, 4));
            var boxes = Floats(Bytes(8, "boxes", n * 16, 4));
            var (features, size) = FeatureRows(Bytes(9, "features", null, 4), n, Where("features"));
            return new RegionFeatures
            {
                ImageId = fields[0],
                ImageHeight = height,
                ImageWidth = width,
                ObjectIds = objectIds,
                ObjectConfidences = objectConfidences,
                AttributeIds = attributeIds,
                AttributeConfidences = attributeConfidences,
                BoxCount = n,
                Boxes = boxes,
                Features = features,
                FeatureSize = size,
            };
        }
        if (fields.Length == 6)
        {
            int width = Int(1, "image_w"), height = Int(2, "image_h"), n = Int(3, "num_boxes");
            if (n < 0) throw new InvalidDataException($"{Where("num_boxes")}: {n} boxes");
            var boxes = Floats(Bytes(4, "boxes", n * 16, 4));
            var (features, size) = FeatureRows(Bytes(5, "features", null, 4), n, Where("features"));
            return new RegionFeatures
            {
                ImageId = fields[0],
                ImageWidth = width,
                ImageHeight = height,
                BoxCount = n,
                Boxes = boxes,
                Features = features,
                FeatureSize = size,
            };
        }
        throw new InvalidDataException($"{source}: line {lineNumber}: {fields.Length} tab-separated fields; expected 10 (LXMERT: img_id, img_h, img_w, "
            + "objects_id, objects_conf, attrs_id, attrs_conf, num_boxes, boxes, features) or 6 (image_id, image_w, image_h, num_boxes, boxes, features)");
    }

    static (float[] Rows, int Size) FeatureRows(byte[] bytes, int boxes, string where)
    {
        var values = Floats(bytes);
        if (boxes == 0)
        {
            if (values.Length != 0) throw new InvalidDataException($"{where}: {values.Length} values for 0 boxes");
            return (values, 0);
        }
        if (values.Length % boxes != 0) throw new InvalidDataException($"{where}: {values.Length} values do not split into {boxes} boxes");
        return (values, values.Length / boxes);
    }

    static byte[] Base64(string text, string where)
    {
        var buffer = new byte[text.Length / 4 * 3 + 3];
        if (!Convert.TryFromBase64String(text.Trim(), buffer, out int written))
            throw new InvalidDataException($"{where}: not valid base64 ({text.Length} characters starting '{Truncate(text)}')");
        return buffer.AsSpan(0, written).ToArray();
    }

    static float[] Floats(byte[] bytes)
    {
        var values = new float[bytes.Length / 4];
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4));
        return values;
    }

    static long[] Int64s(byte[] bytes)
    {
        var values = new long[bytes.Length / 8];
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(i * 8));
        return values;
    }

    static string Truncate(string text) => text.Length <= 20 ? text : text[..20] + "...";

    /// <summary>Writes features as LXMERT's 10-field TSV line (for tests and for converting other formats).</summary>
    public static string Format(RegionFeatures r)
    {
        int n = r.BoxCount;
        string F(float[]? values, int count) => Convert.ToBase64String(FloatBytes(values ?? new float[count]));
        string L(long[]? values, int count)
        {
            var v = values ?? new long[count];
            var bytes = new byte[v.Length * 8];
            for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * 8), v[i]);
            return Convert.ToBase64String(bytes);
        }
        return string.Join('\t', r.ImageId, r.ImageHeight.ToString(CultureInfo.InvariantCulture), r.ImageWidth.ToString(CultureInfo.InvariantCulture),
            L(r.ObjectIds, n), F(r.ObjectConfidences, n), L(r.AttributeIds, n), F(r.AttributeConfidences, n),
            n.ToString(CultureInfo.InvariantCulture), F(r.Boxes, n * 4), F(r.Features, 0));
    }

    static byte[] FloatBytes(float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return bytes;
    }
}
