using System.Text.Json;
using ModelZoo.Tests.Support;
using NUnit.Framework;

namespace ModelZoo.Tests.Demo;

/// <summary>`modelzoo finetune` and `modelzoo eval --model` end to end on the demo data set written to disk.</summary>
public class FinetuneCliTests
{
    static string _data = "";

    [OneTimeSetUp]
    public static void WriteData()
    {
        _data = DemoDataSet.WriteTemp();
    }

    [OneTimeTearDown] public static void Clean() => Directory.Delete(_data, true);

    [Test]
    public void WrittenDataUseTheOfficialFormats()
    {
        var (code, output, error) = CliRunner.Run("eval", "vqa", "--questions", Path.Combine(_data, "vqa_val_questions.json"),
            "--annotations", Path.Combine(_data, "vqa_val_annotations.json"), "--results", WriteConstantResults("yes"), "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(output);
        Assert.That(json.RootElement.GetProperty("perAnswerType").GetProperty("yes/no").GetDouble(), Is.GreaterThan(20).And.LessThan(80));
        Assert.That(File.Exists(Path.Combine(_data, "images", "1000000.png")), Is.True);
    }

    [Test]
    public void FinetuneVqaThenEvalReproducesTheValidationScore()
    {
        string output = Path.Combine(_data, "vqa-out");
        var (code, stdout, error) = CliRunner.Run("finetune", "--model", "demo-vilt", "--task", "vqa", "--train", Path.Combine(_data, "vqa-train.json"),
            "--val", Path.Combine(_data, "vqa-val.json"), "--out", output, "--max-steps", "30", "--batch-size", "32", "--lr", "1e-3", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var trained = JsonDocument.Parse(stdout);
        double accuracy = trained.RootElement.GetProperty("overall").GetDouble();
        foreach (var file in new[] { "model.safetensors", "task.json", "answers.json", "metrics.jsonl", "val-results.json" })
            Assert.That(File.Exists(Path.Combine(output, file)), file);

        (code, stdout, error) = CliRunner.Run("eval", "--model", "demo-vilt", "--weights", output, "--task", "vqa", "--data", Path.Combine(_data, "vqa-val.json"), "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var evaluated = JsonDocument.Parse(stdout);
        Assert.That(evaluated.RootElement.GetProperty("overall").GetDouble(), Is.EqualTo(accuracy), "the saved model gives the same predictions");

        // The official scorer agrees on the predictions written beside the model.
        (code, stdout, error) = CliRunner.Run("eval", "vqa", "--questions", Path.Combine(_data, "vqa_val_questions.json"),
            "--annotations", Path.Combine(_data, "vqa_val_annotations.json"), "--results", Path.Combine(output, "val-results.json"), "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var official = JsonDocument.Parse(stdout);
        Assert.That(official.RootElement.GetProperty("overall").GetDouble(), Is.EqualTo(accuracy));

        // A resumed run continues from the last checkpoint and refuses different options.
        (code, _, error) = CliRunner.Run("finetune", "--model", "demo-vilt", "--task", "vqa", "--train", Path.Combine(_data, "vqa-train.json"),
            "--out", output, "--max-steps", "30", "--batch-size", "16", "--resume", output);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("batch size 32"));
    }

    [Test]
    public void FinetuneRetrievalWithTheDualEncoder()
    {
        string output = Path.Combine(_data, "retrieval-out");
        var (code, stdout, error) = CliRunner.Run("finetune", "--model", "demo-clip", "--task", "retrieval", "--train", Path.Combine(_data, "retrieval-train.json"),
            "--val", Path.Combine(_data, "retrieval-val.json"), "--out", output, "--max-steps", "20", "--batch-size", "32", "--lr", "1e-3", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var trained = JsonDocument.Parse(stdout);
        Assert.That(trained.RootElement.GetProperty("img_r10").GetDouble(), Is.InRange(0, 1));
        (code, stdout, error) = CliRunner.Run("eval", "--model", "demo-clip", "--weights", output, "--task", "retrieval", "--data", Path.Combine(_data, "retrieval-val.json"), "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var evaluated = JsonDocument.Parse(stdout);
        Assert.That(evaluated.RootElement.GetProperty("img_r1").GetDouble(), Is.EqualTo(trained.RootElement.GetProperty("img_r1").GetDouble()));
    }

    [Test]
    public void FinetuneRetrievalWithTheClipFamily()
    {
        string output = Path.Combine(_data, "clip-out");
        var (code, stdout, error) = CliRunner.Run("finetune", "--model", "clip-tiny", "--task", "retrieval", "--train", Path.Combine(_data, "retrieval-train.json"),
            "--val", Path.Combine(_data, "retrieval-val.json"), "--out", output, "--max-steps", "8", "--batch-size", "16", "--lr", "1e-3", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var trained = JsonDocument.Parse(stdout);
        (code, stdout, error) = CliRunner.Run("eval", "--model", "clip-tiny", "--weights", output, "--task", "retrieval", "--data", Path.Combine(_data, "retrieval-val.json"), "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var evaluated = JsonDocument.Parse(stdout);
        foreach (var key in new[] { "img_r1", "img_r10", "txt_r5" })
            Assert.That(evaluated.RootElement.GetProperty(key).GetDouble(), Is.EqualTo(trained.RootElement.GetProperty(key).GetDouble()), key);
        (code, _, error) = CliRunner.Run("finetune", "--model", "clip-tiny", "--task", "vqa", "--train", Path.Combine(_data, "vqa-train.json"), "--out", Path.Combine(_data, "y"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("supports retrieval"));
    }

    [Test]
    public void UnknownModelsAndTasksAreClearErrors()
    {
        var (code, _, error) = CliRunner.Run("finetune", "--model", "demo-vilt", "--task", "retrieval", "--train", Path.Combine(_data, "retrieval-train.json"), "--out", Path.Combine(_data, "x"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("supports vqa"));
        (code, _, error) = CliRunner.Run("finetune", "--model", "no-such-model", "--task", "vqa", "--train", Path.Combine(_data, "vqa-train.json"), "--out", Path.Combine(_data, "x"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("no-such-model"));
        (code, _, error) = CliRunner.Run("eval", "--model", "demo-vilt", "--task", "vqa", "--data", Path.Combine(_data, "vqa-val.json"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("--weights"));
        // Published weights (no finetune folder) need the head's answer list.
        (code, _, error) = CliRunner.Run("eval", "--model", "lxmert-vqa", "--weights", _data, "--task", "vqa", "--data", Path.Combine(_data, "vqa-val.json"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("--answers"));
    }

    static string WriteConstantResults(string answer)
    {
        using var questions = JsonDocument.Parse(File.ReadAllText(Path.Combine(_data, "vqa_val_questions.json")));
        var results = questions.RootElement.GetProperty("questions").EnumerateArray()
            .Select(q => new { question_id = q.GetProperty("question_id").GetInt64(), answer }).ToList();
        var path = Path.Combine(_data, $"results-{answer}.json");
        File.WriteAllText(path, JsonSerializer.Serialize(results));
        return path;
    }
}
