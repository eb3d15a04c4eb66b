using ModelZoo.Tokenization;
using ModelZoo.Tokenization.Clip;
using ModelZoo.Tokenization.Text;
using NUnit.Framework;
using static ModelZoo.Tests.Tokenization.TokenizerFixtures;

namespace ModelZoo.Tests.Tokenization;

public class ClipBpeTests
{
    static ClipBpeTokenizer Clip => ClipBpeTokenizer.Default();

    [Test]
    public void FixtureHasAllSentences() => Assert.That(ClipCases().Count(), Is.EqualTo(60));

    [TestCaseSource(typeof(TokenizerFixtures), nameof(ClipCases))]
    public void BpeIdsTokensAndDecodingMatchTheReference(ClipCase c)
    {
        var ids = Clip.EncodeToIds(c.Text);
        Assert.That(ids, Is.EqualTo(c.BpeIds), "bpe_ids");
        Assert.That(Clip.Tokenize(c.Text), Is.EqualTo(c.BpeTokens), "bpe_tokens");
        Assert.That(Clip.Decode(ids), Is.EqualTo(c.Decoded), "decoded");
    }

    [TestCaseSource(typeof(TokenizerFixtures), nameof(ClipCases))]
    public void Tokenize77MatchesTheReference(ClipCase c)
    {
        var encoded = Clip.Encode(c.Text, EncodeOptions.ModelInput(ClipBpeTokenizer.ContextLength));
        Assert.That(encoded.InputIds, Is.EqualTo(c.Tokenize77));
        Assert.That(encoded.Truncated, Is.EqualTo(c.Truncated));
        Assert.That(encoded.AttentionMask.Sum(), Is.EqualTo(Math.Min(c.BpeIds.Length + 2, 77)));
    }

    [Test]
    public void TheFixtureMergesFileGivesTheEmbeddedVocabulary()
    {
        var fromFile = ClipBpeTokenizer.FromFile(ClipMergesPath);
        Assert.That(fromFile.VocabularySize, Is.EqualTo(49408));
        Assert.That(Clip.VocabularySize, Is.EqualTo(49408));
        for (int id = 0; id < 49408; id++)
            if (fromFile.IdToToken(id) != Clip.IdToToken(id)) Assert.Fail($"id {id} differs");
        Assert.That(Clip.SpecialTokens, Is.EqualTo(new SpecialTokenIds(Pad: 0, Start: 49406, End: 49407)));
    }

    [Test]
    public void TruncationKeepsTheEndTokenAndBatchesAreTensors()
    {
        var longText = string.Join(" ", Enumerable.Range(0, 200).Select(i => "cat"));
        var batch = Clip.EncodeBatch(["a photo of a cat", longText], EncodeOptions.ModelInput(77));
        using var tensors = batch.ToTensors();
        Assert.That(tensors.InputIds.shape, Is.EqualTo(new long[] { 2, 77 }));
        var row = tensors.InputIds[1].data<long>().ToArray();
        Assert.That(row[0], Is.EqualTo(49406));
        Assert.That(row[76], Is.EqualTo(49407));
        Assert.That(row[1..76], Is.All.EqualTo(2368L));
        // The end token is the row maximum: CLIP pools the text features at argmax.
        Assert.That(tensors.InputIds.argmax(1).data<long>().ToArray(), Is.EqualTo(new long[] { 6, 76 }));
    }

    [Test]
    public void DecodeCanSkipStartEndAndPadding()
    {
        var encoded = Clip.Encode("A photo of a CAT.", EncodeOptions.ModelInput(77));
        Assert.That(Clip.Decode(encoded.InputIds, skipSpecialTokens: true), Is.EqualTo("a photo of a cat . "));
    }

    [Test]
    public void PairsAreRefused() =>
        Assert.Throws<NotSupportedException>(() => Clip.EncodePair("a", "b"));

    [Test]
    public void HtmlUnescapeFollowsPython()
    {
        // Named references with and without ';', the longest-prefix rule, numeric references with HTML5 replacements.
        Assert.That(HtmlEntities.Unescape("fish &amp; chips &amp;amp; &ampx &notit; &lt &#39; &#x27; &#128; &#0; &#1; &#xD800; &#99999999999; &eacute &bogus; & &#; &#x;"),
            Is.EqualTo("fish & chips &amp; &x ¬it; < ' ' € \uFFFD  \uFFFD \uFFFD é &bogus; & &#; &#x;"));
    }

    [Test]
    public void CleanUpUsesPythonWhitespaceRules()
    {
        // The regex module's \s (White_Space) collapses runs; U+001C is not White_Space, so it stays inside the text
        // (Python's strip() would only remove it at the ends).
        Assert.That(ClipBpeTokenizer.Clean(" A\u00A0\u2028B\u001CC\t "), Is.EqualTo("a b\u001Cc"));
        Assert.That(ClipBpeTokenizer.Clean("\u001C x \u001F"), Is.EqualTo("x"));
        // NFC (the fixtures' stand-in for ftfy) composes decomposed accents.
        Assert.That(ClipBpeTokenizer.Clean("e\u0301cole"), Is.EqualTo("\u00E9cole"));
    }

    [Test]
    public void LettersOutsideTheBasicPlaneStayInTheirWord()
    {
        // 𝐀 (U+1D400) is a letter: one pre-token with the ASCII letters around it, as the regex module splits.
        Assert.That(ClipPreTokenizer.Split("ab𝐀cd, x"), Is.EqualTo(new[] { (0, 6), (6, 1), (8, 1) }));
        // U+0345 folds to a letter, so under IGNORECASE it matches no alternative and disappears.
        Assert.That(Clip.Decode(Clip.EncodeToIds("a\u0345:")), Is.EqualTo("a : "));
    }
}
