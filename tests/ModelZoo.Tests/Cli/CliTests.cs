using System.Text.Json;
using ModelZoo.Tests.Models;
using ModelZoo.Tests.Support;
using NUnit.Framework;

namespace ModelZoo.Tests.Cli;

public class CliTests
{
    [Test]
    public void InfoJsonReportsNameFamilyExactParametersAndConfig()
    {
        var (code, output, error) = CliRunner.Run("info", "bert-tiny", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.That(root.GetProperty("name").GetString(), Is.EqualTo("bert-tiny"));
        Assert.That(root.GetProperty("family").GetString(), Is.EqualTo("bert"));
        Assert.That(root.GetProperty("parameters").GetInt64(), Is.EqualTo(CatalogTests.BertParameters(30522, 128, 2, 512, 512, 2)));
        Assert.That(root.GetProperty("config").GetProperty("hidden_size").GetInt32(), Is.EqualTo(128));
    }

    [Test]
    public void ListJsonNamesEveryPreset()
    {
        var (code, output, _) = CliRunner.Run("list", "--json");
        Assert.That(code, Is.EqualTo(0));
        using var json = JsonDocument.Parse(output);
        Assert.That(json.RootElement.EnumerateArray().Select(e => e.GetProperty("name").GetString()), Does.Contain("bert-tiny"));
    }

    [Test]
    public void AnUnknownModelIsOneClearErrorLine()
    {
        var (code, _, error) = CliRunner.Run("info", "bert-tny");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.StartWith("modelzoo: error: unknown model 'bert-tny'").And.Contain("bert-tiny"));
    }

    [Test]
    public void AttentionBenchmarkPrintsRatios()
    {
        var (code, output, error) = CliRunner.Run("bench", "attention", "--lengths", "32", "64", "--batch", "1", "--heads", "2", "--repeats", "1");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain("math/fused time"));
        Assert.That(output.Split('\n').Count(l => l.TrimStart().StartsWith("32") || l.TrimStart().StartsWith("64")), Is.EqualTo(2));
    }
}
