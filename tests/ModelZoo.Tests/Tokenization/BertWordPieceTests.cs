using ModelZoo.Tokenization;
using ModelZoo.Tokenization.Bert;
using NUnit.Framework;
using static ModelZoo.Tests.Tokenization.TokenizerFixtures;

namespace ModelZoo.Tests.Tokenization;

public class BertWordPieceTests
{
    static readonly Lazy<BertWordPieceTokenizer> Uncased = new(() => BertWordPieceTokenizer.FromVocabFile(BertVocabPath));

    [Test]
    public void FixtureHasAllSentences() => Assert.That(BertCases().Count(), Is.EqualTo(62));

    [TestCaseSource(typeof(TokenizerFixtures), nameof(BertCases))]
    public void TokensAndIdsMatchTheReference(BertCase c)
    {
        Assert.That(Uncased.Value.Tokenize(c.Text), Is.EqualTo(c.Tokens), "tokens");
        Assert.That(Uncased.Value.EncodeToIds(c.Text), Is.EqualTo(c.Ids), "ids");
    }

    [TestCaseSource(typeof(TokenizerFixtures), nameof(BertCases))]
    public void LxmertFeaturesOfLength20MatchTheReference(BertCase c)
    {
        var encoded = Uncased.Value.Encode(c.Text, EncodeOptions.ModelInput(20));
        Assert.That(encoded.InputIds, Is.EqualTo(c.InputIds20), "input_ids");
        Assert.That(encoded.AttentionMask, Is.EqualTo(c.InputMask20), "input_mask");
        Assert.That(encoded.TokenTypeIds, Is.EqualTo(c.SegmentIds20), "segment_ids");
        Assert.That(encoded.Truncated, Is.EqualTo(c.Ids.Length > 18));
    }

    [Test]
    public void EmbeddedUncasedVocabularyIsTheFixtureVocabulary()
    {
        var embedded = BertWordPieceTokenizer.BaseUncased();
        Assert.That(embedded.VocabularySize, Is.EqualTo(30522));
        var file = Uncased.Value;
        for (int id = 0; id < file.VocabularySize; id++)
            if (embedded.IdToToken(id) != file.IdToToken(id)) Assert.Fail($"id {id}: embedded '{embedded.IdToToken(id)}' vs file '{file.IdToToken(id)}'");
        foreach (var c in BertCases()) Assert.That(embedded.EncodeToIds(c.Text), Is.EqualTo(c.Ids), c.ToString());
    }

    [Test]
    public void SpecialTokenIdsComeFromTheVocabulary()
    {
        var special = Uncased.Value.SpecialTokens;
        Assert.That(special, Is.EqualTo(new SpecialTokenIds(Pad: 0, Unknown: 100, Start: 101, End: 102, Mask: 103)));
    }

    [Test]
    public void PairsGetSeparatorsTokenTypesAndLongestFirstTruncation()
    {
        var t = Uncased.Value;
        var a = t.EncodeToIds("how many dogs are in the picture ?");   // 8 ids
        var b = t.EncodeToIds("two dogs");                              // 2 ids
        var full = t.EncodePair("how many dogs are in the picture ?", "two dogs");
        Assert.That(full.InputIds, Is.EqualTo(new[] { 101 }.Concat(a).Append(102).Concat(b).Append(102)));
        Assert.That(full.TokenTypeIds, Is.EqualTo(Enumerable.Repeat(0, 10).Concat(Enumerable.Repeat(1, 3))));
        Assert.That(full.AttentionMask, Is.All.EqualTo(1));

        // Budget 9 - 3 = 6: the longer first sequence loses tokens until it is no longer longer (4 + 2).
        var cut = t.EncodePair("how many dogs are in the picture ?", "two dogs", new EncodeOptions { MaxLength = 9 });
        Assert.That(cut.InputIds, Is.EqualTo(new[] { 101 }.Concat(a.Take(4)).Append(102).Concat(b).Append(102)));
        Assert.That(cut.Truncated);

        // Equal lengths: the second loses first (the reference pops from b on a tie): (3, 3) -> (3, 2) for a budget of 5.
        int Id(string w) => t.TokenToId(w)!.Value;
        var tie = t.EncodePair("one two three", "four five six", new EncodeOptions { MaxLength = 8 });
        Assert.That(tie.InputIds, Is.EqualTo(new[] { 101, Id("one"), Id("two"), Id("three"), 102, Id("four"), Id("five"), 102 }));
        Assert.That(tie.TokenTypeIds, Is.EqualTo(new[] { 0, 0, 0, 0, 0, 1, 1, 1 }));

        // Padding to the max length: mask and token types 0 on the padding.
        var padded = t.EncodePair("one", "two", new EncodeOptions { MaxLength = 8, Padding = Padding.MaxLength });
        Assert.That(padded.InputIds, Is.EqualTo(new[] { 101, Id("one"), 102, Id("two"), 102, 0, 0, 0 }));
        Assert.That(padded.AttentionMask, Is.EqualTo(new[] { 1, 1, 1, 1, 1, 0, 0, 0 }));
        Assert.That(padded.TokenTypeIds, Is.EqualTo(new[] { 0, 0, 0, 1, 1, 0, 0, 0 }));
    }

