namespace ModelZoo.Tests.Support;

/// <summary>
/// Where the golden fixtures and vocabularies are: ../shared beside the repository when it exists (the canonical
/// copy), else the byte-identical copy committed under tests/data (so a clean clone tests on its own).
/// </summary>
public static class TestPaths
{
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public static string VendoredData => Path.Combine(RepositoryRoot, "tests", "data");

    public static string? SharedDirectory
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("MODELZOO_SHARED");
            if (!string.IsNullOrEmpty(env) && Directory.Exists(Path.Combine(env, "fixtures"))) return env;
            var sibling = Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared"));
            return Directory.Exists(Path.Combine(sibling, "fixtures")) ? sibling : null;
        }
    }

    public static string DataRoot => SharedDirectory ?? VendoredData;

    public static string Fixture(string name) => Path.Combine(DataRoot, "fixtures", name);

    public static string Vocab(string name) => Path.Combine(DataRoot, "vocab", name);

    static string FindRepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ModelZoo.sln"))) directory = directory.Parent;
        return directory?.FullName ?? throw new DirectoryNotFoundException("cannot find ModelZoo.sln above " + AppContext.BaseDirectory);
    }

    /// <summary>A fresh temporary directory, deleted by the caller.</summary>
    public static string TempDirectory()
    {
        var path = Path.Combine(Path.GetTempPath(), "modelzoo-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }
}
