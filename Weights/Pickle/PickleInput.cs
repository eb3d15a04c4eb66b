namespace ModelZoo.Weights.Pickle;

/// <summary>
/// Buffered reading of a byte range of a seekable stream. Every read is checked against the end of the range
/// before anything is allocated, so a declared length can never make the reader allocate past the data it has.
/// </summary>
internal sealed class PickleInput
{
    readonly Stream _stream;
    readonly long _end;
    readonly byte[] _buffer = new byte[1 << 16];
    long _bufferStart;
    int _bufferLength;

    public PickleInput(Stream stream, long start, long length)
    {
        _stream = stream;
        Position = start;
        _end = start + length;
        _bufferStart = start;
    }

    /// <summary>Absolute position in the stream of the next byte to read.</summary>
    public long Position { get; private set; }

    public long Remaining => _end - Position;

    public byte ReadByte()
    {
        if (Position >= _end) throw new PickleException($"the pickle ends early (at byte {Position}) without a STOP opcode");
        if (Position >= _bufferStart + _bufferLength) Fill();
        return _buffer[Position++ - _bufferStart];
    }

    void Fill()
    {
        _bufferStart = Position;
        _stream.Seek(Position, SeekOrigin.Begin);
        int want = (int)Math.Min(_buffer.Length, _end - Position);
        _bufferLength = 0;
        while (_bufferLength < want)
        {
            int n = _stream.Read(_buffer, _bufferLength, want - _bufferLength);
            if (n == 0) throw new PickleException($"the file ends at byte {_bufferStart + _bufferLength}, inside the pickle");
            _bufferLength += n;
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes; refuses a count larger than what is left.</summary>
    public byte[] ReadBytes(long count, string what)
    {
        if (count < 0 || count > Remaining)
            throw new PickleException($"{what} declares {count} bytes at byte {Position} but only {Math.Max(0, Remaining)} remain");
        var result = new byte[count];
        for (int i = 0; i < result.Length;)
        {
            if (Position >= _bufferStart + _bufferLength) Fill();
            int available = (int)Math.Min(_bufferStart + _bufferLength - Position, result.Length - i);
            Array.Copy(_buffer, Position - _bufferStart, result, i, available);
            Position += available;
            i += available;
        }
        return result;
    }

    public void Skip(long count, string what)
    {
        if (count < 0 || count > Remaining)
            throw new PickleException($"{what} declares {count} bytes at byte {Position} but only {Math.Max(0, Remaining)} remain");
        Position += count;
    }

    public ulong ReadUInt(int bytes)
    {
        ulong value = 0;
        for (int i = 0; i < bytes; i++) value |= (ulong)ReadByte() << (8 * i);
        return value;
    }

    /// <summary>A line of a text opcode, without its newline; at most <paramref name="maxLength"/> bytes.</summary>
    public byte[] ReadLine(int maxLength = 1 << 20)
    {
        var line = new List<byte>();
        while (true)
        {
            byte b = ReadByte();
            if (b == (byte)'\n') return line.ToArray();
            if (line.Count >= maxLength) throw new PickleException($"a text opcode's line is longer than {maxLength} bytes (at byte {Position})");
            line.Add(b);
        }
    }
}
