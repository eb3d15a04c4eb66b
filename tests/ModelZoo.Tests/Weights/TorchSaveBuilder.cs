using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Weights;

/// <summary>
/// Emits pickle opcodes one by one (independent of the library's reader), to build torch.save-shaped files and
/// hand-crafted hostile ones in tests.
/// </summary>
public sealed class PickleWriter
{
    readonly MemoryStream _out = new();

    public PickleWriter Raw(params byte[] bytes) { _out.Write(bytes); return this; }
    public PickleWriter Op(char op) => Raw((byte)op);
    public PickleWriter Proto(int protocol = 2) => Raw(0x80, (byte)protocol);
    public PickleWriter Stop() => Op('.');
    public PickleWriter Mark() => Op('(');
    public PickleWriter None() => Op('N');
    public PickleWriter Bool(bool value) => Raw(value ? (byte)0x88 : (byte)0x89);
    public PickleWriter Global(string module, string name) => Op('c').Raw(Encoding.ASCII.GetBytes(module + "\n" + name + "\n"));
    public PickleWriter Reduce() => Op('R');
    public PickleWriter Build() => Op('b');
    public PickleWriter NewObj() => Raw(0x81);
    public PickleWriter EmptyTuple() => Op(')');
    public PickleWriter Tuple() => Op('t');
    public PickleWriter Tuple1() => Raw(0x85);
    public PickleWriter Tuple2() => Raw(0x86);
    public PickleWriter EmptyDict() => Op('}');
    public PickleWriter EmptyList() => Op(']');
    public PickleWriter Append() => Op('a');
    public PickleWriter Appends() => Op('e');
    public PickleWriter SetItem() => Op('s');
    public PickleWriter SetItems() => Op('u');
    public PickleWriter BinPersId() => Op('Q');
    public PickleWriter Put(int index) => index < 256 ? Raw((byte)'q', (byte)index) : Op('r').Raw(BitConverter.GetBytes(index));
    public PickleWriter Get(int index) => index < 256 ? Raw((byte)'h', (byte)index) : Op('j').Raw(BitConverter.GetBytes(index));

    public PickleWriter Str(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        return Op('X').Raw(BitConverter.GetBytes(bytes.Length)).Raw(bytes);
    }

    public PickleWriter Int(long value)
    {
        if (value is >= 0 and < 256) return Raw((byte)'K', (byte)value);
        if (value is >= 0 and < 65536) return Op('M').Raw(BitConverter.GetBytes((ushort)value));
        if (value is >= int.MinValue and <= int.MaxValue) return Op('J').Raw(BitConverter.GetBytes((int)value));
        return Raw(0x8a, 8).Raw(BitConverter.GetBytes(value));
    }

    public PickleWriter Float(double value)
    {
        var bytes = BitConverter.GetBytes(value);
        Array.Reverse(bytes);
        return Op('G').Raw(bytes);
    }

    public PickleWriter IntTuple(long[] values)
    {
        if (values.Length == 0) return EmptyTuple();
        Mark();
        foreach (var v in values) Int(v);
        return Tuple();
    }

    /// <summary>OrderedDict() as torch.save writes a state dict; follow with Mark() ... SetItems().</summary>
    public PickleWriter OrderedDict() => Global("collections", "OrderedDict").EmptyTuple().Reduce();

    /// <summary>_rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict()).</summary>
    public PickleWriter Tensor(string storageKey, string storageType, long storageElements, long offset, long[] size, long[] stride)
    {
        Global("torch._utils", "_rebuild_tensor_v2").Mark();
        Mark().Str("storage").Global("torch", storageType).Str(storageKey).Str("cpu").Int(storageElements).Tuple().BinPersId();
        Int(offset).IntTuple(size).IntTuple(stride).Bool(false).OrderedDict();
        return Tuple().Reduce();
    }

    public byte[] ToArray() => _out.ToArray();
}

