using ModelZoo.Models.Parity;
using ModelZoo.Tests.Support;
using NUnit.Framework;

namespace ModelZoo.Tests.Vilbert;

public class VilbertParityTests : TwoStream.SingleThreadedTests
{
    static void AssertParity(bool usePickle)
    {
        var result = ParityCheck.Check(TestPaths.Fixture("vilbert"), usePickle);
        var failures = result.Outputs.Where(o => !o.Pass).Select(o => $"{o.Name}: {o.Error ?? "max abs error " + o.MaxAbsError}").ToList();
        Assert.That(failures, Is.Empty, "outputs out of tolerance");
        Assert.That(result.Outputs.Select(o => o.Name), Does.Contain("vil_prediction").And.Contain("c_layer.1.v").And.Contain("t_layer.3"));
        Assert.That(result.Pass, Is.True);
        TestContext.Out.WriteLine(string.Join(Environment.NewLine, result.Outputs.Select(o => $"{o.Name}: {o.MaxAbsError:0.###e+0}")));
    }

    [Test]
    public void ReproducesTheReferenceFromSafetensors() => AssertParity(usePickle: false);

    [Test]
    public void ReproducesTheReferenceFromThePickleCopy() => AssertParity(usePickle: true);
}
