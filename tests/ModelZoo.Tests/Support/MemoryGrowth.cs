using ModelZoo.Attention.Diagnostics;
using NUnit.Framework;

namespace ModelZoo.Tests.Support;

/// <summary>The leak check every family runs: repeated passes must not grow the process's resident memory.</summary>
public static class MemoryGrowth
{
    /// <summary>
    /// Runs <paramref name="pass"/> <paramref name="warmup"/> times (allocator pools settle), then
    /// <paramref name="passes"/> times, and checks resident memory grew by less than <paramref name="tolerance"/>.
    /// </summary>
    public static void AssertSteady(Action pass, int warmup = 100, int passes = 200, double tolerance = 0.03)
    {
        for (int i = 0; i < warmup; i++) pass();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = ProcessMemory.ResidentBytes();
        for (int i = 0; i < passes; i++) pass();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long after = ProcessMemory.ResidentBytes();
        Assume.That(before, Is.GreaterThan(0), "no /proc here");
        Assert.That((after - before) / (double)before, Is.LessThan(tolerance), $"RSS {before / 1e6:0.0} MB -> {after / 1e6:0.0} MB");
    }
}
