using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;
using ModelZoo.Tests.Support;
using ModelZoo.Tokenization;
using ModelZoo.Tokenization.Gpt2;
using ModelZoo.Tokenization.Text;
using NUnit.Framework;

namespace ModelZoo.Tests.Tokenization;

public class Gpt2TokenizerTests
{
    static Gpt2Tokenizer Gpt2 => Gpt2Tokenizer.Default();

    // Sentences from both tokenizer fixtures plus whitespace-heavy ones.
    static IEnumerable<string> Corpus() => TokenizerFixtures.BertCases().Select(c => c.Text)
        .Concat(TokenizerFixtures.ClipCases().Select(c => c.Text))
        .Concat(["  leading", "trailing  ", "a  b   c\n\n d\t\te", "line\r\nbreak", " ", "\n", "It's 'quoted' y'all'll", "x\u00A0y\u3000z"]);

    [Test]
    public void KnownGpt2Ids()
    {
        Assert.That(Gpt2.EncodeToIds("Hello world"), Is.EqualTo(new[] { 15496, 995 }));
        Assert.That(Gpt2.EncodeToIds("The quick brown fox"), Is.EqualTo(new[] { 464, 2068, 7586, 21831 }));
        Assert.That(Gpt2.EncodeToIds("<|endoftext|>"), Is.EqualTo(new[] { 50256 }));
        Assert.That(Gpt2.VocabularySize, Is.EqualTo(50257));
        Assert.That(Gpt2.Tokenize("Hello world"), Is.EqualTo(new[] { "Hello", "Ġworld" }));
    }

    [Test]
    public void AgreesWithMicrosoftTiktokenGpt2OnTheCorpus()
    {
        // Microsoft.ML.Tokenizers' own GPT-2 pipeline (its .NET regex pre-split) agrees wherever no letter lies outside
        // the Basic Multilingual Plane; this checks the exact pre-split plus per-piece BPE used here.
        var reference = TiktokenTokenizer.CreateForModel("gpt2");
        int compared = 0;
        foreach (var text in Corpus())
        {
            if (text.EnumerateRunes().Any(r => r.Value > 0xFFFF && Rune.IsLetter(r))) continue;
            Assert.That(Gpt2.EncodeToIds(text), Is.EqualTo(reference.EncodeToIds(text)), JsonSerializer.Serialize(text));
            compared++;
        }
        Assert.That(compared, Is.GreaterThan(100));
    }

    [Test]
    public void LettersOutsideTheBasicPlaneStayInTheirWord()
    {
        // Python's regex module (GPT-2, tiktoken) keeps "ab𝐀cd" in one piece; .NET's Regex would cut at 𝐀.
        Assert.That(Gpt2PreTokenizer.Split("ab𝐀cd x"), Is.EqualTo(new[] { (0, 6), (6, 2) }));
        Assert.That(Gpt2PreTokenizer.Split("a  b\n"), Is.EqualTo(new[] { (0, 1), (1, 1), (2, 2), (4, 1) }));
    }

    [Test]
    public void DecodingRestoresTheText()
    {
        foreach (var text in Corpus().Append("emoji 👍🏽 and 中文 and \u0000 and e\u0301"))
            Assert.That(Gpt2.Decode(Gpt2.EncodeToIds(text)), Is.EqualTo(text), JsonSerializer.Serialize(text));
    }

    [Test]
    public void FlamingoTokensAreNeverSplit()
    {
        var t = Gpt2Tokenizer.Flamingo();
        Assert.That(t.AddedTokens, Is.EquivalentTo(new Dictionary<string, int> { ["<|endoftext|>"] = 50256, ["<|endofchunk|>"] = 50257, ["<image>"] = 50258, ["<PAD>"] = 50259 }));
        Assert.That(t.VocabularySize, Is.EqualTo(50260));
        Assert.That(t.SpecialTokens.Pad, Is.EqualTo(50259));
        var ids = t.EncodeToIds("<image>An apple.<|endofchunk|><image>A dog<|endofchunk|>");
        Assert.That(ids, Is.EqualTo(new[] { 50258 }.Concat(Gpt2.EncodeToIds("An apple.")).Append(50257).Append(50258)
            .Concat(Gpt2.EncodeToIds("A dog")).Append(50257)));
        // Text around a token is encoded on its own (the space before "<image>" stays a token of its own).
        Assert.That(t.EncodeToIds("a <image>b"), Is.EqualTo(Gpt2.EncodeToIds("a ").Append(50258).Concat(Gpt2.EncodeToIds("b"))));
        // A near miss is ordinary text; plain GPT-2 splits "<image>".
        Assert.That(t.EncodeToIds("<imag>"), Is.EqualTo(Gpt2.EncodeToIds("<imag>")));
        Assert.That(Gpt2.EncodeToIds("<image>").Count, Is.GreaterThan(1));
        Assert.That(t.Decode(ids), Is.EqualTo("<image>An apple.<|endofchunk|><image>A dog<|endofchunk|>"));
        Assert.That(t.Decode(ids, skipSpecialTokens: true), Is.EqualTo("An apple.A dog"));
    }

