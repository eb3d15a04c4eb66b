using NUnit.Framework;
using static TorchSharp.torch;

namespace ModelZoo.Tests.TwoStream;

/// <summary>Helpers shared by the ViLBERT and LXMERT tests.</summary>
public static class TwoStreamTestKit
{
    public static double MaxAbs(Tensor a, Tensor b)
    {
        Assert.That(a.shape, Is.EqualTo(b.shape), "shapes differ");
        using var d = (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max();
        return d.item<double>();
    }

    // Parameter arithmetic of the BERT-style pieces (weights + biases).
    public static long Linear(long input, long output) => input * output + output;
    public static long LayerNorm(long width) => 2 * width;
    /// <summary>Self-attention block (q, k, v, output dense, LayerNorm) + feed-forward (two Linears, LayerNorm).</summary>
    public static long BertLayer(long hidden, long intermediate) =>
        4 * Linear(hidden, hidden) + LayerNorm(hidden) + Linear(hidden, intermediate) + Linear(intermediate, hidden) + LayerNorm(hidden);
    /// <summary>Linear, GELU, LayerNorm, Linear.</summary>
    public static long AnswerClassifier(long input, long hidden, long answers) => Linear(input, hidden) + LayerNorm(hidden) + Linear(hidden, answers);
}

/// <summary>
/// Runs a fixture's tests with one intra-op thread: the models here are tiny, and on a busy machine the thread
/// hand-offs cost twenty times the arithmetic. The previous setting is restored afterwards.
/// </summary>
public abstract class SingleThreadedTests
{
    int _threads;

    [OneTimeSetUp]
    public void UseOneThread()
    {
        _threads = TorchSharp.torch.get_num_threads();
        TorchSharp.torch.set_num_threads(1);
    }

    [OneTimeTearDown]
    public void RestoreThreads() => TorchSharp.torch.set_num_threads(_threads);
}
