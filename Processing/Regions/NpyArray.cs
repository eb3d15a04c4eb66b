using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace ModelZoo.Processing.Regions;

/// <summary>
/// A numeric array from a NumPy .npy file (or an entry of an .npz, which is a zip of .npy files, stored or
/// deflated). Header versions 1-3; little- and big-endian bool, int8-64, uint8-64, float16/32/64; C or Fortran order
/// (Fortran arrays are reordered to C order). Values are kept as doubles (exact for every type but int64 beyond 2^53,
/// kept separately as longs).
/// </summary>
public sealed class NpyArray
{
    NpyArray(string dtype, long[] shape, double[] values, long[]? integers)
    {
        DType = dtype;
        Shape = shape;
        _values = values;
        _integers = integers;
    }

    readonly double[] _values;
    readonly long[]? _integers;

    /// <summary>NumPy's type string, e.g. "&lt;f4".</summary>
    public string DType { get; }

    public long[] Shape { get; }

    public long Count => _values.Length;

    public int Rank => Shape.Length;

    public float[] ToFloats() => Array.ConvertAll(_values, v => (float)v);

    /// <summary>Integer values (for integer arrays exactly, also beyond 2^53).</summary>
    public long[] ToInt64s() => _integers is not null ? (long[])_integers.Clone() : Array.ConvertAll(_values, v => (long)v);