    [Test]
    public void BatchesPadToTheLongestAndBecomeInt64Tensors()
    {
        var batch = Uncased.Value.EncodeBatch(["a dog", "is this a cat or a dog ?", ""]);
        Assert.That(batch.SequenceLength, Is.EqualTo(10));
        using var tensors = batch.ToTensors();
        Assert.That(tensors.InputIds.shape, Is.EqualTo(new long[] { 3, 10 }));
        Assert.That(tensors.InputIds.dtype, Is.EqualTo(TorchSharp.torch.ScalarType.Int64));
        Assert.That(tensors.AttentionMask.sum().item<long>(), Is.EqualTo(4 + 10 + 2));
        Assert.That(tensors.InputIds[2].data<long>().ToArray(), Is.EqualTo(new long[] { 101, 102, 0, 0, 0, 0, 0, 0, 0, 0 }));
        Assert.That(tensors.TokenTypeIds.sum().item<long>(), Is.EqualTo(0));
    }

    [Test]
    public void CasedVocabularyKeepsCaseAndAccents()
    {
        // A small cased vocabulary: no lower-casing, no accent stripping (do_lower_case=False as UNITER uses it).
        var vocab = WordPieceVocabulary.FromTokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Café", "café", "cafe", "The", "the", "##s", ",", "[", "]"]);
        var cased = new BertWordPieceTokenizer(vocab, lowerCase: false);
        Assert.That(cased.Name, Is.EqualTo("bert-wordpiece-cased"));
        Assert.That(cased.Tokenize("The Café, the cafes [MASK] [mask]"), Is.EqualTo(new[] { "The", "Café", ",", "the", "cafe", "##s", "[MASK]", "[", "[UNK]", "]" }));
        var uncased = new BertWordPieceTokenizer(vocab, lowerCase: true);
        Assert.That(uncased.Tokenize("The Café"), Is.EqualTo(new[] { "the", "cafe" }));
    }

    [Test]
    public void GreekFinalSigmaIsLowerCasedAsPythonDoes()
    {
        // Python's str.lower() turns a word-final capital sigma into 'ς' (U+03C2), elsewhere into 'σ'.
        var vocab = WordPieceVocabulary.FromTokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "οδος", "σοφια", "##σ", "οδο", "##ς"]);
        var t = new BertWordPieceTokenizer(vocab);
        Assert.That(t.Tokenize("ΟΔΟΣ ΣΟΦΙΑ"), Is.EqualTo(new[] { "οδος", "σοφια" }).Or.EqualTo(new[] { "οδο", "##ς", "σοφια" }));
        Assert.That(ModelZoo.Tokenization.Text.PythonText.Lower("ΟΔΟΣ ΣΟΦΙΑ Σ ΑΣ."), Is.EqualTo("οδος σοφια σ ας."));
        Assert.That(ModelZoo.Tokenization.Text.PythonText.Lower("İ"), Is.EqualTo("i\u0307"));
    }

    [Test]
    public void DecodeGluesContinuationsAndCanSkipSpecialTokens()
    {
        var t = Uncased.Value;
        var encoded = t.Encode("Crème brûlée at the Hôtel", EncodeOptions.ModelInput(12));
        Assert.That(t.Decode(encoded.InputIds, skipSpecialTokens: true), Is.EqualTo("creme brulee at the hotel"));
        Assert.That(t.Decode(encoded.InputIds), Does.StartWith("[CLS] creme brulee at the hotel [SEP] [PAD]"));
    }

    [Test]
    public void VocabularyErrorsNameTheFile()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-vocab-" + Guid.NewGuid() + ".txt");
        var e = Assert.Throws<FileNotFoundException>(() => BertWordPieceTokenizer.FromVocabFile(missing));
        Assert.That(e!.Message, Does.Contain(missing));
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "[PAD]\nhello\n");
            var bad = Assert.Throws<InvalidDataException>(() => BertWordPieceTokenizer.FromVocabFile(path));
            Assert.That(bad!.Message, Does.Contain(path).And.Contain("[UNK]"));
        }
        finally { File.Delete(path); }
    }
}
