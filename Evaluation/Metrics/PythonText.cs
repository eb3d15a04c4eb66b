using System.Globalization;
using System.Text;

namespace ModelZoo.Evaluation.Metrics;

/// <summary>
/// The Python 3 <c>str</c> operations the reference metrics use, with Python's character classes: whitespace for
/// <c>strip()</c>/<c>split()</c>, Unicode digits for <c>\d</c>, and full lower-casing for <c>lower()</c>.
/// </summary>
public static class PythonText
{
    /// <summary>Python's <c>str.isspace</c> for one UTF-16 unit (every whitespace character is in the BMP).</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    /// <summary><c>s.strip()</c>.</summary>
    public static string Strip(string s)
    {
        int start = 0, end = s.Length;
        while (start < end && IsSpace(s[start])) start++;
        while (end > start && IsSpace(s[end - 1])) end--;
        return start == 0 && end == s.Length ? s : s[start..end];
    }

    /// <summary><c>s.split()</c>: runs of whitespace separate words; no empty words.</summary>
    public static List<string> Split(string s)
    {
        var words = new List<string>();
        int i = 0;
        while (i < s.Length)
        {
            while (i < s.Length && IsSpace(s[i])) i++;
            int start = i;
            while (i < s.Length && !IsSpace(s[i])) i++;
            if (i > start) words.Add(s[start..i]);
        }
        return words;
    }

    /// <summary>The regex class <c>\d</c> of a Python str pattern: any Unicode decimal digit (category Nd).</summary>
    public static bool IsDigitAt(string s, int index, out int length)
    {
        length = 0;
        if (index < 0 || index >= s.Length) return false;
        if (Rune.DecodeFromUtf16(s.AsSpan(index), out var rune, out length) != System.Buffers.OperationStatus.Done) return false;
        return Rune.GetUnicodeCategory(rune) == UnicodeCategory.DecimalDigitNumber;
    }

    /// <summary>Whether the code point ending at <paramref name="end"/> (exclusive) is a Unicode digit.</summary>
    public static bool IsDigitBefore(string s, int end)
    {
        if (end <= 0) return false;
        int start = end - 1;
        if (char.IsLowSurrogate(s[start]) && start > 0 && char.IsHighSurrogate(s[start - 1])) start--;
        return IsDigitAt(s, start, out int length) && start + length == end;
    }

    /// <summary>
    /// <c>s.lower()</c>: per-code-point lower-casing plus the two full mappings Python applies beyond the simple
    /// ones: U+0130 (capital I with dot) becomes "i" + U+0307, and capital sigma becomes final sigma at a word end.
    /// </summary>
    public static string Lower(string s)
    {
        var sb = new StringBuilder(s.Length);
        int i = 0;
        while (i < s.Length)
        {
            Rune.DecodeFromUtf16(s.AsSpan(i), out var rune, out int length);
            if (rune.Value == 0x130) sb.Append("i\u0307");
            else if (rune.Value == 0x3A3) sb.Append(IsFinalSigma(s, i) ? '\u03C2' : '\u03C3');
            else sb.Append(Rune.ToLowerInvariant(rune).ToString());
            i += length;
        }
        return sb.ToString();
    }

    // Unicode's Final_Sigma condition: a cased letter before (skipping case-ignorable characters), none after.
    static bool IsFinalSigma(string s, int index)
    {
        int j = index - 1;
        while (j >= 0 && IsCaseIgnorable(s[j])) j--;
        if (j < 0 || !IsCased(s[j])) return false;
        j = index + 1;
        while (j < s.Length && IsCaseIgnorable(s[j])) j++;
        return j >= s.Length || !IsCased(s[j]);
    }

    static bool IsCased(char c) => char.GetUnicodeCategory(c) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter;

    static bool IsCaseIgnorable(char c) =>
        c is '\'' or '.' or ':' or '\u00B7' or '\u2018' or '\u2019' or '\u2024' or '\uFE52' or '\uFF07' or '\uFF0E' ||
        char.GetUnicodeCategory(c) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format
            or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol;
}
