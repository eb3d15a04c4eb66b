using System.Text;
using ModelZoo.Tokenization.Text;

namespace ModelZoo.Tokenization.Gpt2;

/// <summary>
/// GPT-2's pre-split pattern on code points, as the Python <c>regex</c> module (and tiktoken, and Hugging Face's
/// ByteLevel pre-tokenizer) match it:
/// <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>.
/// Every character belongs to exactly one piece; a space before a word travels with the word.
/// </summary>
public static class Gpt2PreTokenizer
{
    public static List<(int Offset, int Length)> Split(string text)
    {
        var spans = new List<(int, int)>();
        int i = 0;
        while (i < text.Length)
        {
            int end = Match(text, i);
            spans.Add((i, end - i));
            i = end;
        }
        return spans;
    }

    static readonly string[] Contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];

    static int Match(string text, int i)
    {
        int cp = At(text, i, out int width);
        if (cp == '\'')
            foreach (var c in Contractions)
                if (string.CompareOrdinal(text, i, c, 0, c.Length) == 0) return i + c.Length;

        // " ?X+" for X = letters, numbers, other: the optional space only when the class follows it.
        int start = i, first = cp, firstWidth = width;
        if (cp == ' ' && i + 1 < text.Length)
        {
            first = At(text, i + 1, out firstWidth);
            start = i + 1;
        }
        if (start > i || cp != ' ')
        {
            if (PythonText.IsLetter(first)) return RunWhile(text, start + firstWidth, PythonText.IsLetter);
            if (PythonText.IsNumber(first)) return RunWhile(text, start + firstWidth, PythonText.IsNumber);
            if (IsOther(first)) return RunWhile(text, start + firstWidth, IsOther);
        }

        // Whitespace: "\s+(?!\S)" keeps the last space for the next word when a non-space follows; "\s+" otherwise.
        if (PythonText.IsWhiteSpaceProperty(cp))
        {
            int end = RunWhile(text, i + width, PythonText.IsWhiteSpaceProperty);
            if (end == text.Length) return end;
            int last = end - 1;
            return last > i ? last : end;
        }
        return i + width; // not reached: every character is a letter, number, other or whitespace
    }

    static bool IsOther(int cp) => !PythonText.IsWhiteSpaceProperty(cp) && !PythonText.IsLetter(cp) && !PythonText.IsNumber(cp);

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
