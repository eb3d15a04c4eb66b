using System.Text.Json;
using ModelZoo.Tests.Support;
using NUnit.Framework;

namespace ModelZoo.Tests.Evaluation;

public class EvalCliTests
{
    static string Vqa(string name) => Path.Combine(TestPaths.Fixture("vqa-metric"), name);
    static string Retrieval(string name) => Path.Combine(TestPaths.Fixture("retrieval-metric"), name);

    [Test]
    public void EvalVqaJsonHasTheFixtureKeysAndValues()
    {
        var (code, output, error) = CliRunner.Run("eval", "vqa", "--questions", Vqa("questions.json"), "--annotations", Vqa("annotations.json"),
            "--results", Vqa("results.json"), "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var ours = JsonDocument.Parse(output);
        using var expected = JsonDocument.Parse(File.ReadAllText(Vqa("expected.json")));
        foreach (var key in new[] { "overall", "perAnswerType", "perQuestionType", "perQuestion" })
            Assert.That(JsonNode(ours.RootElement.GetProperty(key)), Is.EqualTo(JsonNode(expected.RootElement.GetProperty(key))), key);
    }

    [Test]
    public void EvalVqaTextPrintsOverallAndTables()
    {
        var (code, output, error) = CliRunner.Run("eval", "vqa", "--questions", Vqa("questions.json"), "--annotations", Vqa("annotations.json"),
            "--results", Vqa("results.json"));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain("Overall accuracy: 75.20").And.Contain("yes/no").And.Contain("what color is the"));
    }

    [Test]
    public void EvalRetrievalJsonGivesTheTrueRecall()
    {
        var (code, output, error) = CliRunner.Run("eval", "retrieval", "--scores", Retrieval("scores.safetensors"), "--mapping", Retrieval("mapping.json"), "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var ours = JsonDocument.Parse(output);
        using var expected = JsonDocument.Parse(File.ReadAllText(Retrieval("expected.json")));
        foreach (var p in expected.RootElement.GetProperty("true_recall").EnumerateObject())
            Assert.That(ours.RootElement.GetProperty(p.Name).GetDouble(), Is.EqualTo(p.Value.GetDouble()).Within(1e-6), p.Name);
        Assert.That(ours.RootElement.GetProperty("rsum").GetDouble(), Is.EqualTo(394).Within(1e-9));
        Assert.That(ours.RootElement.GetProperty("r_mean").GetDouble(), Is.EqualTo(3.94 / 6).Within(1e-9));
    }

    [Test]
    public void MissingFilesAreOneErrorLine()
    {
        var (code, _, error) = CliRunner.Run("eval", "vqa", "--questions", "/nonexistent/q.json", "--annotations", Vqa("annotations.json"),
            "--results", Vqa("results.json"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.StartWith("modelzoo: error: ").And.Contain("/nonexistent/q.json"));
        (code, _, error) = CliRunner.Run("eval", "retrieval", "--scores", Vqa("questions.json"), "--mapping", Retrieval("mapping.json"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.StartWith("modelzoo: error: ").And.Contain("questions.json"));
    }

    /// <summary>A comparable form of a JSON value: numbers as doubles, objects as ordered key lists.</summary>
    static string JsonNode(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number => e.GetDouble().ToString("R"),
        JsonValueKind.Object => "{" + string.Join(",", e.EnumerateObject().Select(p => p.Name + ":" + JsonNode(p.Value))) + "}",
        JsonValueKind.Array => "[" + string.Join(",", e.EnumerateArray().Select(JsonNode)) + "]",
        _ => e.GetRawText(),
    };
}
