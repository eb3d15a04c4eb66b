using System.Text.Json;
using ModelZoo.Tests.Support;
using NUnit.Framework;

namespace ModelZoo.Tests.Tokenization;

public class TokenizeBenchmarkTests
{
    [Test]
    public void PrintsOneRowPerWorkloadAndTokenizer()
    {
        var (code, output, error) = CliRunner.Run("bench", "tokenize", "--sentences", "40", "--long-chars", "3000", "--rounds", "1");
        Assert.That(code, Is.EqualTo(0), error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        int header = Array.FindIndex(lines, l => l.StartsWith("workload"));
        Assert.That(header, Is.GreaterThanOrEqualTo(0), output);
        Assert.That(lines[header].Split("  ", StringSplitOptions.RemoveEmptyEntries).Select(c => c.Trim()),
            Is.EqualTo(new[] { "workload", "tokenizer", "texts", "chars", "ids", "ms", "texts/s", "Mchars/s", "vs fastest" }));
        Assert.That(lines[header + 1], Does.Match("^[- ]+$"));
        var rows = lines.Skip(header + 2).Where(l => l.Contains("bert-wordpiece") || l.Contains("clip-bpe") || l.Contains("gpt2")).ToList();
        Assert.That(rows, Has.Count.EqualTo(5 * 3), "five workloads x three tokenizers");
        foreach (var workload in new[] { "questions", "questions+accents/CJK", "long letters (3,000, no space)", "long CJK (3,000)", "long emoji (3,000 chars)" })
            Assert.That(rows.Count(r => r.StartsWith(workload + " ")), Is.EqualTo(3), workload);
        Assert.That(rows.Count(r => r.TrimEnd().EndsWith("1.00x")), Is.GreaterThanOrEqualTo(5), "each workload has a fastest tokenizer");

        (code, output, error) = CliRunner.Run("bench", "tokenize", "--tokenizers", "gpt2", "--sentences", "10", "--long-chars", "100", "--rounds", "1", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(output);
        var cells = json.RootElement.EnumerateArray().ToList();
        Assert.That(cells, Has.Count.EqualTo(5));
        Assert.That(cells[0].GetProperty("texts").GetInt32(), Is.EqualTo(10));
        Assert.That(cells[0].GetProperty("ids").GetInt64(), Is.GreaterThan(50), "10 questions of 5-12 words");
        Assert.That(cells.All(c => c.GetProperty("vsFastest").GetDouble() == 1.0), "one tokenizer is its own fastest");

        (code, _, error) = CliRunner.Run("bench", "tokenize", "--tokenizers", "wordpiece");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("unknown tokenizer 'wordpiece'"));
    }
}
