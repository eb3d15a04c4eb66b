using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.OneStream;

/// <summary>Numeric comparisons for the one-stream model tests.</summary>
public static class TensorAssert
{
    public static double MaxAbsDifference(Tensor a, Tensor b)
    {
        Assert.That(a.shape, Is.EqualTo(b.shape), "shapes differ");
        using var scope = NewDisposeScope();
        return (a.detach().cpu().to(ScalarType.Float64) - b.detach().cpu().to(ScalarType.Float64)).abs().max().item<double>();
    }

    public static void Close(Tensor actual, Tensor expected, double atol, string what)
    {
        double difference = MaxAbsDifference(actual, expected);
        Assert.That(difference, Is.LessThanOrEqualTo(atol), $"{what}: max |difference| {difference:E2} > {atol:E0}");
    }

    /// <summary>Asserts two tensors differ by more than <paramref name="least"/> somewhere (a test's control case).</summary>
    public static void Differ(Tensor a, Tensor b, double least, string what)
    {
        double difference = MaxAbsDifference(a, b);
        Assert.That(difference, Is.GreaterThan(least), $"{what}: expected a difference, got {difference:E2}");
    }
}