    public static NpyArray Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"npy file not found: {path}", path);
        using var stream = File.OpenRead(path);
        return Read(stream, path);
    }

    /// <summary>All arrays of an .npz by name (without ".npy").</summary>
    public static Dictionary<string, NpyArray> LoadNpz(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"npz file not found: {path}", path);
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(File.OpenRead(path), ZipArchiveMode.Read);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: not an .npz (zip) file ({e.Message})", e);
        }
        using (zip)
        {
            var arrays = new Dictionary<string, NpyArray>(StringComparer.Ordinal);
            foreach (var entry in zip.Entries)
            {
                var name = entry.FullName.EndsWith(".npy", StringComparison.Ordinal) ? entry.FullName[..^4] : entry.FullName;
                using var stream = entry.Open();
                var buffered = new MemoryStream();
                try
                {
                    stream.CopyTo(buffered);
                }
                catch (InvalidDataException e)
                {
                    throw new InvalidDataException($"{path}: entry {entry.FullName} is corrupt ({e.Message})", e);
                }
                buffered.Position = 0;
                arrays[name] = Read(buffered, $"{path}:{entry.FullName}");
            }
            return arrays;
        }
    }

    public static NpyArray Read(Stream stream, string source)
    {
        var reader = new BinaryReader(stream);
        byte[] magic = reader.ReadBytes(8);
        if (magic.Length < 8 || magic[0] != 0x93 || Encoding.ASCII.GetString(magic, 1, 5) != "NUMPY")
            throw new InvalidDataException($"{source}: not a .npy array (no \\x93NUMPY magic)");
        int major = magic[6];
        int headerLength = major switch
        {
            1 => reader.ReadUInt16(),
            2 or 3 => checked((int)reader.ReadUInt32()),
            _ => throw new InvalidDataException($"{source}: .npy format version {major}.{magic[7]} is not supported"),
        };
        var headerBytes = reader.ReadBytes(headerLength);
        if (headerBytes.Length < headerLength) throw new InvalidDataException($"{source}: the .npy header is truncated");
        var header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(headerBytes);
        var (dtype, fortran, shape) = ParseHeader(header, source);

        long count = 1;
        foreach (long d in shape) count = checked(count * d);
        var (kind, size, bigEndian) = ParseDType(dtype, source);
        long byteCount = checked(count * size);
        if (byteCount > Array.MaxLength) throw new InvalidDataException($"{source}: {byteCount} bytes of data is too large");
        var data = reader.ReadBytes((int)byteCount);
        if (data.Length < byteCount) throw new InvalidDataException($"{source}: {data.Length} bytes of data, the header promises {byteCount} ({dtype}, shape ({string.Join(", ", shape)}))");

        var values = new double[count];
        long[]? integers = kind is 'i' or 'u' ? new long[count] : null;
        for (long i = 0; i < count; i++)
        {
            var span = data.AsSpan((int)(i * size), size);
            if (bigEndian && size > 1) span = span.ToArray().Reverse().ToArray();
            (values[i], long integer) = Decode(kind, size, span);
            if (integers is not null) integers[i] = integer;
        }
        if (fortran && shape.Length > 1) (values, integers) = (ToCOrder(values, shape), integers is null ? null : ToCOrder(integers, shape));
        return new NpyArray(dtype, shape, values, integers);
    }

    static (double, long) Decode(char kind, int size, ReadOnlySpan<byte> b) => (kind, size) switch
    {
        ('f', 2) => ((double)BinaryPrimitives.ReadHalfLittleEndian(b), 0),
        ('f', 4) => (BinaryPrimitives.ReadSingleLittleEndian(b), 0),
        ('f', 8) => (BinaryPrimitives.ReadDoubleLittleEndian(b), 0),
        ('i', 1) => ((sbyte)b[0], (sbyte)b[0]),
        ('i', 2) => (BinaryPrimitives.ReadInt16LittleEndian(b), BinaryPrimitives.ReadInt16LittleEndian(b)),
        ('i', 4) => (BinaryPrimitives.ReadInt32LittleEndian(b), BinaryPrimitives.ReadInt32LittleEndian(b)),
        ('i', 8) => (BinaryPrimitives.ReadInt64LittleEndian(b), BinaryPrimitives.ReadInt64LittleEndian(b)),
        ('u', 1) or ('b', 1) => (b[0], b[0]),
        ('u', 2) => (BinaryPrimitives.ReadUInt16LittleEndian(b), BinaryPrimitives.ReadUInt16LittleEndian(b)),
        ('u', 4) => (BinaryPrimitives.ReadUInt32LittleEndian(b), BinaryPrimitives.ReadUInt32LittleEndian(b)),
        ('u', 8) => (BinaryPrimitives.ReadUInt64LittleEndian(b), (long)BinaryPrimitives.ReadUInt64LittleEndian(b)),
        _ => throw new InvalidOperationException("unreachable"),
    };

    static (char Kind, int Size, bool BigEndian) ParseDType(string dtype, string source)
    {
        if (dtype.Length < 3) throw new InvalidDataException($"{source}: dtype '{dtype}' is not supported");
        char order = dtype[0], kind = dtype[1];
        if (!int.TryParse(dtype.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out int size))
            throw new InvalidDataException($"{source}: dtype '{dtype}' is not supported");
        bool supported = kind switch
        {
            'f' => size is 2 or 4 or 8,
            'i' or 'u' => size is 1 or 2 or 4 or 8,
            'b' => size == 1,
            _ => false,
        };
        if (!supported || order is not ('<' or '>' or '|' or '='))
            throw new InvalidDataException($"{source}: dtype '{dtype}' is not supported (numeric arrays only; object arrays need pickle)");
        return (kind, size, order == '>' || (order == '=' && !BitConverter.IsLittleEndian));
    }

    // The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (36, 2048), }
    static (string DType, bool Fortran, long[] Shape) ParseHeader(string header, string source)
    {
        string Value(string key)
        {
            int at = header.IndexOf($"'{key}'", StringComparison.Ordinal);
            if (at < 0) at = header.IndexOf($"\"{key}\"", StringComparison.Ordinal);
            if (at < 0) throw new InvalidDataException($"{source}: the .npy header has no '{key}': {header.Trim()}");
            int colon = header.IndexOf(':', at);
            return header[(colon + 1)..].TrimStart();
        }
        var descr = Value("descr");
        if (descr.Length == 0 || descr[0] is not ('\'' or '"'))
            throw new InvalidDataException($"{source}: dtype {descr.Split(',')[0]} is not supported (structured arrays are not)");
        var dtype = descr[1..descr.IndexOf(descr[0], 1)];
        bool fortran = Value("fortran_order").StartsWith("True", StringComparison.Ordinal);
        var shapeText = Value("shape");
        if (!shapeText.StartsWith('(')) throw new InvalidDataException($"{source}: cannot read the shape in {header.Trim()}");
        var shape = shapeText[1..shapeText.IndexOf(')')]
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => long.TryParse(s.TrimEnd('L'), NumberStyles.None, CultureInfo.InvariantCulture, out long d) ? d
                : throw new InvalidDataException($"{source}: shape entry '{s}' is not a size"))
            .ToArray();
        return (dtype, fortran, shape);
    }

    static T[] ToCOrder<T>(T[] values, long[] shape)
    {
        // Fortran order: the first index varies fastest. Walk C order and compute the Fortran offset.
        var result = new T[values.Length];
        var index = new long[shape.Length];
        for (long c = 0; c < values.Length; c++)
        {
            long f = 0, stride = 1;
            for (int d = 0; d < shape.Length; d++) { f += index[d] * stride; stride *= shape[d]; }
            result[c] = values[f];
            for (int d = shape.Length - 1; d >= 0; d--)
            {
                if (++index[d] < shape[d]) break;
                index[d] = 0;
            }
        }
        return result;
    }
}
