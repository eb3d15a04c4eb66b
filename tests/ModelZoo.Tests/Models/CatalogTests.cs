using Microsoft.Extensions.DependencyInjection;
using ModelZoo.Attention;
using ModelZoo.Attention.Diagnostics;
using ModelZoo.Models.Bert;
using ModelZoo.Models.Catalog;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Models;

public class CatalogTests
{
    /// <summary>Parameters of a BERT encoder with pooler, from its config.</summary>
    public static long BertParameters(long vocab, long hidden, long layers, long intermediate, long positions, long types)
    {
        long embeddings = (vocab + positions + types) * hidden + 2 * hidden;            // three tables + LayerNorm
        long attention = 3 * (hidden * hidden + hidden) + (hidden * hidden + hidden) + 2 * hidden; // q, k, v, output dense, LayerNorm
        long feedForward = (hidden * intermediate + intermediate) + (intermediate * hidden + hidden) + 2 * hidden;
        long pooler = hidden * hidden + hidden;
        return embeddings + layers * (attention + feedForward) + pooler;
    }

    [Test]
    public void BertPresetCountsEqualTheArithmeticOfTheirConfigs()
    {
        var catalog = ModelCatalog.Default;
        Assert.That(catalog.Describe("bert-tiny").Parameters, Is.EqualTo(BertParameters(30522, 128, 2, 512, 512, 2)));
        Assert.That(catalog.Describe("bert-base-uncased").Parameters, Is.EqualTo(BertParameters(30522, 768, 12, 3072, 512, 2)));
        Assert.That(BertParameters(30522, 768, 12, 3072, 512, 2), Is.EqualTo(109_482_240L), "the published bert-base-uncased size");
    }

    [Test]
    public void DescribeMatchesARealCpuInstance()
    {
        var catalog = ModelCatalog.Default;
        using var model = catalog.Create("bert-tiny");
        Assert.That(model.parameters().Sum(p => p.numel()), Is.EqualTo(catalog.Describe("bert-tiny").Parameters));
        Assert.That(model.parameters().First().device_type, Is.EqualTo(DeviceType.CPU));
    }

    [Test]
    public void AnUnknownNameListsTheClosestNames()
    {
        var e = Assert.Throws<UnknownModelException>(() => ModelCatalog.Default.Get("bert-tny"));
        Assert.That(e!.Suggestions, Does.Contain("bert-tiny"));
        Assert.That(e.Message, Does.Contain("bert-tiny"));
    }

    [Test]
    public void DependencyInjectionRegistersTheCatalogAndUserFamilies()
    {
        var services = new ServiceCollection().AddModelZoo().AddModelFamily<ToyFamily>().BuildServiceProvider();
        var catalog = services.GetRequiredService<IModelCatalog>();
        Assert.That(catalog.List().Select(p => p.Name), Does.Contain("bert-tiny").And.Contain("toy-linear"));
        Assert.That(catalog.Describe("toy-linear").Parameters, Is.EqualTo(3 * 2 + 2));
    }

    [Test]
    public void CreateHonoursDtypeAndRefusesUnavailableCudaClearly()
    {
        var catalog = ModelCatalog.Default;
        using var model = catalog.Create("bert-tiny", new ModelCreateOptions { Dtype = "bf16" });
        Assert.That(model.parameters().All(p => p.dtype == ScalarType.BFloat16), Is.True);
        if (!cuda.is_available())
        {
            var e = Assert.Throws<NotSupportedException>(() => catalog.Create("bert-tiny", new ModelCreateOptions { Device = "cuda" }));
            Assert.That(e!.Message, Does.Contain("TorchSharp-cuda-linux"));
        }
        Assert.Throws<ArgumentException>(() => catalog.Create("bert-tiny", new ModelCreateOptions { Dtype = "fp8" }));
    }

    [Test]
    public void RepeatedInferenceDoesNotGrowMemory()
    {
        using var model = ModelCatalog.Default.Create<BertModel>("bert-tiny");
        var ids = randint(1, 30000, new long[] { 4, 32 });
        var mask = ones(4, 32, dtype: ScalarType.Int64);
        void Pass()
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            model.forward(ids, mask);
        }
        for (int i = 0; i < 30; i++) Pass();
        GC.Collect();
        long before = ProcessMemory.ResidentBytes();
        for (int i = 0; i < 200; i++) Pass();
        GC.Collect();
        long after = ProcessMemory.ResidentBytes();
        Assume.That(before, Is.GreaterThan(0), "no /proc here");
        Assert.That((after - before) / (double)before, Is.LessThan(0.03), $"RSS {before / 1e6:0.0} MB -> {after / 1e6:0.0} MB");
    }

    public sealed class ToyFamily : ModelFamily
    {
        public override string Name => "toy";
        public override IEnumerable<ModelPreset> Presets => new[]
        {
            new ModelPreset { Name = "toy-linear", Family = "toy", Config = new { in_features = 3, out_features = 2 }, Build = () => nn.Linear(3, 2) },
        };
    }
}
