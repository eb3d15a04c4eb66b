using System.Diagnostics;
using System.Text.Json;
using ModelZoo.Tests.Support;
using ModelZoo.Tokenization;
using ModelZoo.Tokenization.Bert;
using ModelZoo.Tokenization.Clip;
using ModelZoo.Tokenization.Gpt2;
using NUnit.Framework;
using static ModelZoo.Tests.Tokenization.TokenizerFixtures;

namespace ModelZoo.Tests.Tokenization;

public class TokenizeCommandTests
{
    string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, true);

    string WriteTexts(IEnumerable<string> texts)
    {
        var path = Path.Combine(_dir, "texts.json");
        File.WriteAllText(path, JsonSerializer.Serialize(texts));
        return path;
    }

    static int[][] ParseArrayOfArrays(string output)
    {
        using var json = JsonDocument.Parse(output);
        return json.RootElement.EnumerateArray().Select(row => row.EnumerateArray().Select(e => e.GetInt32()).ToArray()).ToArray();
    }

    static int[][] ParseLines(string output) => output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        .Select(line => JsonSerializer.Deserialize<int[]>(line)!).ToArray();

    [Test]
    public void BertInputFileGivesTheFixtureIdsAndLxmertFeatures()
    {
        var cases = BertCases().ToArray();
        var input = WriteTexts(cases.Select(c => c.Text));
        var (code, output, error) = CliRunner.Run("tokenize", "--tokenizer", "bert-wordpiece", "--vocab", BertVocabPath, "--input", input);
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(ParseArrayOfArrays(output), Is.EqualTo(cases.Select(c => c.Ids).ToArray()));

        // The embedded vocabulary, model-input form of length 20.
        (code, output, error) = CliRunner.Run("tokenize", "--tokenizer", "bert-wordpiece", "--max-length", "20", "--input", input);
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(ParseArrayOfArrays(output), Is.EqualTo(cases.Select(c => c.InputIds20).ToArray()));
    }

    [Test]
    public void ClipInputFileGivesBpeIdsAndTokenize77()
    {
        var cases = ClipCases().ToArray();
        var input = WriteTexts(cases.Select(c => c.Text));
        var (code, output, error) = CliRunner.Run("tokenize", "--tokenizer", "clip-bpe", "--input", input);
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(ParseArrayOfArrays(output), Is.EqualTo(cases.Select(c => c.BpeIds).ToArray()));

        (code, output, error) = CliRunner.Run("tokenize", "--tokenizer", "clip-bpe", "--vocab", ClipMergesPath, "--max-length", "77", "--input", input);
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(ParseArrayOfArrays(output), Is.EqualTo(cases.Select(c => c.Tokenize77).ToArray()));
    }

    [Test]
    public void StdinLinesGiveOneArrayPerLine()
    {
        // Texts that are single lines (the others hold line breaks, which stdin lines cannot carry).
        var bert = BertCases().Where(c => !c.Text.Contains('\n') && !c.Text.Contains('\r')).ToArray();
        var (code, output, error) = CliRunner.RunWithInput(string.Join("\n", bert.Select(c => c.Text)) + "\n", "tokenize", "--tokenizer", "bert-wordpiece");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(ParseLines(output), Is.EqualTo(bert.Select(c => c.Ids).ToArray()));

        var clip = ClipCases().Where(c => !c.Text.Contains('\n') && !c.Text.Contains('\r')).ToArray();
        (code, output, error) = CliRunner.RunWithInput(string.Join("\r\n", clip.Select(c => c.Text)), "tokenize", "--tokenizer", "clip-bpe", "--max-length", "77");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(ParseLines(output), Is.EqualTo(clip.Select(c => c.Tokenize77).ToArray()));

        (code, output, error) = CliRunner.RunWithInput("Hello world\n\n<image>hi<|endofchunk|>\n", "tokenize", "--tokenizer", "gpt2-flamingo");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "[15496,995]", "[]", "[50258,5303,50257]" }));
    }

    [TestCase("bert-wordpiece")]
    [TestCase("clip-bpe")]
    [TestCase("gpt2")]
    public void LoneSurrogateEscapesAsPythonWritesThemAreTokenized(string name)
    {
        // json.dump(["ok \ud800 x", ...]) in Python writes the escapes below; System.Text.Json alone refuses them.
        var path = Path.Combine(_dir, "surrogates.json");
        File.WriteAllText(path, """["ok \ud800 x", "a\udc00\ud800b", "\ud83d\ude00 pair \u00e9", "tab\t \"q\" \\ \/ \ud83d", "plain"]""");
        string[] texts = ["ok \uD800 x", "a\uDC00\uD800b", "\U0001F600 pair \u00E9", "tab\t \"q\" \\ / \uD83D", "plain"];
        var tokenizer = TokenizerFactory.Create(name);
        var (code, output, error) = CliRunner.Run("tokenize", "--tokenizer", name, "--input", path);
        Assert.That(code, Is.EqualTo(0), error);
        var ids = ParseArrayOfArrays(output);
        Assert.That(ids, Is.EqualTo(texts.Select(t => tokenizer.EncodeToIds(t).ToArray()).ToArray()));
        Assert.That(ids[0], Is.Not.Empty);

        File.WriteAllText(path, """["fine", "bad \ud800 \q escape"]""");
        (code, _, error) = CliRunner.Run("tokenize", "--tokenizer", name, "--input", path);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain(path));
    }

    [Test]
    public void UserErrorsAreOneClearLine()
    {
        var (code, _, error) = CliRunner.RunWithInput("x\n", "tokenize", "--tokenizer", "wordpiece");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.StartWith("modelzoo: error: unknown tokenizer 'wordpiece'").And.Contain("bert-wordpiece"));

        var notArray = Path.Combine(_dir, "object.json");
        File.WriteAllText(notArray, "{\"text\": \"a\"}");
        (code, _, error) = CliRunner.Run("tokenize", "--tokenizer", "gpt2", "--input", notArray);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain(notArray).And.Contain("array of strings"));

        var mixed = WriteTexts([]);
        File.WriteAllText(mixed, "[\"a\", 3]");
        (code, _, error) = CliRunner.Run("tokenize", "--tokenizer", "gpt2", "--input", mixed);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("element 1"));

        (code, _, error) = CliRunner.Run("tokenize", "--tokenizer", "bert-wordpiece-cased", "--input", mixed);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("vocab.txt of bert-base-cased"));

        (code, _, error) = CliRunner.RunWithInput("x\n", "tokenize", "--tokenizer", "clip-bpe", "--max-length", "1");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("max length 1"));
    }

    [Test]
    public void FactoryNamesEveryTokenizer()
    {
        Assert.That(TokenizerFactory.Create("bert-wordpiece"), Is.TypeOf<BertWordPieceTokenizer>());
        var cased = TokenizerFactory.Create("bert-wordpiece-cased", BertVocabPath);
        Assert.That(cased.Name, Is.EqualTo("bert-wordpiece-cased"));
        Assert.That(cased.Tokenize("Hello"), Is.EqualTo(new[] { "[UNK]" }), "an uncased vocabulary has no 'Hello'");
        Assert.That(TokenizerFactory.Create("clip-bpe"), Is.TypeOf<ClipBpeTokenizer>());
        Assert.That(TokenizerFactory.Create("gpt2").VocabularySize, Is.EqualTo(50257));
        Assert.That(TokenizerFactory.Create("gpt2-flamingo").VocabularySize, Is.EqualTo(50260));
        foreach (var name in TokenizerFactory.Names.Where(n => n != "bert-wordpiece-cased"))
            Assert.That(TokenizerFactory.Create(name).Name, Is.EqualTo(name));
    }

    [Test]
    public void TheRealExecutableGivesTheSameIdsUnderInvariantGlobalization()
    {
        // The modelzoo executable runs with InvariantGlobalization, where string.Normalize does nothing to non-ASCII
        // text; the tokenizers normalise with their own tables. Run it as a process on the accented and CJK cases.
        var dll = Path.Combine(AppContext.BaseDirectory, "modelzoo.dll");
        Assert.That(File.Exists(dll), dll);
        var cases = BertCases().Where(c => c.Text.Any(ch => ch > 0x7F)).ToArray();
        var clipCases = ClipCases().Where(c => c.Text.Any(ch => ch > 0x7F)).ToArray();
        Assert.That(RunProcess(dll, "bert-wordpiece", WriteTexts(cases.Select(c => c.Text))), Is.EqualTo(cases.Select(c => c.Ids).ToArray()));
        var clipInput = Path.Combine(_dir, "clip.json");
        File.WriteAllText(clipInput, JsonSerializer.Serialize(clipCases.Select(c => c.Text)));
        Assert.That(RunProcess(dll, "clip-bpe", clipInput), Is.EqualTo(clipCases.Select(c => c.BpeIds).ToArray()));
    }

    static int[][] RunProcess(string dll, string tokenizer, string input)
    {
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet";
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { dll, "tokenize", "--tokenizer", tokenizer, "--input", input }) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.That(process.WaitForExit(120_000), "modelzoo tokenize did not finish");
        Assert.That(process.ExitCode, Is.EqualTo(0), stderr.Result);
        return ParseArrayOfArrays(stdout.Result);
    }
}
