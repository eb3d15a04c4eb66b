using System.Globalization;
using System.Text;
using ModelZoo.Tokenization.Text;
using NUnit.Framework;

namespace ModelZoo.Tests.Tokenization;

public class UnicodeTextTests
{
    [Test]
    public void OwnNormalisationAgreesWithIcuOnEveryCodePointAndOnMarkSequences()
    {
        // The test host has ICU; the normaliser must give what ICU gives (characters assigned up to Unicode 14).
        int compared = 0;
        for (int cp = 0; cp < 0x110000; cp++)
        {
            if (cp is >= 0xD800 and <= 0xDFFF or 0xFFFE or 0xFFFF) continue;
            var rune = new Rune(cp);
            if (Rune.GetUnicodeCategory(rune) == UnicodeCategory.OtherNotAssigned) continue;
            var s = rune.ToString();
            Assert.That(UnicodeNormalizer.Normalize(s, NormalizationForm.FormD), Is.EqualTo(s.Normalize(NormalizationForm.FormD)), $"NFD U+{cp:X4}");
            Assert.That(UnicodeNormalizer.Normalize(s, NormalizationForm.FormC), Is.EqualTo(s.Normalize(NormalizationForm.FormC)), $"NFC U+{cp:X4}");
            compared++;
        }
        Assert.That(compared, Is.GreaterThan(140_000));

        var random = new Random(5);
        int[] pool = [.. "aeoAEOnNcCsuUzZ".Select(c => (int)c), 0x300, 0x301, 0x302, 0x303, 0x308, 0x323, 0x327, 0x328, 0x31B, 0x345, 0x3B1, 0x3B7, 0x3C9,
            0x5D0, 0x5B0, 0x5B9, 0x5C1, 0x5C2, 0x928, 0x93C, 0x94D, 0x9C7, 0x9BE, 0x9D7, 0xB47, 0xB3E, 0xB56, 0x304B, 0x3099, 0x309A,
            0x1100, 0x1161, 0x11A8, 0xAC00, 0xAC01, 0x1D158, 0x1D165, 0x1D16D, 0x212B, 0xF900, 0x1E9B, 0x0FB2, 0x0F71, 0x0F80];
        for (int i = 0; i < 20000; i++)
        {
            var sb = new StringBuilder();
            for (int k = random.Next(1, 10); k > 0; k--) PythonText.AppendCodePoint(sb, pool[random.Next(pool.Length)]);
            var s = sb.ToString();
            Assert.That(UnicodeNormalizer.Normalize(s, NormalizationForm.FormC), Is.EqualTo(s.Normalize(NormalizationForm.FormC)), $"NFC {Escape(s)}");
            Assert.That(UnicodeNormalizer.Normalize(s, NormalizationForm.FormD), Is.EqualTo(s.Normalize(NormalizationForm.FormD)), $"NFD {Escape(s)}");
        }
    }

    [Test]
    public void NormalisationPassesLoneSurrogatesAndNoncharactersThrough()
    {
        Assert.That(PythonText.Normalize("e\u0301\uD800x\uFFFE", NormalizationForm.FormC), Is.EqualTo("\u00E9\uD800x\uFFFE"));
        Assert.That(PythonText.Normalize("\u00E9\uDC00", NormalizationForm.FormD), Is.EqualTo("e\u0301\uDC00"));
    }

    [Test]
    public void PythonStringSemantics()
    {
        Assert.That(PythonText.Strip("\u001C\u00A0 a b \u2028\u3000"), Is.EqualTo("a b"));
        Assert.That(PythonText.SplitOnSpace(PythonText.CodePoints("a\u2028b\u001Fc  d")).Select(w => PythonText.FromCodePoints(w)), Is.EqualTo(new[] { "a", "b", "c", "d" }));
        Assert.That(PythonText.Lower("ΑΣ ΑΣ' Σ. ὈΔΥΣΣΕΎΣ"), Is.EqualTo("ας ας' σ. ὀδυσσεύς"));
        Assert.That(PythonText.CodePoints("a\uD800b"), Is.EqualTo(new[] { 'a', 0xFFFD, 'b' }));
    }

    static string Escape(string s) => string.Concat(s.EnumerateRunes().Select(r => $"\\u{r.Value:X4}"));
}
