using System.Text.Json;
using ModelZoo.Attention.Diagnostics;
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
    public void InfoJsonNamesCheckpointFormatsAndTheTokenizer()
    {
        var (code, output, error) = CliRunner.Run("info", "bert-tiny", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        var formats = root.GetProperty("checkpointFormats");
        Assert.That(formats.ValueKind, Is.EqualTo(JsonValueKind.Array));
        Assert.That(formats.GetArrayLength(), Is.GreaterThan(0));
        Assert.That(formats.EnumerateArray().Select(f => f.GetString()), Has.All.Not.Empty);
        Assert.That(formats.EnumerateArray().Select(f => f.GetString()), Has.Some.Contain("safetensors"));
        Assert.That(root.GetProperty("tokenizer").GetString(), Does.Contain("wordpiece"));
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
        // Run in-process, the bench must not retune this process's malloc (mallopt) under every later test.
        Assert.That(ProcessMemory.LargeAllocationsUseMmap, Is.False);
        Assert.That(output, Does.Contain("malloc NOT tuned"));
    }

    [Test]
    public void CudaThatIsNotAvailableIsOneErrorLineNamingTheCudaPackage()
    {
        var (code, output, error) = CliRunner.Run("bench", "attention", "--lengths", "8", "--device", "cuda");
        if (TorchSharp.torch.cuda.is_available())
        {
            // A GPU build on a GPU machine: the bench runs; a device index that does not exist is still one clear line.
            Assert.That(code, Is.EqualTo(0), error);
            (code, output, error) = CliRunner.Run("bench", "attention", "--lengths", "8", "--device", $"cuda:{TorchSharp.torch.cuda.device_count()}");
            Assert.That(code, Is.EqualTo(1));
            Assert.That(error.TrimEnd().Split('\n'), Has.Length.EqualTo(1), error);
            Assert.That(error, Does.StartWith("modelzoo: error: device 'cuda:"));
            return;
        }
        Assert.That(code, Is.EqualTo(1));
        Assert.That(output, Is.Empty);
        Assert.That(error.TrimEnd().Split('\n'), Has.Length.EqualTo(1), error);
        Assert.That(error, Does.StartWith("modelzoo: error: CUDA was requested but is not available"));
        Assert.That(error, Does.Contain("TorchSharp-cuda-linux").And.Contain("ModelZooTorchBackend=cuda"));
    }

    [Test]
    public void EveryBenchmarkOptionHasADescription()
    {
        var bench = ModelZoo.Cli.CliApp.BuildRoot().Subcommands.Single(c => c.Name == "bench");
        foreach (var name in new[] { "attention", "train" })
        {
            var command = bench.Subcommands.Single(c => c.Name == name);
            foreach (var option in command.Options.Where(o => !o.Hidden && o.Name != "--help" && o.Name != "-h" && o.Name != "-?"))
                Assert.That(option.Description, Is.Not.Null.And.Not.Empty, $"bench {name} {option.Name}");
        }
    }
}
