using System.Globalization;
using System.Text;
using ModelZoo.Tokenization.Text;

namespace ModelZoo.Tokenization.Bert;

/// <summary>
/// BERT's basic tokenization, exactly as the reference (Google BERT / pytorch-pretrained-bert / LXMERT) does it on
/// code points: drop NUL, U+FFFD and control characters; whitespace to spaces; spaces around CJK ideographs; split
/// on Python whitespace; lower-case and strip accents (NFD, drop Mn) when uncased; split off punctuation. The
/// never-split tokens ([CLS], [SEP], ...) pass through unchanged when written exactly so.
/// </summary>
public sealed class BertBasicTokenizer(bool lowerCase, IReadOnlySet<string> neverSplit)
{
    readonly HashSet<int> _neverSplitStarts = neverSplit.Where(t => t.Length > 0).Select(t => char.ConvertToUtf32(t, 0)).ToHashSet();

    public static readonly IReadOnlySet<string> DefaultNeverSplit = new HashSet<string>(["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"], StringComparer.Ordinal);

    public bool LowerCase { get; } = lowerCase;

    public List<string> Tokenize(string text)
    {
        var cleaned = CleanAndSpaceChinese(PythonText.CodePoints(text));
        var pieces = new List<int[]>();
        foreach (var word in PythonText.SplitOnSpace(cleaned))
        {
            var token = word;
            if (_neverSplitStarts.Contains(token[0]) && neverSplit.Contains(PythonText.FromCodePoints(token))) { pieces.Add(token); continue; }
            if (LowerCase) token = StripAccents(PythonText.Lower(token));
            SplitOnPunctuation(token, pieces);
        }
        // The reference joins the pieces with spaces and splits again on whitespace; pieces hold no whitespace, so
        // that only drops empty pieces.
        var result = new List<string>(pieces.Count);
        foreach (var piece in pieces)
            if (piece.Length > 0) result.Add(PythonText.FromCodePoints(piece));
        return result;
    }

    static int[] CleanAndSpaceChinese(int[] codePoints)
    {
        var output = new List<int>(codePoints.Length + 8);
        foreach (int cp in codePoints)
        {
            if (cp == 0 || cp == 0xFFFD || IsControl(cp)) continue;
            if (IsWhitespace(cp)) output.Add(' ');
            else if (IsChineseCharacter(cp)) { output.Add(' '); output.Add(cp); output.Add(' '); }
            else output.Add(cp);
        }
        return output.ToArray();
    }

    static int[] StripAccents(int[] codePoints)
    {
        bool plain = true;
        foreach (int cp in codePoints) if (cp >= 0xC0) { plain = false; break; }
        if (plain) return codePoints; // nothing below U+00C0 decomposes or is a mark
        var decomposed = PythonText.Normalize(PythonText.FromCodePoints(codePoints), NormalizationForm.FormD);
        var output = new List<int>(decomposed.Length);
        foreach (int cp in PythonText.CodePoints(decomposed))
            if (PythonText.Category(cp) != UnicodeCategory.NonSpacingMark) output.Add(cp);
        return output.ToArray();
    }

    static void SplitOnPunctuation(int[] token, List<int[]> output)
    {
        int start = 0;
        for (int i = 0; i < token.Length; i++)
        {
            if (!IsPunctuation(token[i])) continue;
            if (i > start) output.Add(token[start..i]);
            output.Add([token[i]]);
            start = i + 1;
        }
        if (start < token.Length) output.Add(token[start..]);
    }

    /// <summary>Space, tab, newline, carriage return, or category Zs.</summary>
    public static bool IsWhitespace(int cp) => cp is ' ' or '\t' or '\n' or '\r' || PythonText.Category(cp) == UnicodeCategory.SpaceSeparator;

    /// <summary>Any category C* (control, format, surrogate, private use, unassigned) except tab, newline, carriage return.</summary>
    public static bool IsControl(int cp)
    {
        if (cp is '\t' or '\n' or '\r') return false;
        return PythonText.Category(cp) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
            or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;
    }

    /// <summary>All non-letter, non-digit ASCII, and category P*.</summary>
    public static bool IsPunctuation(int cp)
    {
        if (cp is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126) return true;
        return PythonText.Category(cp) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    /// <summary>The CJK Unified Ideograph blocks BERT surrounds with spaces (not Hiragana, Katakana or Hangul).</summary>
    public static bool IsChineseCharacter(int cp) => cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF
        or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF
        or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}
