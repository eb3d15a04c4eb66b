namespace ModelZoo.Tokenization.Text;

/// <summary>
/// GPT-2's reversible byte-to-character table (used by CLIP too): printable Latin-1 bytes map to themselves, the
/// other 68 bytes to U+0100 onwards, so every UTF-8 byte is a visible character in the vocabulary.
/// </summary>
public static class ByteLevel
{
    // Initialised before Table (static initialisers run in textual order).
    static readonly char[] ByteToChar = new char[256];
    static readonly Dictionary<char, byte> CharToByte = new();

    /// <summary>The characters of bytes in vocabulary order: printable bytes first, then the rest.</summary>
    public static IReadOnlyList<(byte Byte, char Char)> Table { get; } = BuildTable();

    static (byte, char)[] BuildTable()
    {
        var printable = new List<int>();
        for (int b = '!'; b <= '~'; b++) printable.Add(b);
        for (int b = 0xA1; b <= 0xAC; b++) printable.Add(b);
        for (int b = 0xAE; b <= 0xFF; b++) printable.Add(b);
        var table = printable.Select(b => ((byte)b, (char)b)).ToList();
        int next = 0;
        for (int b = 0; b < 256; b++)
            if (!printable.Contains(b)) table.Add(((byte)b, (char)(256 + next++)));
        foreach (var (b, c) in table)
        {
            ByteToChar[b] = c;
            CharToByte[c] = b;
        }
        return table.ToArray();
    }

    public static char Encode(byte b) => ByteToChar[b];

    /// <summary>The byte of a byte-level character, or null for a character outside the table.</summary>
    public static byte? Decode(char c) => CharToByte.TryGetValue(c, out byte b) ? b : null;
}