/// <summary>Builds torch.save files: the zip layout (own zip writer: stored members, optional ZIP64) and the legacy layout.</summary>
public static class TorchSaveBuilder
{
    public static string StorageType(ScalarType type) => type switch
    {
        ScalarType.Float32 => "FloatStorage", ScalarType.Float64 => "DoubleStorage", ScalarType.Float16 => "HalfStorage",
        ScalarType.BFloat16 => "BFloat16Storage", ScalarType.Int64 => "LongStorage", ScalarType.Int32 => "IntStorage",
        ScalarType.Int16 => "ShortStorage", ScalarType.Int8 => "CharStorage", ScalarType.Byte => "ByteStorage",
        ScalarType.Bool => "BoolStorage", _ => throw new ArgumentException(type.ToString()),
    };

    static long[] ContiguousStrides(long[] shape)
    {
        var stride = new long[shape.Length];
        long acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { stride[i] = acc; acc *= shape[i]; }
        return stride;
    }

    /// <summary>The pickle of an OrderedDict of tensors (each with its own storage, key = its index) and the storages' bytes.</summary>
    public static (byte[] Pickle, Dictionary<string, byte[]> Storages) StateDict(IReadOnlyDictionary<string, Tensor> tensors, bool legacy = false)
    {
        var w = new PickleWriter().Proto(2).OrderedDict().Mark();
        var storages = new Dictionary<string, byte[]>();
        foreach (var (name, tensor) in tensors)
        {
            string key = storages.Count.ToString();
            var contiguous = tensor.contiguous();
            storages[key] = contiguous.bytes.ToArray();
            w.Str(name);
            if (legacy) LegacyTensor(w, key, StorageType(tensor.dtype), tensor.numel(), tensor.shape);
            else w.Tensor(key, StorageType(tensor.dtype), tensor.numel(), 0, tensor.shape, ContiguousStrides(tensor.shape));
        }
        return (w.SetItems().Stop().ToArray(), storages);
    }

    static void LegacyTensor(PickleWriter w, string key, string storageType, long elements, long[] shape)
    {
        w.Global("torch._utils", "_rebuild_tensor_v2").Mark();
        w.Mark().Str("storage").Global("torch", storageType).Str(key).Str("cpu").Int(elements).None().Tuple().BinPersId();
        w.Int(0).IntTuple(shape).IntTuple(ContiguousStrides(shape)).Bool(false).OrderedDict();
        w.Tuple().Reduce();
    }

    public static byte[] Zip(IReadOnlyDictionary<string, Tensor> tensors, string archive = "archive")
    {
        var (pickle, storages) = StateDict(tensors);
        return Zip(pickle, storages, archive);
    }

    /// <summary>A torch.save zip: archive/data.pkl, archive/byteorder, archive/data/KEY, archive/version.</summary>
    public static byte[] Zip(byte[] pickle, IReadOnlyDictionary<string, byte[]> storages, string archive = "archive", bool zip64 = false,
        ISet<string>? deflate = null)
    {
        var members = new List<(string, byte[])> { (archive + "/data.pkl", pickle), (archive + "/byteorder", "little"u8.ToArray()) };
        members.AddRange(storages.Select(kv => (archive + "/data/" + kv.Key, kv.Value)));
        members.Add((archive + "/version", "3\n"u8.ToArray()));
        return ZipFile(members, zip64, deflate);
    }

    /// <summary>The legacy (pre-1.6) layout: magic, protocol, sys info, pickle, key list, then count + bytes per storage.</summary>
    public static byte[] Legacy(IReadOnlyDictionary<string, Tensor> tensors)
    {
        var (pickle, storages) = StateDict(tensors, legacy: true);
        var output = new MemoryStream();
        output.Write(new PickleWriter().Proto(2).Raw(0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19).Stop().ToArray());
        output.Write(new PickleWriter().Proto(2).Int(1001).Stop().ToArray());
        output.Write(new PickleWriter().Proto(2).EmptyDict().Mark().Str("protocol_version").Int(1001).Str("little_endian").Bool(true).SetItems().Stop().ToArray());
        output.Write(pickle);
        var keys = storages.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        var list = new PickleWriter().Proto(2).EmptyList().Mark();
        foreach (var key in keys) list.Str(key);
        output.Write(list.Appends().Stop().ToArray());
        foreach (var key in keys)
        {
            var tensor = tensors.Values.ElementAt(int.Parse(key));
            output.Write(BitConverter.GetBytes(tensor.numel()));
            output.Write(storages[key]);
        }
        return output.ToArray();
    }

