using System.Globalization;
using System.Text;

namespace ModelZoo.Tokenization.Text;

/// <summary>
/// The pieces of Python's string semantics that the reference tokenizers rely on, over Unicode code points:
/// <c>str.isspace</c>, <c>str.split()</c>, <c>str.strip()</c>, <c>str.lower()</c> (full mapping with Final_Sigma),
/// the regex module's <c>\s</c> (White_Space), <c>unicodedata.category</c>, and normalisation that never throws.
/// </summary>
public static class PythonText
{
    /// <summary>The code points of <paramref name="text"/>; a lone surrogate becomes U+FFFD (Python would fail to encode it).</summary>
    public static int[] CodePoints(string text)
    {
        var result = new List<int>(text.Length);
        for (int i = 0; i < text.Length;)
        {
            if (Rune.DecodeFromUtf16(text.AsSpan(i), out var rune, out int consumed) == System.Buffers.OperationStatus.Done)
                result.Add(rune.Value);
            else
                result.Add(0xFFFD);
            i += Math.Max(consumed, 1);
        }
        return result.ToArray();
    }

    public static string FromCodePoints(ReadOnlySpan<int> codePoints)
    {
        var sb = new StringBuilder(codePoints.Length);
        foreach (int cp in codePoints) AppendCodePoint(sb, cp);
        return sb.ToString();
    }

    public static void AppendCodePoint(StringBuilder sb, int cp)
    {
        if (cp < 0x10000) sb.Append((char)cp);
        else sb.Append(char.ConvertFromUtf32(cp));
    }

    /// <summary>Replaces lone surrogates by U+FFFD so that the text can be normalised and UTF-8 encoded.</summary>
    public static string ReplaceLoneSurrogates(string text)
    {
        int i = 0;
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            if (char.IsSurrogate(c)) break;
        }
        if (i >= text.Length) return text;
        return FromCodePoints(CodePoints(text));
    }

    public static UnicodeCategory Category(int cp) =>
        cp is >= 0xD800 and <= 0xDFFF ? UnicodeCategory.Surrogate : Rune.GetUnicodeCategory(new Rune(cp));

    public static bool IsLetter(int cp) => Category(cp) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter
        or UnicodeCategory.TitlecaseLetter or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter;

    public static bool IsNumber(int cp) => Category(cp) is UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    /// <summary>Python's <c>str.isspace()</c> for one code point (bidirectional class WS, B or S, or category Zs).</summary>
    public static bool IsSpace(int cp) => cp is >= 0x09 and <= 0x0D or >= 0x1C and <= 0x20 or 0x85 or 0xA0 or 0x1680
        or >= 0x2000 and <= 0x200A or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    /// <summary>The Unicode White_Space property: what <c>\s</c> matches in the <c>regex</c> module.</summary>
    public static bool IsWhiteSpaceProperty(int cp) => cp is >= 0x09 and <= 0x0D or 0x20 or 0x85 or 0xA0 or 0x1680
        or >= 0x2000 and <= 0x200A or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    /// <summary>Python's <c>str.split()</c> with no argument: runs of <see cref="IsSpace"/> separate words, none are empty.</summary>
    public static List<int[]> SplitOnSpace(ReadOnlySpan<int> codePoints)
    {
        var words = new List<int[]>();
        int start = -1;
        for (int i = 0; i <= codePoints.Length; i++)
        {
            bool space = i == codePoints.Length || IsSpace(codePoints[i]);
            if (space && start >= 0) { words.Add(codePoints[start..i].ToArray()); start = -1; }
            else if (!space && start < 0) start = i;
        }
        return words;
    }

    /// <summary>Python's <c>str.strip()</c> (every whitespace character is in the BMP, so UTF-16 units suffice).</summary>
    public static string Strip(string text)
    {
        int start = 0, end = text.Length;
        while (start < end && IsSpace(text[start])) start++;
        while (end > start && IsSpace(text[end - 1])) end--;
        return start == 0 && end == text.Length ? text : text[start..end];
    }

    /// <summary>
    /// Python's <c>str.lower()</c>: the simple lowercase mapping, except U+0130 (İ) which becomes "i" + U+0307, and
    /// capital sigma which becomes final sigma (ς) at the end of a word (the Final_Sigma condition).
    /// </summary>
    public static int[] Lower(ReadOnlySpan<int> codePoints)
    {
        var result = new List<int>(codePoints.Length);
        for (int i = 0; i < codePoints.Length; i++)
        {
            int cp = codePoints[i];
            if (cp < 0x80) result.Add(cp is >= 'A' and <= 'Z' ? cp + 32 : cp);
            else if (cp == 0x130) { result.Add('i'); result.Add(0x307); }
            else if (cp == 0x3A3) result.Add(IsFinalSigma(codePoints, i) ? 0x3C2 : 0x3C3);
            else if (cp is >= 0xD800 and <= 0xDFFF) result.Add(cp);
            else result.Add(Rune.ToLowerInvariant(new Rune(cp)).Value);
        }
        return result.ToArray();
    }

    public static string Lower(string text)
    {
        bool ascii = true;
        foreach (char c in text) if (c >= 0x80) { ascii = false; break; }
        if (!ascii) return FromCodePoints(Lower(CodePoints(text)));
        return string.Create(text.Length, text, static (span, source) =>
        {
            for (int i = 0; i < span.Length; i++) span[i] = source[i] is >= 'A' and <= 'Z' ? (char)(source[i] + 32) : source[i];
        });
    }

    // Final_Sigma: a cased letter before (skipping case-ignorable characters) and no cased letter after.
    static bool IsFinalSigma(ReadOnlySpan<int> cps, int i)
    {
        int j = i - 1;
        while (j >= 0 && IsCaseIgnorable(cps[j])) j--;
        if (j < 0 || !IsCased(cps[j])) return false;
        j = i + 1;
        while (j < cps.Length && IsCaseIgnorable(cps[j])) j++;
        return j == cps.Length || !IsCased(cps[j]);
    }

    static bool IsCased(int cp) => Category(cp) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
        || cp is 0xAA or 0xBA or >= 0x2160 and <= 0x217F or >= 0x24B6 and <= 0x24E9 or >= 0x1F130 and <= 0x1F149
            or >= 0x1F150 and <= 0x1F169 or >= 0x1F170 and <= 0x1F189;

    static bool IsCaseIgnorable(int cp) => Category(cp) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.Format or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol
        || cp is '\'' or '.' or ':' or 0xB7 or 0x387 or 0x55F or 0x5F4 or 0x2018 or 0x2019 or 0x2024 or 0x2027
            or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A;

    /// <summary>
    /// NFC or NFD as Python's unicodedata.normalize computes them, independent of ICU and of the globalization mode
    /// (see <see cref="UnicodeNormalizer"/>); lone surrogates and noncharacters pass through.
    /// </summary>
    public static string Normalize(string text, NormalizationForm form) => UnicodeNormalizer.Normalize(text, form);
}
