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
    public void StreamingAddsAtMostTheLargestTensorWhilePyBridgeAddsTheWholeFile()
    {
        // The load goal measured the way the benchmark reports it: each variant in a fresh child process.
        var directory = TestPaths.TempDirectory();
        try
        {
            var result = LoadBenchmark.Run(sizeMb: 64, hidden: 128, directory, keep: false, inProcess: false);
            Assert.That(result.InProcess, Is.False);
            var streaming = result.Measurements.Single(m => m.Variant == "streaming");
            var pybridge = result.Measurements.Single(m => m.Variant == "pybridge");
            TestContext.Out.WriteLine($"file {result.FileBytes >> 20} MiB, largest tensor {result.Shape.LargestTensorBytes >> 20} MiB; load extra: " +
                                      $"streaming {streaming.LoadExtraBytes >> 20} MiB, pybridge {pybridge.LoadExtraBytes >> 20} MiB");
            foreach (var m in result.Measurements)
            {
                Assert.That(m.PeakReset, Is.True, "the child could not reset its peak (VmHWM)");
                Assert.That(m.ModelBytes, Is.EqualTo(result.Shape.Bytes));
                Assert.That(m.BaselineBytes, Is.GreaterThan(0));
            }
            Assert.That(result.FileBytes, Is.GreaterThan(60L << 20));
            Assert.That(streaming.LoadExtraBytes, Is.LessThan(result.Shape.LargestTensorBytes + (16L << 20)));
            // PyBridge holds the whole state dict beside the model: its extra is about the file's size.
            Assert.That(pybridge.LoadExtraBytes, Is.GreaterThan(result.FileBytes * 8 / 10).And.LessThan(result.FileBytes * 2));
            Assert.That(pybridge.Checksum, Is.EqualTo(streaming.Checksum).Within(1e-6).Percent);
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
