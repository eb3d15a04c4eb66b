using ModelZoo.Models.Parity;
using ModelZoo.Tests.Support;
using NUnit.Framework;

namespace ModelZoo.Tests.TwoStream;

/// <summary>Placements, frozen layers, fast mode and layer counts the shared fixtures do not cover (see Fixtures/README.md).</summary>
public class ExtraFixtureTests : SingleThreadedTests
{
    [TestCase("vilbert-placement-frozen")]
    [TestCase("vilbert-placement-out-of-order")]
    [TestCase("vilbert-fast-mode")]
    [TestCase("vilbert-no-coattention")]
    [TestCase("lxmert-no-relationship-layers")]
    public void ReproducesTheOriginalCode(string name)
    {
        var result = ParityCheck.Check(Path.Combine(TestPaths.RepositoryRoot, "tests", "ModelZoo.Tests", "TwoStream", "Fixtures", name));
        var failures = result.Outputs.Where(o => !o.Pass).Select(o => $"{o.Name}: {o.Error ?? "max abs error " + o.MaxAbsError}").ToList();
        Assert.That(failures, Is.Empty);
        Assert.That(result.Outputs.Count, Is.GreaterThan(10));
        Assert.That(result.Pass, Is.True);
    }
}