    public static byte[] ZipFile(IReadOnlyList<(string Name, byte[] Data)> members, bool zip64 = false, ISet<string>? deflate = null)
    {
        var output = new MemoryStream();
        var central = new MemoryStream();
        foreach (var (name, original) in members)
        {
            bool compress = deflate?.Contains(name) == true;
            var data = original;
            if (compress)
            {
                var compressed = new MemoryStream();
                using (var d = new DeflateStream(compressed, CompressionLevel.Optimal, leaveOpen: true)) d.Write(original);
                data = compressed.ToArray();
            }
            var nameBytes = Encoding.UTF8.GetBytes(name);
            long offset = output.Position;
            uint crc = Crc32(original);
            var zip64Extra = zip64 ? Zip64Extra(original.Length, data.Length, offset) : Array.Empty<byte>();
            // local header
            Write32(output, 0x04034b50); Write16(output, 45); Write16(output, 0); Write16(output, compress ? 8 : 0);
            Write32(output, 0); Write32(output, crc);
            Write32(output, zip64 ? 0xFFFFFFFF : (uint)data.Length); Write32(output, zip64 ? 0xFFFFFFFF : (uint)original.Length);
            Write16(output, nameBytes.Length); Write16(output, zip64Extra.Length);
            output.Write(nameBytes); output.Write(zip64Extra); output.Write(data);
            // central directory entry
            Write32(central, 0x02014b50); Write16(central, 45); Write16(central, 45); Write16(central, 0); Write16(central, compress ? 8 : 0);
            Write32(central, 0); Write32(central, crc);
            Write32(central, zip64 ? 0xFFFFFFFF : (uint)data.Length); Write32(central, zip64 ? 0xFFFFFFFF : (uint)original.Length);
            Write16(central, nameBytes.Length); Write16(central, zip64Extra.Length); Write16(central, 0); Write16(central, 0); Write16(central, 0);
            Write32(central, 0); Write32(central, zip64 ? 0xFFFFFFFF : (uint)offset);
            central.Write(nameBytes); central.Write(zip64Extra);
        }
        long centralOffset = output.Position;
        output.Write(central.ToArray());
        if (zip64)
        {
            long zip64End = output.Position;
            Write32(output, 0x06064b50); Write64(output, 44); Write16(output, 45); Write16(output, 45); Write32(output, 0); Write32(output, 0);
            Write64(output, members.Count); Write64(output, members.Count); Write64(output, central.Length); Write64(output, centralOffset);
            Write32(output, 0x07064b50); Write32(output, 0); Write64(output, zip64End); Write32(output, 1);
        }
        Write32(output, 0x06054b50); Write16(output, 0); Write16(output, 0);
        Write16(output, zip64 ? 0xFFFF : members.Count); Write16(output, zip64 ? 0xFFFF : members.Count);
        Write32(output, zip64 ? 0xFFFFFFFF : (uint)central.Length); Write32(output, zip64 ? 0xFFFFFFFF : (uint)centralOffset);
        Write16(output, 0);
        return output.ToArray();
    }

    static byte[] Zip64Extra(long size, long compressed, long offset)
    {
        var extra = new byte[28];
        BinaryPrimitives.WriteUInt16LittleEndian(extra, 1);
        BinaryPrimitives.WriteUInt16LittleEndian(extra.AsSpan(2), 24);
        BinaryPrimitives.WriteInt64LittleEndian(extra.AsSpan(4), size);
        BinaryPrimitives.WriteInt64LittleEndian(extra.AsSpan(12), compressed);
        BinaryPrimitives.WriteInt64LittleEndian(extra.AsSpan(20), offset);
        return extra;
    }

    static void Write16(Stream s, int v) { Span<byte> b = stackalloc byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)v); s.Write(b); }
    static void Write32(Stream s, uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); s.Write(b); }
    static void Write64(Stream s, long v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteInt64LittleEndian(b, v); s.Write(b); }

    static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320 & (uint)-(int)(crc & 1));
        }
        return ~crc;
    }
}