    [Test]
    public void LeftPaddingForGeneration()
    {
        var t = Gpt2Tokenizer.Flamingo();
        var batch = t.EncodeBatch(["<image>Question: what is it? Answer:", "<image>Hi"], new EncodeOptions { PaddingSide = PaddingSide.Left });
        int length = t.EncodeToIds("<image>Question: what is it? Answer:").Count;
        int shortLength = t.EncodeToIds("<image>Hi").Count;
        Assert.That(batch.SequenceLength, Is.EqualTo(length));
        var row = batch.Rows[1];
        Assert.That(row.InputIds.Take(length - shortLength), Is.All.EqualTo(50259));
        Assert.That(row.InputIds.Skip(length - shortLength), Is.EqualTo(t.EncodeToIds("<image>Hi")));
        Assert.That(row.AttentionMask, Is.EqualTo(Enumerable.Repeat(0, length - shortLength).Concat(Enumerable.Repeat(1, shortLength))));
        using var tensors = batch.ToTensors();
        Assert.That(tensors.InputIds[1, -1].item<long>(), Is.EqualTo(t.EncodeToIds("Hi")[^1]), "the last position holds the last real token");

        // Plain GPT-2 pads with <|endoftext|>, masked out; truncation keeps the first ids.
        var plain = Gpt2.Encode("one two three four", new EncodeOptions { MaxLength = 6, Padding = Padding.MaxLength });
        Assert.That(plain.InputIds, Is.EqualTo(Gpt2.EncodeToIds("one two three four").Concat([50256, 50256])));
        Assert.That(plain.AttentionMask, Is.EqualTo(new[] { 1, 1, 1, 1, 0, 0 }));
        Assert.That(Gpt2.Encode("one two three four", new EncodeOptions { MaxLength = 2 }).InputIds, Is.EqualTo(Gpt2.EncodeToIds("one two")));
    }

