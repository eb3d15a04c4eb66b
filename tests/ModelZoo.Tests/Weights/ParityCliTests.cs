using System.Text.Json;
using ModelZoo.Models.Parity;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Weights;

/// <summary>`modelzoo parity` over every fixture this repository holds for which a family has a parity runner.</summary>
public class ParityCliTests
{
    /// <summary>Fixtures that test something other than a model's forward (tokenizers, metrics): no parity runner.</summary>
    static readonly string[] NotModelFixtures = { "bert-wordpiece", "clip-bpe", "retrieval-metric", "vqa-metric" };

    static IEnumerable<string> FixtureRoots() => new[]
    {
        Path.Combine(TestPaths.VendoredData, "fixtures"),
        Path.Combine(TestPaths.VendoredData, "hf-fixtures"),
        Path.Combine(TestPaths.RepositoryRoot, "tests", "ModelZoo.Tests", "TwoStream", "Fixtures"),
    };

    static IEnumerable<string> AllFixtureDirectories() => FixtureRoots()
        .SelectMany(root => Directory.EnumerateDirectories(root))
        .Where(d => File.Exists(Path.Combine(d, "fixture.json")))
        .OrderBy(d => d, StringComparer.Ordinal);

    static string FamilyOf(string directory)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "fixture.json")));
        return json.RootElement.GetProperty("family").GetString()!;
    }

    static bool HasRunner(string family) => ParityCheck.Runners.Any(r => r.Families.Contains(family, StringComparer.OrdinalIgnoreCase));

    public static IEnumerable<TestCaseData> ModelFixtures()
    {
        foreach (var directory in AllFixtureDirectories().Where(d => HasRunner(FamilyOf(d))))
        {
            string name = Path.GetFileName(directory);
            yield return new TestCaseData(directory, false).SetName("Parity " + name);
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "fixture.json")));
            if (json.RootElement.TryGetProperty("checkpoint_pickle", out var pickle) && pickle.ValueKind == JsonValueKind.String)
                yield return new TestCaseData(directory, true).SetName("Parity " + name + " --pickle");
        }
    }

    [Test]
    public void EveryModelFixtureHasARunnerAndEveryListedFamilyIsCovered()
    {
        var withoutRunner = AllFixtureDirectories().Where(d => !HasRunner(FamilyOf(d))).Select(Path.GetFileName).ToList();
        Assert.That(withoutRunner, Is.EquivalentTo(NotModelFixtures), "a model fixture without a parity runner");
        var names = ModelFixtures().Select(c => c.TestName).ToList();
        foreach (var expected in new[] { "clip-vit", "clip-rn", "uniter", "uniter --pickle", "vilbert", "vilbert --pickle", "lxmert", "gpt2",
                                         "openflamingo-perceiver", "openflamingo-xattn-immediate", "openflamingo-xattn-all",
                                         "hf-clip", "hf-gpt2", "hf-lxmert", "hf-vilt", "hf-visualbert" })
            Assert.That(names, Does.Contain("Parity " + expected));
    }

    [TestCaseSource(nameof(ModelFixtures))]
    public void ParityPassesOnTheFixture(string directory, bool pickle)
    {
        var args = pickle ? new[] { "parity", directory, "--pickle" } : new[] { "parity", directory };
        var (code, output, error) = CliRunner.Run(args);
        Assert.That(code, Is.EqualTo(0), output + error);
        using var fixture = new Fixture(directory);
        Assert.That(output, Does.Contain($"PASS: all {fixture.Outputs.Count} outputs within tolerance"));
        Assert.That(output, Does.Contain(pickle ? "model.bin" : Path.GetFileName(fixture.CheckpointPath)));
        foreach (var name in fixture.Outputs.Keys) Assert.That(output, Does.Contain(name));
    }

    [Test]
    public void ParityJsonFollowsTheSchema()
    {
        string directory = TestPaths.Fixture("clip-vit");
        var (code, output, error) = CliRunner.Run("parity", directory, "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.That(root.GetProperty("pass").ValueKind, Is.EqualTo(JsonValueKind.True));
        Assert.That(root.GetProperty("family").GetString(), Is.EqualTo("clip-vit"));
        using var fixture = new Fixture(directory);
        var outputs = root.GetProperty("outputs").EnumerateArray().ToList();
        Assert.That(outputs.Select(o => o.GetProperty("name").GetString()), Is.EquivalentTo(fixture.Outputs.Keys));
        foreach (var o in outputs)
        {
            Assert.That(o.GetProperty("max_abs_error").ValueKind, Is.EqualTo(JsonValueKind.Number));
            Assert.That(o.GetProperty("max_abs_error").GetDouble(), Is.LessThan(fixture.Atol));
            Assert.That(o.GetProperty("atol").GetDouble(), Is.EqualTo(fixture.Atol));
            Assert.That(o.GetProperty("rtol").GetDouble(), Is.EqualTo(fixture.Rtol));
            Assert.That(o.GetProperty("pass").ValueKind, Is.EqualTo(JsonValueKind.True));
        }
    }

    [Test]
    public void ParityFailsWhenAReferenceOutputIsOffOrMissing()
    {
        string source = TestPaths.Fixture("clip-vit");
        string directory = TestPaths.TempDirectory();
        try
        {
            foreach (var file in Directory.EnumerateFiles(source)) File.Copy(file, Path.Combine(directory, Path.GetFileName(file)));
            // One reference output shifted by +1.0, and one output the port never produces.
            string shifted;
            string outputs = Path.Combine(directory, "outputs.safetensors");
            using (var scope = NewDisposeScope())
            {
                var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                using (var reader = new SafetensorsReader(outputs))
                    foreach (var entry in reader.Entries) tensors[entry.Name] = reader.Read(entry.Name);
                shifted = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).First();
                tensors[shifted] = tensors[shifted] + 1.0;
                tensors["no_such_output"] = ones(2);
                SafetensorsBuilder.Write(outputs, tensors);
            }

            var (code, output, error) = CliRunner.Run("parity", directory, "--json");
            Assert.That(code, Is.EqualTo(1), error);
            using var json = JsonDocument.Parse(output);
            Assert.That(json.RootElement.GetProperty("pass").ValueKind, Is.EqualTo(JsonValueKind.False));
            var byName = json.RootElement.GetProperty("outputs").EnumerateArray().ToDictionary(o => o.GetProperty("name").GetString()!);
            Assert.That(byName[shifted].GetProperty("pass").ValueKind, Is.EqualTo(JsonValueKind.False));
            Assert.That(byName[shifted].GetProperty("max_abs_error").GetDouble(), Is.EqualTo(1.0).Within(1e-3));
            Assert.That(byName["no_such_output"].GetProperty("pass").ValueKind, Is.EqualTo(JsonValueKind.False));
            Assert.That(byName["no_such_output"].GetProperty("max_abs_error").ValueKind, Is.EqualTo(JsonValueKind.Null), "NaN must be JSON null");
            Assert.That(byName["no_such_output"].GetProperty("error").GetString(), Does.Contain("not produced"));
            foreach (var (name, o) in byName.Where(kv => kv.Key != shifted && kv.Key != "no_such_output"))
                Assert.That(o.GetProperty("pass").ValueKind, Is.EqualTo(JsonValueKind.True), name);
            Assert.That(byName.Count, Is.GreaterThan(2));

            (code, output, _) = CliRunner.Run("parity", directory);
            Assert.That(code, Is.EqualTo(1));
            Assert.That(output, Does.Contain($"FAIL: 2 of {byName.Count} outputs out of tolerance"));
        }
        finally
        {
            Directory.Delete(directory, true);
        }
    }
}
