using System.Buffers.Binary;
using System.Text;

namespace ModelZoo.Weights.Pickle;

/// <summary>One member of a zip archive: where its (stored, uncompressed) bytes start in the file and how many there are.</summary>
internal sealed record ZipMember(string Name, int Method, long DataOffset, long Size);

/// <summary>
/// Reads the central directory of a zip archive (with ZIP64) as torch.save writes it, and locates each member's data
/// through its local header. Every offset and size is checked against the file before it is used.
/// </summary>
internal static class ZipDirectory
{
    const uint EndOfCentralDirectory = 0x06054b50, Zip64Locator = 0x07064b50, Zip64End = 0x06064b50;
    const uint CentralHeader = 0x02014b50, LocalHeader = 0x04034b50;

    public static Dictionary<string, ZipMember> Read(FileStream stream)
    {
        long fileLength = stream.Length;
        if (fileLength < 22) throw new PickleException($"a zip archive of {fileLength} bytes is too short for its end record: truncated");
        // The end record sits in the last 22 + 65535 (comment) bytes.
        int tailLength = (int)Math.Min(fileLength, 22 + 65535);
        var tail = ReadAt(stream, fileLength - tailLength, tailLength);
        int end = -1;
        for (int i = tail.Length - 22; i >= 0; i--)
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(i)) == EndOfCentralDirectory) { end = i; break; }
        if (end < 0) throw new PickleException("no zip end-of-central-directory record: the archive is truncated or not a zip file");
        long endOffset = fileLength - tailLength + end;
        var record = tail.AsSpan(end);
        long count = BinaryPrimitives.ReadUInt16LittleEndian(record[10..]);
        long directorySize = BinaryPrimitives.ReadUInt32LittleEndian(record[12..]);
        long directoryOffset = BinaryPrimitives.ReadUInt32LittleEndian(record[16..]);

        if (count == 0xFFFF || directorySize == 0xFFFFFFFF || directoryOffset == 0xFFFFFFFF)
        {
            if (endOffset < 20) throw new PickleException("a ZIP64 archive without its locator");
            var locator = ReadAt(stream, endOffset - 20, 20);
            if (BinaryPrimitives.ReadUInt32LittleEndian(locator) != Zip64Locator) throw new PickleException("a ZIP64 archive without its locator");
            long zip64Offset = (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(locator.AsSpan(8)), long.MaxValue);
            if (zip64Offset < 0 || zip64Offset > endOffset - 20 - 56) throw new PickleException($"the ZIP64 end record offset {zip64Offset} is outside the file");
            var zip64 = ReadAt(stream, zip64Offset, 56);
            if (BinaryPrimitives.ReadUInt32LittleEndian(zip64) != Zip64End) throw new PickleException("the ZIP64 end record is missing");
            count = Clamp(BinaryPrimitives.ReadUInt64LittleEndian(zip64.AsSpan(32)));
            directorySize = Clamp(BinaryPrimitives.ReadUInt64LittleEndian(zip64.AsSpan(40)));
            directoryOffset = Clamp(BinaryPrimitives.ReadUInt64LittleEndian(zip64.AsSpan(48)));
            endOffset = zip64Offset;
        }
        if (directoryOffset > endOffset || directorySize > endOffset - directoryOffset)
            throw new PickleException($"the zip central directory [{directoryOffset}, +{directorySize}) lies outside the file: truncated");
        if (count > directorySize / 46) throw new PickleException($"the zip directory claims {count} members in {directorySize} bytes");

        var directory = ReadAt(stream, directoryOffset, (int)Math.Min(directorySize, int.MaxValue));
        var members = new Dictionary<string, ZipMember>(StringComparer.Ordinal);
        int at = 0;
        for (long n = 0; n < count; n++)
        {
            if (at + 46 > directory.Length || BinaryPrimitives.ReadUInt32LittleEndian(directory.AsSpan(at)) != CentralHeader)
                throw new PickleException($"zip central directory entry {n} is malformed");
            var entry = directory.AsSpan(at);
            ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(entry[8..]);
            int method = BinaryPrimitives.ReadUInt16LittleEndian(entry[10..]);
            long compressed = BinaryPrimitives.ReadUInt32LittleEndian(entry[20..]);
            long size = BinaryPrimitives.ReadUInt32LittleEndian(entry[24..]);
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(entry[28..]);
            int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(entry[30..]);
            int commentLength = BinaryPrimitives.ReadUInt16LittleEndian(entry[32..]);
            long localOffset = BinaryPrimitives.ReadUInt32LittleEndian(entry[42..]);
            if (at + 46 + nameLength + extraLength + commentLength > directory.Length)
                throw new PickleException($"zip central directory entry {n} runs past the directory");
            string name = Encoding.UTF8.GetString(entry.Slice(46, nameLength));
            ParseZip64Extra(entry.Slice(46 + nameLength, extraLength), ref size, ref compressed, ref localOffset);
            at += 46 + nameLength + extraLength + commentLength;
            if ((flags & 1) != 0) throw new PickleException($"zip member '{name}' is encrypted");
            if (localOffset < 0 || localOffset > directoryOffset - 30)
                throw new PickleException($"zip member '{name}' has its local header at {localOffset}, outside the data area");
            var local = ReadAt(stream, localOffset, 30);
            if (BinaryPrimitives.ReadUInt32LittleEndian(local) != LocalHeader)
                throw new PickleException($"zip member '{name}' has no local header at {localOffset}");
            long dataOffset = localOffset + 30 + BinaryPrimitives.ReadUInt16LittleEndian(local.AsSpan(26)) + BinaryPrimitives.ReadUInt16LittleEndian(local.AsSpan(28));
            if (compressed < 0 || dataOffset > directoryOffset || compressed > directoryOffset - dataOffset)
                throw new PickleException($"zip member '{name}' ({compressed} bytes at {dataOffset}) runs past the data area: truncated");
            if (method == 0 && compressed != size)
                throw new PickleException($"zip member '{name}' is stored but its sizes differ ({compressed} and {size})");
            if (!members.TryAdd(name, new ZipMember(name, method, dataOffset, method == 0 ? size : compressed)))
                throw new PickleException($"the zip archive holds '{name}' twice");
        }
        return members;
    }

    static long Clamp(ulong value) => value > long.MaxValue ? long.MaxValue : (long)value;

    static void ParseZip64Extra(ReadOnlySpan<byte> extra, ref long size, ref long compressed, ref long localOffset)
    {
        while (extra.Length >= 4)
        {
            ushort id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
            int length = BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]);
            if (4 + length > extra.Length) return;
            if (id == 1)
            {
                var field = extra.Slice(4, length);
                if (size == 0xFFFFFFFF && field.Length >= 8) { size = Clamp(BinaryPrimitives.ReadUInt64LittleEndian(field)); field = field[8..]; }
                if (compressed == 0xFFFFFFFF && field.Length >= 8) { compressed = Clamp(BinaryPrimitives.ReadUInt64LittleEndian(field)); field = field[8..]; }
                if (localOffset == 0xFFFFFFFF && field.Length >= 8) localOffset = Clamp(BinaryPrimitives.ReadUInt64LittleEndian(field));
                return;
            }
            extra = extra[(4 + length)..];
        }
    }

    public static byte[] ReadAt(FileStream stream, long offset, int count)
    {
        var buffer = new byte[count];
        stream.Seek(offset, SeekOrigin.Begin);
        stream.ReadExactly(buffer);
        return buffer;
    }
}
