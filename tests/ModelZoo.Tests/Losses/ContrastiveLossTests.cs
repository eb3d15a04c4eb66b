using ModelZoo.Models.Common;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Losses;

public class ContrastiveLossTests
{
    static float Value(Tensor t) => t.item<float>();

    [Test]
    public void SymmetricInfoNceMatchesAHandComputedValue()
    {
        // rows: log(e²+e⁰)−2, log(e¹+e³)−3; columns: log(e²+e¹)−2, log(e⁰+e³)−3; the mean of both means.
        var logits = tensor(new float[,] { { 2, 0 }, { 1, 3 } });
        Assert.That(Value(ContrastiveLosses.SymmetricInfoNce(logits)), Is.EqualTo(0.15392627f).Within(1e-6));
    }

    [Test]
    public void SymmetricInfoNceOfEmbeddingsUsesCosinesTimesTheScale()
    {
        var a = tensor(new float[,] { { 3, 0 }, { 0, 2 } });
        var b = tensor(new float[,] { { 1, 0 }, { 0, 5 } });
        // cosines are the identity; scale e^{ln 2} = 2 → logits [[2, 0], [0, 2]]: loss log(1 + e⁻²).
        var loss = ContrastiveLosses.SymmetricInfoNce(a, b, tensor((float)Math.Log(2)));
        Assert.That(Value(loss), Is.EqualTo((float)Math.Log(1 + Math.Exp(-2))).Within(1e-6));
    }

    [Test]
    public void NceMatchesHandComputedValues()
    {
        // a = e₀, e₁; b = e₀, (e₀+e₁)/√2 → s = [[1, r], [0, r]] / τ; each row: log(Σ_j e^{s_ij} + Σ_j e^{s_ji}) − s_ii.
        var a = tensor(new float[,] { { 1, 0 }, { 0, 1 } });
        var b = tensor(new float[,] { { 1, 0 }, { 1, 1 } });
        Assert.That(Value(ContrastiveLosses.Nce(a, b, 1.0)), Is.EqualTo(1.19334134f).Within(1e-6));
        Assert.That(Value(ContrastiveLosses.Nce(a, b, 0.5)), Is.EqualTo(1.08341021f).Within(1e-6));
    }

    [Test]
    public void MilNceMatchesAHandComputedValue()
    {
        var a = tensor(new float[,] { { 1, 0 }, { 0, 1 } });
        var b = tensor(new float[,,] { { { 1, 0 }, { 0.6f, 0.8f } }, { { 0, 1 }, { -1, 0 } } });
        Assert.That(Value(ContrastiveLosses.MilNce(a, b, temperature: 1.0)), Is.EqualTo(1.13831884f).Within(1e-6));
    }

    [Test]
    public void MilNceWithOnePositivePerClipEqualsNce()
    {
        var generator = new Generator(5);
        var a = randn(new long[] { 6, 8 }, generator: generator);
        var b = randn(new long[] { 6, 8 }, generator: generator);
        foreach (var temperature in new[] { 0.07, 0.5, 1.0 })
        {
            var nce = Value(ContrastiveLosses.Nce(a, b, temperature));
            var mil = Value(ContrastiveLosses.MilNce(a, b.unsqueeze(1), temperature: temperature));
            Assert.That(mil, Is.EqualTo(nce).Within(1e-5 * Math.Abs(nce)), $"τ = {temperature}");
        }
    }

    [Test]
    public void AMaskedCandidateCountsAsAbsent()
    {
        var generator = new Generator(6);
        var a = randn(new long[] { 4, 5 }, generator: generator);
        var b = randn(new long[] { 4, 3, 5 }, generator: generator);
        var mask = tensor(new[,] { { true, true, false }, { true, true, false }, { true, true, false }, { true, true, false } });
        var masked = Value(ContrastiveLosses.MilNce(a, b, mask, 0.1));
        var dropped = Value(ContrastiveLosses.MilNce(a, b.narrow(1, 0, 2), temperature: 0.1));
        Assert.That(masked, Is.EqualTo(dropped).Within(1e-5));
    }

    [Test]
    public void LossesStayFiniteAtExtremeScales()
    {
        // rows: 0 and 6000 − 4000; columns: 6000 − 5000 and 0 → (1000 + 500) / 2 (naive exp overflows float).
        var logits = tensor(new float[,] { { 5000, -5000 }, { 6000, 4000 } });
        Assert.That(Value(ContrastiveLosses.SymmetricInfoNce(logits)), Is.EqualTo(750f).Within(1e-3));
        var a = randn(4, 3);
        Assert.That(float.IsFinite(Value(ContrastiveLosses.Nce(a, a, 1e-4))), Is.True);
        Assert.That(float.IsFinite(Value(ContrastiveLosses.MilNce(a, a.unsqueeze(1), temperature: 1e-4))), Is.True);
    }

    [Test]
    public void BadShapesAndTemperaturesAreClearErrors()
    {
        Assert.Throws<ArgumentException>(() => ContrastiveLosses.SymmetricInfoNce(zeros(2, 3)));
        Assert.Throws<ArgumentException>(() => ContrastiveLosses.Nce(zeros(2, 3), zeros(3, 3)));
        Assert.Throws<ArgumentException>(() => ContrastiveLosses.Nce(zeros(2, 3), zeros(2, 3), 0));
        var e = Assert.Throws<ArgumentException>(() => ContrastiveLosses.MilNce(zeros(2, 3), zeros(2, 3)));
        Assert.That(e!.Message, Does.Contain("[B, K, D]"));
    }

    [Test]
    public void LearnableTemperatureGetsAGradientAndIsClamped()
    {
        using var temperature = new LearnableTemperature(0.07);
        Assert.That(temperature.Temperature, Is.EqualTo(0.07).Within(1e-6));
        var a = randn(4, 6);
        var b = a + 0.1 * randn(4, 6);
        var loss = temperature.forward(a, b);
        loss.backward();
        var grad = temperature.parameters().Single().grad;
        Assert.That(grad, Is.Not.Null);
        Assert.That(Math.Abs(grad!.item<float>()), Is.GreaterThan(0));
        using (no_grad()) temperature.parameters().Single().fill_(10f);
        Assert.That(temperature.Temperature, Is.EqualTo(0.01).Within(1e-6), "scale clamped at 100");
    }
}
