using System.Globalization;
using System.Text;

namespace ModelZoo.Tokenization.Text;

/// <summary>
/// Canonical Unicode normalisation (NFD, NFC) from an embedded table, so that tokenization does not depend on ICU:
/// with globalization-invariant mode (as the modelzoo CLI runs) <c>string.Normalize</c> leaves non-ASCII text
/// unchanged. Lone surrogates and noncharacters pass through, as in Python.
/// </summary>
public static class UnicodeNormalizer
{
    const string TableResource = "ModelZoo.Tokenization.Resources.unicode-normalization.txt";
    const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7, LCount = 19, VCount = 21, TCount = 28;
    const int NCount = VCount * TCount, SCount = LCount * NCount;

    sealed class Tables
    {
        public readonly Dictionary<int, int[]> Decomposition = new();
        public readonly Dictionary<int, byte> CombiningClass = new();
        public readonly Dictionary<long, int> Composition = new();
    }

    static readonly Lazy<Tables> Data = new(Load);

    /// <summary>The canonical combining class of a code point (0 for starters).</summary>
    public static int CombiningClass(int cp) => Data.Value.CombiningClass.TryGetValue(cp, out byte c) ? c : 0;

    public static string Normalize(string text, NormalizationForm form)
    {
        if (form is not (NormalizationForm.FormC or NormalizationForm.FormD))
            throw new NotSupportedException($"normalisation form {form} is not supported (NFC and NFD are)");
        // Below U+00C0 nothing decomposes; below U+0300 every character is also a composed starter.
        if (IsBelow(text, form == NormalizationForm.FormC ? '\u0300' : '\u00C0')) return text;
        var decomposed = Decompose(text);
        if (form == NormalizationForm.FormC) Compose(decomposed);
        var sb = new StringBuilder(text.Length);
        foreach (int cp in decomposed) PythonText.AppendCodePoint(sb, cp);
        return sb.ToString();
    }

    static bool IsBelow(string text, char limit)
    {
        foreach (char c in text) if (c >= limit) return false;
        return true;
    }

    static List<int> Decompose(string text)
    {
        var tables = Data.Value;
        var output = new List<int>(text.Length + 8);
        for (int i = 0; i < text.Length; i++)
        {
            int cp = text[i];
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                cp = char.ConvertToUtf32(text[i], text[++i]);
            DecomposeInto(cp, output, tables);
        }
        // Canonical ordering: a stable sort of each run of non-starters by combining class.
        for (int i = 1; i < output.Count; i++)
        {
            int ccc = CombiningClass(output[i]);
            if (ccc == 0) continue;
            int j = i;
            while (j > 0 && CombiningClass(output[j - 1]) > ccc)
            {
                (output[j - 1], output[j]) = (output[j], output[j - 1]);
                j--;
            }
        }
        return output;
    }

    static void DecomposeInto(int cp, List<int> output, Tables tables)
    {
        if (cp is >= SBase and < SBase + SCount)
        {
            int s = cp - SBase;
            output.Add(LBase + s / NCount);
            output.Add(VBase + s % NCount / TCount);
            if (s % TCount != 0) output.Add(TBase + s % TCount);
            return;
        }
        if (tables.Decomposition.TryGetValue(cp, out var parts))
            foreach (int part in parts) DecomposeInto(part, output, tables);
        else
            output.Add(cp);
    }

    // The canonical composition algorithm over a decomposed, canonically ordered sequence.
    static void Compose(List<int> cps)
    {
        var tables = Data.Value;
        int starter = -1, lastClass = -1, write = 0;
        for (int read = 0; read < cps.Count; read++)
        {
            int cp = cps[read];
            int ccc = CombiningClass(cp);
            if (starter >= 0 && (lastClass == -1 || lastClass < ccc) && TryCompose(cps[starter], cp, tables, out int composite))
            {
                cps[starter] = composite;
                continue;
            }
            if (ccc == 0) { starter = write; lastClass = -1; }
            else lastClass = ccc;
            cps[write++] = cp;
        }
        cps.RemoveRange(write, cps.Count - write);
    }

    static bool TryCompose(int first, int second, Tables tables, out int composite)
    {
        if (first is >= LBase and < LBase + LCount && second is >= VBase and < VBase + VCount)
        {
            composite = SBase + ((first - LBase) * VCount + second - VBase) * TCount;
            return true;
        }
        if (first is >= SBase and < SBase + SCount && (first - SBase) % TCount == 0 && second is > TBase and < TBase + TCount)
        {
            composite = first + second - TBase;
            return true;
        }
        return tables.Composition.TryGetValue(((long)first << 21) | (uint)second, out composite);
    }

    static Tables Load()
    {
        using var stream = typeof(UnicodeNormalizer).Assembly.GetManifestResourceStream(TableResource)
            ?? throw new InvalidOperationException($"resource {TableResource} is missing from the ModelZoo.Tokenization assembly");
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var tables = new Tables();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#') continue;
            var f = line.Split(' ');
            int cp = int.Parse(f[1], NumberStyles.HexNumber);
            if (f[0] == "C") { tables.CombiningClass[cp] = byte.Parse(f[2], CultureInfo.InvariantCulture); continue; }
            bool excluded = f[^1] == "X";
            var parts = f[2..(excluded ? f.Length - 1 : f.Length)].Select(h => int.Parse(h, NumberStyles.HexNumber)).ToArray();
            tables.Decomposition[cp] = parts;
            if (!excluded) tables.Composition[((long)parts[0] << 21) | (uint)parts[1]] = cp;
        }
        return tables;
    }
}
