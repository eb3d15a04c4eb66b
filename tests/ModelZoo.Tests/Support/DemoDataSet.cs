using NUnit.Framework;

namespace ModelZoo.Tests.Support;

/// <summary>The demo's shapes data set written to disk (`modelzoo demo --quick --write-data`), for end-to-end CLI tests.</summary>
public static class DemoDataSet
{
    /// <summary>A fresh temporary directory holding the data set (images, regions, VQA JSON, captions, manifests); the caller deletes it.</summary>
    public static string WriteTemp()
    {
        var directory = TestPaths.TempDirectory();
        var (code, output, error) = CliRunner.Run("demo", "--quick", "--write-data", directory);
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain("vqa-train.json").And.Contain("retrieval-val.json"));
        return directory;
    }
}
