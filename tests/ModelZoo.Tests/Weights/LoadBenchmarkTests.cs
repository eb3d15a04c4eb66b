using ModelZoo.Cli.Bench;
using ModelZoo.Tests.Support;
using NUnit.Framework;

namespace ModelZoo.Tests.Weights;

public class LoadBenchmarkTests
{
    [Test]
    public void TheLoadBenchmarkMeasuresBothVariantsOnTheSameWeights()
    {
        var directory = TestPaths.TempDirectory();
        try
        {
            var result = LoadBenchmark.Run(sizeMb: 4, hidden: 64, directory, keep: false, inProcess: true);
            Assert.That(result.Measurements.Select(m => m.Variant), Is.EqualTo(LoadBenchmark.Variants));
            Assert.That(result.FileBytes, Is.GreaterThan(result.Shape.Bytes).And.LessThan(result.Shape.Bytes + (64 << 10)));
            foreach (var m in result.Measurements)
            {
                Assert.That(m.ModelBytes, Is.EqualTo(result.Shape.Bytes));
                Assert.That(m.Seconds, Is.GreaterThan(0));
                Assert.That(m.PeakBytes, Is.GreaterThanOrEqualTo(m.WithModelBytes - (1 << 20)));
            }
            // Both loaders put the same (generated, non-zero) weights into the model.
            Assert.That(result.Measurements[0].Checksum, Is.GreaterThan(0));
            Assert.That(result.Measurements[1].Checksum, Is.EqualTo(result.Measurements[0].Checksum).Within(1e-6).Percent);
            Assert.That(Directory.GetFiles(directory), Is.Empty, "the generated checkpoint is removed");
        }
        finally
        {
            Directory.Delete(directory, true);
        }
    }

    [Test]
    public void TheBenchmarkCommandPrintsItsTable()
    {
        var (code, output, error) = CliRunner.Run("bench", "load", "--size-mb", "2", "--hidden", "32", "--in-process");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain("streaming").And.Contain("pybridge").And.Contain("pybridge/streaming: time").And.Contain("checksums agree"));
    }
}
