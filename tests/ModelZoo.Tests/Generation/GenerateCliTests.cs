using System.Text.Json;
using ModelZoo.Tests.Support;
using NUnit.Framework;

namespace ModelZoo.Tests.Generation;

public class GenerateCliTests
{
    [Test]
    public void GenerationBenchmarkPrintsATableWithRatios()
    {
        var (code, output, error) = CliRunner.Run("bench", "generate", "--models", "flamingo-tiny", "--contexts", "8", "16", "--new-tokens", "3", "--threads", "1");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain("decode ms/token").And.Contain("vs first context (CPU)").And.Contain("goal <= 1.3x"));
        var rows = output.Split('\n').Where(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^flamingo-tiny +\d")).ToList();
        Assert.That(rows, Has.Count.EqualTo(4), "two contexts, with and without the cache");
        Assert.That(rows.Count(r => r.Contains(" yes ")), Is.EqualTo(2));
    }

    [Test]
    public void GenerationBenchmarkJsonHasOneRowPerCell()
    {
        var (code, output, error) = CliRunner.Run("bench", "generate", "--models", "flamingo-tiny", "--contexts", "8", "--new-tokens", "2", "--cached-only", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(output);
        var row = json.RootElement.EnumerateArray().Single();
        Assert.That(row.GetProperty("context").GetInt32(), Is.EqualTo(8));
        Assert.That(row.GetProperty("tokensPerSecond").GetDouble(), Is.GreaterThan(0));
    }

    [TestCase("mpt-tiny")]
    [TestCase("llama-tiny")]
    public void GenerationBenchmarkRunsAnyDecoderPreset(string preset)
    {
        var (code, output, error) = CliRunner.Run("bench", "generate", "--models", preset, "--contexts", "8", "--new-tokens", "2", "--cached-only", "--json", "--threads", "1");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(output);
        Assert.That(json.RootElement.EnumerateArray().Single().GetProperty("tokensPerSecond").GetDouble(), Is.GreaterThan(0));
    }
}
