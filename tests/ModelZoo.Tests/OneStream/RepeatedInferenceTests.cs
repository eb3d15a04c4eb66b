using ModelZoo.Attention.Diagnostics;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Uniter;
using ModelZoo.Models.Vilt;
using ModelZoo.Models.VisualBert;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.OneStream;

/// <summary>200 forward passes of each tiny preset must not grow the process's resident memory.</summary>
public class RepeatedInferenceTests
{
    static void AssertFlat(Action pass)
    {
        void Run()
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            pass();
        }
        for (int i = 0; i < 30; i++) Run();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = ProcessMemory.ResidentBytes();
        for (int i = 0; i < 200; i++) Run();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long after = ProcessMemory.ResidentBytes();
        Assume.That(before, Is.GreaterThan(0), "no /proc here");
        Assert.That((after - before) / (double)before, Is.LessThan(0.03), $"RSS {before / 1e6:0.0} MB -> {after / 1e6:0.0} MB");
    }

    [Test]
    public void Uniter()
    {
        using var model = ModelCatalog.Default.Create<UniterForVisualQuestionAnswering>("uniter-tiny-vqa");
        var g = new Generator(1);
        var inputs = UniterInputs.Collate(new[]
        {
            new UniterExample(new long[] { 101, 2000, 2001, 102 }, randn(new long[] { 5, 2048 }, generator: g), rand(new long[] { 5, 7 }, generator: g)),
            new UniterExample(new long[] { 101, 2002, 102 }, randn(new long[] { 8, 2048 }, generator: g), rand(new long[] { 8, 7 }, generator: g)),
        });
        AssertFlat(() => model.forward(inputs));
    }

    [Test]
    public void Vilt()
    {
        using var model = ModelCatalog.Default.Create<ViltModel>("vilt-tiny");
        var g = new Generator(2);
        var inputs = ViltInputs.Collate(new[] { new long[] { 101, 2054, 102 }, new long[] { 101, 2129, 2116, 102 } },
            new[] { randn(new long[] { 3, 96, 64 }, generator: g), randn(new long[] { 3, 64, 128 }, generator: g) });
        AssertFlat(() => model.VqaLogits(inputs));
    }

    [Test]
    public void VisualBert()
    {
        using var model = ModelCatalog.Default.Create<VisualBertForQuestionAnswering>("visualbert-tiny");
        var g = new Generator(3);
        var inputs = VisualBertInputs.Collate(new[] { new long[] { 101, 2054, 102 }, new long[] { 101, 2129, 2116, 102 } },
            new[] { randn(new long[] { 6, 2048 }, generator: g), randn(new long[] { 3, 2048 }, generator: g) });
        AssertFlat(() => model.forward(inputs));
    }
}

public class ReducedPrecisionTests
{
    [Test]
    public void TinyPresetsRunInBfloat16OnFloat32Inputs()
    {
        var bf16 = new ModelCreateOptions { Dtype = "bf16" };
        var g = new Generator(4);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using (var uniter = ModelCatalog.Default.Create<UniterForVisualQuestionAnswering>("uniter-tiny-vqa", bf16))
        {
            var inputs = UniterInputs.Collate(new[] { new UniterExample(new long[] { 101, 2000, 102 }, randn(new long[] { 3, 2048 }, generator: g), rand(new long[] { 3, 7 }, generator: g)) });
            Assert.That(uniter.forward(inputs).dtype, Is.EqualTo(ScalarType.BFloat16));
        }
        using (var vilt = ModelCatalog.Default.Create<ViltModel>("vilt-tiny", bf16))
        {
            var inputs = ViltInputs.Collate(new[] { new long[] { 101, 2054, 102 } }, new[] { randn(new long[] { 3, 64, 96 }, generator: g) });
            Assert.That(vilt.VqaLogits(inputs).dtype, Is.EqualTo(ScalarType.BFloat16));
        }
        using (var visualBert = ModelCatalog.Default.Create<VisualBertForQuestionAnswering>("visualbert-tiny", bf16))
        {
            var inputs = VisualBertInputs.Collate(new[] { new long[] { 101, 2054, 102 } }, new[] { randn(new long[] { 4, 2048 }, generator: g) });
            Assert.That(visualBert.forward(inputs).dtype, Is.EqualTo(ScalarType.BFloat16));
        }
    }
}
