using System.Diagnostics;
using System.Text;
using ModelZoo.Tests.Support;
using ModelZoo.Tokenization;
using NUnit.Framework;

namespace ModelZoo.Tests.Tokenization;

/// <summary>Odd text never makes a tokenizer throw or hang.</summary>
public class TokenizerFuzzTests
{
    static IEnumerable<string> TokenizerNames() => ["bert-wordpiece", "bert-wordpiece-cased", "clip-bpe", "gpt2", "gpt2-flamingo"];

    string _casedVocab = "";

    // A small cased vocabulary (bert-base-cased is not bundled): specials, ASCII words and letters with their
    // "##" forms, accented letters, a few CJK characters and an emoji.
    [OneTimeSetUp]
    public void WriteCasedVocabulary()
    {
        var tokens = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "The", "the", "Hello", "hello", "##ing", "##s" };
        for (char c = '!'; c <= '~'; c++) tokens.AddRange([c.ToString(), "##" + c]);
        tokens.AddRange(["É", "é", "Ö", "ß", "中", "文", "日", "本", "語", "😀"]);
        _casedVocab = Path.Combine(TestPaths.TempDirectory(), "vocab.txt");
        File.WriteAllLines(_casedVocab, tokens);
    }

    [OneTimeTearDown]
    public void DeleteCasedVocabulary() => Directory.Delete(Path.GetDirectoryName(_casedVocab)!, true);

    ITextTokenizer Create(string name) => TokenizerFactory.Create(name, name == "bert-wordpiece-cased" ? _casedVocab : null);

    // 100,000 characters of one script with no space: CJK ideographs (one word each for BERT), emoji (surrogate
    // pairs, one pre-token run for CLIP and GPT-2).
    static string CjkOnly(Random random, int length) => string.Concat(Enumerable.Range(0, length).Select(_ => (char)random.Next(0x4E00, 0x9FFF)));

    static string EmojiOnly(Random random, int length)
    {
        var sb = new StringBuilder(length);
        while (sb.Length + 2 <= length) sb.Append(char.ConvertFromUtf32(random.Next(0x1F300, 0x1FAFF)));
        return sb.ToString();
    }

    static List<string> OddTexts(int seed)
    {
        var random = new Random(seed);
        var texts = new List<string>
        {
            "", " ", "   \t\n\r\n ", "\u00A0\u2028\u2029\u3000\u200B\uFEFF", "\0", "\u0001\u0007\u001B\u007F\u0085\u009F",
            "😀👍🏽🇺🇸❤️‍🔥🧑‍🤝‍🧑", "\uD800", "\uDC00", "a\uDC00\uD800b", "\uD83D", "x\uD83D", "\uFFFE\uFFFF\uFFFD", "\u0345\u0345",
            "[CLS][SEP][MASK]", "<|startoftext|><|endoftext|><image><|endofchunk|><PAD>", "&amp;&#0;&#x110000;&#99999999999999999999;",
            new string('a', 100_000), RandomText(random, 100_000), CjkOnly(random, 100_000), EmojiOnly(random, 100_000),
            string.Concat(Enumerable.Repeat("\uD800", 1000)),
        };
        for (int i = 0; i < 300; i++) texts.Add(RandomText(random, random.Next(0, 200)));
        return texts;
    }

    // Any UTF-16 units (lone surrogates included), weighted towards whitespace, controls, marks and astral characters.
    static string RandomText(Random random, int length)
    {
        var sb = new StringBuilder(length);
        while (sb.Length < length)
        {
            switch (random.Next(8))
            {
                case 0: sb.Append((char)random.Next(0, 0x20)); break;
                case 1: sb.Append(" \t\n\r\u00A0\u3000\u2028"[random.Next(7)]); break;
                case 2: sb.Append((char)random.Next(0x300, 0x370)); break;
                case 3: sb.Append((char)random.Next(0xD800, 0xE000)); break;
                case 4: sb.Append(char.ConvertFromUtf32(random.Next(0x10000, 0x110000) is var cp && cp is >= 0xD800 and < 0xE000 ? 0x1F600 : cp)); break;
                case 5: sb.Append((char)random.Next(0x20, 0x7F)); break;
                default: sb.Append((char)random.Next(0, 0x10000)); break;
            }
        }
        return sb.ToString();
    }

    [TestCaseSource(nameof(TokenizerNames))]
    public void RandomUnicodeNeverThrowsOrHangs(string name)
    {
        var tokenizer = Create(name);
        var texts = OddTexts(name.Length);
        var work = Task.Run(() =>
        {
            foreach (var text in texts)
            {
                var ids = tokenizer.EncodeToIds(text);
                Assert.That(ids, Is.All.InRange(0, tokenizer.VocabularySize - 1));
                _ = tokenizer.Decode(ids);
                if (text.Length > 1000) continue; // the long lines once: the rest repeats the same work
                var model = tokenizer.Encode(text, EncodeOptions.ModelInput(16));
                Assert.That(model.InputIds, Has.Length.EqualTo(16));
                _ = tokenizer.Decode(model.InputIds, skipSpecialTokens: true);
                _ = tokenizer.Tokenize(text);
            }
            var batch = tokenizer.EncodeBatch(texts.Where(t => t.Length < 300).ToList(), EncodeOptions.ModelInput(32));
            using var tensors = batch.ToTensors();
            Assert.That(tensors.InputIds.shape, Is.EqualTo(new long[] { batch.Count, 32 }));
        });
        var watch = Stopwatch.StartNew();
        Assert.That(work.Wait(TimeSpan.FromSeconds(120)), $"{name} did not finish {texts.Count} odd texts in 120 s");
        TestContext.Out.WriteLine($"{name}: {texts.Count} odd texts (four of 100,000 characters) in {watch.Elapsed.TotalSeconds:F1} s");
    }

    [Test]
    public void ByteLevelDecodingRestoresAnyValidText()
    {
        var tokenizer = TokenizerFactory.Create("gpt2");
        foreach (var text in OddTexts(3).Where(t => t.Length <= 1000 && PythonTextIsValid(t)).Append(new string('a', 100_000)))
            Assert.That(tokenizer.Decode(tokenizer.EncodeToIds(text)), Is.EqualTo(text));
    }

    static bool PythonTextIsValid(string text) => !text.EnumerateRunes().Any(r => r.Value == 0xFFFD) && Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(text)) == text;
}