    [Test]
    public void UserVocabJsonAndMergesGiveTheSameIdsAsTheBundledVocabulary()
    {
        var dir = TestPaths.TempDirectory();
        try
        {
            var (vocab, merges) = ExportVocabularyAndMerges(Gpt2);
            File.WriteAllText(Path.Combine(dir, "vocab.json"), JsonSerializer.Serialize(vocab));
            File.WriteAllLines(Path.Combine(dir, "merges.txt"), merges.Prepend("#version: 0.2"));
            var fromFiles = TokenizerFactory.Create("gpt2-flamingo", dir);
            var bundled = Gpt2Tokenizer.Flamingo();
            Assert.That(fromFiles.VocabularySize, Is.EqualTo(bundled.VocabularySize));
            foreach (var text in Corpus().Append("<image>x<|endofchunk|><PAD>"))
                Assert.That(fromFiles.EncodeToIds(text), Is.EqualTo(bundled.EncodeToIds(text)), JsonSerializer.Serialize(text));

            // The same vocabulary as a Hugging Face tokenizer.json with an NFC normalizer and an added token.
            var tokenizerJson = new Dictionary<string, object?>
            {
                ["added_tokens"] = new[] { new { id = 50256, content = "<|endoftext|>", special = true } },
                ["normalizer"] = new { type = "NFC" },
                ["pre_tokenizer"] = new { type = "ByteLevel", add_prefix_space = false },
                ["model"] = new { type = "BPE", vocab, merges = merges.Select(m => m.Split(' ')).ToArray() },
            };
            var jsonPath = Path.Combine(dir, "tokenizer.json");
            File.WriteAllText(jsonPath, JsonSerializer.Serialize(tokenizerJson));
            var fromJson = Gpt2Tokenizer.FromTokenizerJson(jsonPath, [new("<image>")], null);
            Assert.That(fromJson.AddedTokens["<image>"], Is.EqualTo(50257));
            Assert.That(fromJson.EncodeToIds("e\u0301cole <image>"), Is.EqualTo(Gpt2.EncodeToIds("\u00E9cole ").Append(50257)));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void NfcOptionForVocabJsonAndStringMergesInTokenizerJson()
    {
        var dir = TestPaths.TempDirectory();
        try
        {
            var (vocab, merges) = ExportVocabularyAndMerges(Gpt2);
            var vocabPath = Path.Combine(dir, "vocab.json");
            var mergesPath = Path.Combine(dir, "merges.txt");
            File.WriteAllText(vocabPath, JsonSerializer.Serialize(vocab));
            File.WriteAllLines(mergesPath, merges.Prepend("#version: 0.2"));
            const string decomposed = "e\u0301cole A\u030A \uFB01", composed = "\u00E9cole \u00C5 \uFB01"; // NFC keeps the ligature
            var neox = Gpt2Tokenizer.FromFiles(vocabPath, mergesPath, normalizeNfc: true);
            var plain = Gpt2Tokenizer.FromFiles(vocabPath, mergesPath);
            Assert.That(neox.EncodeToIds(decomposed), Is.EqualTo(Gpt2.EncodeToIds(composed)));
            Assert.That(plain.EncodeToIds(decomposed), Is.EqualTo(Gpt2.EncodeToIds(decomposed)));
            Assert.That(plain.EncodeToIds(decomposed), Is.Not.EqualTo(neox.EncodeToIds(decomposed)));
            foreach (var text in Corpus()) Assert.That(neox.EncodeToIds(text), Is.EqualTo(Gpt2.EncodeToIds(PythonText.Normalize(text, NormalizationForm.FormC))));

            // tokenizer.json as older tokenizers versions (and GPT-NeoX's) write it: each merge one string "Ġ t".
            Assert.That(merges, Does.Contain("\u0120 t"));
            var tokenizerJson = new Dictionary<string, object?>
            {
                ["normalizer"] = new { type = "NFC" },
                ["pre_tokenizer"] = new { type = "ByteLevel", add_prefix_space = false },
                ["model"] = new { type = "BPE", vocab, merges },
            };
            var jsonPath = Path.Combine(dir, "tokenizer.json");
            File.WriteAllText(jsonPath, JsonSerializer.Serialize(tokenizerJson));
            Assert.That(File.ReadAllText(jsonPath), Does.Contain("\"\\u0120 t\""), "merges written as strings");
            var fromJson = Gpt2Tokenizer.FromTokenizerJson(jsonPath);
            Assert.That(fromJson.EncodeToIds(" t"), Is.EqualTo(new[] { Gpt2.TokenToId("\u0120t")!.Value }));
            foreach (var text in Corpus().Append(decomposed))
                Assert.That(fromJson.EncodeToIds(text), Is.EqualTo(neox.EncodeToIds(text)), JsonSerializer.Serialize(text));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void BadFilesAreClearErrors()
    {
        var dir = TestPaths.TempDirectory();
        try
        {
            var vocab = Path.Combine(dir, "vocab.json");
            File.WriteAllText(vocab, "[1, 2]");
            File.WriteAllText(Path.Combine(dir, "merges.txt"), "a b\n");
            var e = Assert.Throws<InvalidDataException>(() => Gpt2Tokenizer.FromFiles(vocab, Path.Combine(dir, "merges.txt")));
            Assert.That(e!.Message, Does.Contain(vocab));
            File.WriteAllText(vocab, "{\"a\": 0, \"b\": 1, \"ab\": 2}");
            File.WriteAllText(Path.Combine(dir, "merges.txt"), "a b\nbad line here\n");
            var m = Assert.Throws<InvalidDataException>(() => Gpt2Tokenizer.FromFiles(vocab, Path.Combine(dir, "merges.txt")));
            Assert.That(m!.Message, Does.Contain("line 2"));
            Assert.Throws<FileNotFoundException>(() => TokenizerFactory.Create("gpt2", Path.Combine(dir, "nothing")));
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>
    /// vocab.json and merges.txt equivalent to a rank-based (tiktoken) vocabulary: token id = rank, and the merge
    /// that makes token r is the pair BPE reaches when only ranks below r may merge.
    /// </summary>
    internal static (Dictionary<string, int> Vocab, List<string> Merges) ExportVocabularyAndMerges(Gpt2Tokenizer tokenizer)
    {
        var vocab = new Dictionary<string, int>();
        var rankOf = new Dictionary<string, int>();
        for (int id = 0; id < 50257; id++)
        {
            var token = tokenizer.IdToToken(id)!;
            vocab[token] = id;
            rankOf[token] = id;
        }
        var merges = new List<string>();
        for (int id = 256; id < 50256; id++)
        {
            var parts = tokenizer.IdToToken(id)!.Select(c => c.ToString()).ToList();
            while (parts.Count > 2)
            {
                int best = -1, bestRank = int.MaxValue;
                for (int i = 0; i + 1 < parts.Count; i++)
                    if (rankOf.TryGetValue(parts[i] + parts[i + 1], out int r) && r < id && r < bestRank) (best, bestRank) = (i, r);
                if (best < 0) throw new InvalidOperationException($"token {id} cannot be built from lower ranks");
                parts[best] += parts[best + 1];
                parts.RemoveAt(best + 1);
            }
            merges.Add(parts[0] + " " + parts[1]);
        }
        return (vocab, merges);
    }
}
