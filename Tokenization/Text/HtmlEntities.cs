using System.Globalization;
using System.Text;

namespace ModelZoo.Tokenization.Text;

/// <summary>
/// Python's <c>html.unescape</c>: named references from the HTML5 table (with and without the semicolon, longest
/// prefix first), decimal and hexadecimal references with the HTML5 replacements for invalid code points.
/// </summary>
public static class HtmlEntities
{
    const string TableResource = "ModelZoo.Tokenization.Resources.html5-entities.txt";
    const int MaxNameLength = 32;

    static readonly Lazy<Dictionary<string, string>> Named = new(LoadTable);

    // Windows-1252 meanings of 0x80-0x9F, NUL and CR, as the HTML5 parsing rules (and Python) replace them.
    static readonly Dictionary<int, string> InvalidReferences = new()
    {
        [0x00] = "\uFFFD", [0x0D] = "\r", [0x80] = "\u20AC", [0x81] = "\u0081", [0x82] = "\u201A", [0x83] = "\u0192",
        [0x84] = "\u201E", [0x85] = "\u2026", [0x86] = "\u2020", [0x87] = "\u2021", [0x88] = "\u02C6", [0x89] = "\u2030",
        [0x8A] = "\u0160", [0x8B] = "\u2039", [0x8C] = "\u0152", [0x8D] = "\u008D", [0x8E] = "\u017D", [0x8F] = "\u008F",
        [0x90] = "\u0090", [0x91] = "\u2018", [0x92] = "\u2019", [0x93] = "\u201C", [0x94] = "\u201D", [0x95] = "\u2022",
        [0x96] = "\u2013", [0x97] = "\u2014", [0x98] = "\u02DC", [0x99] = "\u2122", [0x9A] = "\u0161", [0x9B] = "\u203A",
        [0x9C] = "\u0153", [0x9D] = "\u009D", [0x9E] = "\u017E", [0x9F] = "\u0178",
    };

    // Code points a numeric reference may not produce: they are dropped.
    static bool IsInvalidCodePoint(long cp) => cp is >= 0x1 and <= 0x8 or 0xB or >= 0xE and <= 0x1F or >= 0x7F and <= 0x9F
        or >= 0xFDD0 and <= 0xFDEF || (cp & 0xFFFE) == 0xFFFE;

    public static string Unescape(string text)
    {
        if (!text.Contains('&')) return text;
        var sb = new StringBuilder(text.Length);
        int i = 0;
        while (i < text.Length)
        {
            if (text[i] != '&') { sb.Append(text[i++]); continue; }
            int consumed = TryReplace(text, i, sb);
            if (consumed == 0) sb.Append(text[i++]);
            else i += consumed;
        }
        return sb.ToString();
    }

    // Returns the characters consumed at text[at] ('&' included), or 0 when no reference starts there.
    static int TryReplace(string text, int at, StringBuilder sb)
    {
        int i = at + 1;
        if (i >= text.Length) return 0;
        if (text[i] == '#')
        {
            bool hex = i + 1 < text.Length && text[i + 1] is 'x' or 'X';
            int digitsStart = hex ? i + 2 : i + 1;
            int j = digitsStart;
            while (j < text.Length && (hex ? char.IsAsciiHexDigit(text[j]) : char.IsAsciiDigit(text[j]))) j++;
            if (j == digitsStart) return 0;
            long value = 0;
            for (int k = digitsStart; k < j && value <= 0x10FFFF; k++)
                value = value * (hex ? 16 : 10) + HexValue(text[k]);
            if (j < text.Length && text[j] == ';') j++;
            if (value <= 0x9F && InvalidReferences.TryGetValue((int)value, out var replacement)) sb.Append(replacement);
            else if (value is >= 0xD800 and <= 0xDFFF || value > 0x10FFFF) sb.Append('\uFFFD');
            else if (IsInvalidCodePoint(value)) { }
            else sb.Append(char.ConvertFromUtf32((int)value));
            return j - at;
        }

        // A name: 1 to 32 characters other than tab, newline, form feed, space, '<', '&', '#', ';', then an optional ';'.
        int end = i, count = 0;
        while (end < text.Length && count < MaxNameLength && text[end] is not ('\t' or '\n' or '\f' or ' ' or '<' or '&' or '#' or ';'))
        {
            end += char.IsHighSurrogate(text[end]) && end + 1 < text.Length && char.IsLowSurrogate(text[end + 1]) ? 2 : 1;
            count++;
        }
        if (count == 0) return 0;
        if (end < text.Length && text[end] == ';') end++;
        string name = text[i..end];
        var table = Named.Value;
        if (table.TryGetValue(name, out var value2)) { sb.Append(value2); return end - at; }
        // The longest prefix of at least two characters that is a name without semicolon (e.g. "&ampx" -> "&x").
        for (int length = name.Length - 1; length > 1; length--)
        {
            if (table.TryGetValue(name[..length], out var prefixValue))
            {
                sb.Append(prefixValue).Append(name, length, name.Length - length);
                return end - at;
            }
        }
        sb.Append('&').Append(name);
        return end - at;
    }

    static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    static Dictionary<string, string> LoadTable()
    {
        using var stream = typeof(HtmlEntities).Assembly.GetManifestResourceStream(TableResource)
            ?? throw new InvalidOperationException($"resource {TableResource} is missing from the ModelZoo.Tokenization assembly");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var table = new Dictionary<string, string>(2300, StringComparer.Ordinal);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#') continue;
            int tab = line.IndexOf('\t');
            var sb = new StringBuilder();
            foreach (var hex in line[(tab + 1)..].Split(' ')) sb.Append(char.ConvertFromUtf32(int.Parse(hex, NumberStyles.HexNumber)));
            table[line[..tab]] = sb.ToString();
        }
        return table;
    }
}
