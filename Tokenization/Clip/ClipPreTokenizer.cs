using System.Text;
using ModelZoo.Tokenization.Text;

namespace ModelZoo.Tokenization.Clip;

/// <summary>
/// CLIP's pre-split pattern, matched on code points as the Python <c>regex</c> module does (case-insensitive):
/// <c>&lt;|startoftext|&gt;|&lt;|endoftext|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>.
/// Whitespace between matches is skipped, and so is U+0345 (see <see cref="IsOther"/>). (.NET's Regex works on UTF-16 units and would not see letters outside the
/// Basic Multilingual Plane as letters.)
/// </summary>
public static class ClipPreTokenizer
{
    public static List<(int Offset, int Length)> Split(string text)
    {
        var spans = new List<(int, int)>();
        int i = 0;
        while (i < text.Length)
        {
            int cp = At(text, i, out int width);
            int end;
            if ((end = MatchLiteral(text, i)) > i) { }
            else if (PythonText.IsLetter(cp)) end = RunWhile(text, i, PythonText.IsLetter);
            else if (PythonText.IsNumber(cp)) end = i + width;
            else if (IsOther(cp)) end = RunWhile(text, i, IsOther);
            else { i += width; continue; }
            spans.Add((i, end - i));
            i = end;
        }
        return spans;
    }

    // [^\s\p{L}\p{N}] under IGNORECASE: the regex module also rejects a character one of whose case variants is a
    // letter; U+0345 (combining ypogegrammeni, which folds to iota) is the only such character, so it matches no
    // alternative and is dropped like whitespace.
    static bool IsOther(int cp) => !PythonText.IsWhiteSpaceProperty(cp) && !PythonText.IsLetter(cp) && !PythonText.IsNumber(cp) && cp != 0x345;

    static readonly string[] Literals = ["<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];

    // The first literal alternative that matches at i (case-insensitively: only 'ſ' folds onto these lower-case
    // ASCII letters after lower-casing), or i.
    static int MatchLiteral(string text, int i)
    {
        if (text[i] is not ('<' or '\'')) return i;
        foreach (var literal in Literals)
        {
            if (i + literal.Length > text.Length) continue;
            bool match = true;
            for (int k = 0; k < literal.Length && match; k++)
            {
                char c = text[i + k], l = literal[k];
                match = c == l || char.ToLowerInvariant(c) == l || (l == 's' && c == '\u017F');
            }
            if (match) return i + literal.Length;
        }
        return i;
    }

    static int RunWhile(string text, int i, Func<int, bool> predicate)
    {
        while (i < text.Length)
        {
            int cp = At(text, i, out int width);
            if (!predicate(cp)) break;
            i += width;
        }
        return i;
    }

    static int At(string text, int i, out int width)
    {
        if (Rune.DecodeFromUtf16(text.AsSpan(i), out var rune, out width) == System.Buffers.OperationStatus.Done) return rune.Value;
        width = 1;
        return text[i];
    }
}
