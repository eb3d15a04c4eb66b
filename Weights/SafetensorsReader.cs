using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Weights;

/// <summary>
/// Reads a .safetensors file: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
/// shape and byte range, then the raw little-endian data. The header is validated in full before any tensor is
/// read (known dtypes, sizes that match shapes, ranges inside the file that neither overlap nor leave holes,
/// no duplicate names), and each tensor is read straight from the file into its own buffer.
/// </summary>
public sealed class SafetensorsReader : ICheckpointReader, ICheckpointDirectReader
{
    /// <summary>Headers larger than this are refused (the reference implementation uses the same bound).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    readonly FileStream _stream;
    readonly Dictionary<string, (TensorEntry Entry, long Begin, long End)> _index = new(StringComparer.Ordinal);
    readonly List<TensorEntry> _entries = new();
    readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);
    readonly long _dataStart;

    public string Path { get; }
    public string Format => "safetensors";
    public IReadOnlyList<TensorEntry> Entries => _entries;
    public IReadOnlyDictionary<string, string> Metadata => _metadata;

    public SafetensorsReader(string path)
    {
        Path = path;
        try
        {
            _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(path, "cannot open: " + e.Message, inner: e);
        }
        try
        {
            _dataStart = ParseHeader();
        }
        catch
        {
            _stream.Dispose();
            throw;
        }
    }

    long ParseHeader()
    {
        long fileLength = _stream.Length;
        if (fileLength == 0) throw Error("the file is empty (0 bytes)");
        if (fileLength < 8) throw Error($"truncated: {fileLength} bytes, too short for the 8-byte header length");
        Span<byte> lengthBytes = stackalloc byte[8];
        _stream.ReadExactly(lengthBytes);
        ulong headerLength = BitConverter.ToUInt64(lengthBytes);
        if (headerLength > (ulong)(fileLength - 8))
            throw Error($"header length {headerLength} is larger than the rest of the file ({fileLength - 8} bytes): truncated or not a safetensors file");
        if (headerLength > MaxHeaderBytes) throw Error($"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
        if (headerLength < 2) throw Error($"header length {headerLength} is too small for a JSON object");

        var header = new byte[headerLength];
        _stream.ReadExactly(header);
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;

        var ranges = new List<(long Begin, long End, string Name)>();
        try
        {
            ParseHeaderJson(header, ranges, dataLength);
        }
        catch (JsonException e)
        {
            throw Error("the header is not valid JSON: " + e.Message);
        }
        catch (Exception e) when (e is DecoderFallbackException or InvalidOperationException or ArgumentException)
        {
            throw Error("the header is not valid UTF-8 JSON: " + e.Message);
        }

        // The data must be covered exactly: sorted ranges touch end to start, from 0 to the end of the file.
        ranges.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long expected = 0;
        foreach (var (begin, end, name) in ranges)
        {
            if (begin < expected) throw Error($"byte range [{begin}, {end}) overlaps the previous tensor", name);
            if (begin > expected) throw Error($"bytes [{expected}, {begin}) before this tensor belong to no tensor (a hole in the data)", name);
            expected = end;
        }
        if (expected != dataLength)
            throw Error(expected < dataLength
                ? $"{dataLength - expected} bytes at the end of the data belong to no tensor"
                : $"the tensors need {expected} data bytes but the file has {dataLength}: truncated");
        return dataStart;
    }

    void ParseHeaderJson(byte[] header, List<(long, long, string)> ranges, long dataLength)
    {
        var reader = new Utf8JsonReader(header, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 8 });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) throw Error("the header is not a JSON object");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            if (reader.TokenType != JsonTokenType.PropertyName) throw Error("malformed header");
            string name = reader.GetString()!;
            if (!seen.Add(name)) throw Error("the header names this tensor twice", name);
            if (!reader.Read()) throw Error("the header ends early");
            using var value = JsonDocument.ParseValue(ref reader);
            if (name == "__metadata__")
            {
                if (value.RootElement.ValueKind != JsonValueKind.Object) throw Error("__metadata__ is not an object");
                foreach (var property in value.RootElement.EnumerateObject())
                    _metadata[property.Name] = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString()! : property.Value.GetRawText();
                continue;
            }
            var (entry, begin, end) = ParseEntry(name, value.RootElement, dataLength);
            _index[name] = (entry, begin, end);
            _entries.Add(entry);
            ranges.Add((begin, end, name));
        }
        if (reader.TokenType != JsonTokenType.EndObject) throw Error("the header ends early");
        // Anything but padding spaces after the object is an error.
        for (long i = reader.BytesConsumed; i < header.Length; i++)
            if (header[i] != (byte)' ' && header[i] != 0) throw Error($"unexpected bytes after the header object at header offset {i}");
    }

    (TensorEntry, long, long) ParseEntry(string name, JsonElement element, long dataLength)
    {
        if (element.ValueKind != JsonValueKind.Object) throw Error("entry is not an object", name);
        if (!element.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Error("entry has no dtype", name);
        string dtype = dtypeElement.GetString()!;
        if (!StorageDtype.IsKnown(dtype)) throw Error($"unknown dtype '{dtype}'", name);
        if (!element.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw Error("entry has no shape", name);
        var shape = new long[shapeElement.GetArrayLength()];
        int i = 0;
        long elements = 1;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long size) || size < 0)
                throw Error($"bad shape {shapeElement.GetRawText()}", name);
            shape[i++] = size;
            elements = size == 0 ? 0 : (elements > long.MaxValue / size ? throw Error($"shape {shapeElement.GetRawText()} is too large", name) : elements * size);
        }
        if (!element.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw Error("entry has no data_offsets [begin, end]", name);
        if (offsets[0].ValueKind != JsonValueKind.Number || offsets[1].ValueKind != JsonValueKind.Number
            || !offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end))
            throw Error($"bad data_offsets {offsets.GetRawText()}", name);
        if (begin < 0 || end < begin) throw Error($"data_offsets [{begin}, {end}] are not an increasing range", name);
        if (end > dataLength) throw Error($"data_offsets [{begin}, {end}] run past the end of the data ({dataLength} bytes): the file is truncated or its header is wrong", name);
        int elementSize = StorageDtype.ElementSize(dtype);
        if (elements > long.MaxValue / elementSize || elements * elementSize != end - begin)
            throw Error($"shape {FormatShape(shape)} of {dtype} needs {elements * (long)elementSize} bytes but data_offsets [{begin}, {end}] give {end - begin}", name);
        return (new TensorEntry(name, dtype, shape), begin, end);
    }

    public Tensor Read(string name)
    {
        if (!_index.TryGetValue(name, out var item)) throw Error("no such tensor in the file", name);
        var (entry, begin, end) = item;
        var result = empty(entry.Shape, StorageDtype.ToScalarType(entry.Dtype));
        try
        {
            if (end > begin)
            {
                _stream.Seek(_dataStart + begin, SeekOrigin.Begin);
                TensorBytes.ReadFromStream(_stream, result, end - begin, Path, name);
            }
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    public bool TryReadInto(string name, Tensor destination)
    {
        if (!_index.TryGetValue(name, out var item)) throw Error("no such tensor in the file", name);
        var (entry, begin, end) = item;
        if (destination.device_type != DeviceType.CPU || !destination.is_contiguous() || destination.dtype != StorageDtype.ToScalarType(entry.Dtype)
            || !destination.shape.SequenceEqual(entry.Shape))
            return false;
        if (end > begin)
        {
            _stream.Seek(_dataStart + begin, SeekOrigin.Begin);
            TensorBytes.ReadFromStream(_stream, destination, end - begin, Path, name);
        }
        return true;
    }

    static string FormatShape(long[] shape) => "[" + string.Join(", ", shape) + "]";

    CheckpointException Error(string message, string? key = null) => new(Path, message, key);

    public void Dispose() => _stream.Dispose();
}
