using System.Runtime.InteropServices;

namespace ModelZoo.Attention.Diagnostics;

/// <summary>Resident memory of this process from /proc (Linux): current, peak, and a resettable peak for measuring one call.</summary>
public static class ProcessMemory
{
    /// <summary>Current resident set size in bytes (VmRSS), or -1 where /proc is unavailable.</summary>
    public static long ResidentBytes() => ReadStatus("VmRSS:");

    /// <summary>Peak resident set size in bytes since start or the last <see cref="ResetPeak"/> (VmHWM).</summary>
    public static long PeakResidentBytes() => ReadStatus("VmHWM:");

    /// <summary>Resets the peak to the current RSS (writes 5 to /proc/self/clear_refs). False where not supported.</summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Makes glibc serve every allocation of 64 KB or more with mmap and return it on free (it otherwise raises that
    /// threshold after large frees and keeps freed memory resident), so peak-RSS measurements of one call see what the
    /// call allocates. For benchmarks only; false where glibc's mallopt is not available.
    /// </summary>
    public static bool UseMmapForLargeAllocations()
    {
        const int MmapThreshold = -3; // M_MMAP_THRESHOLD
        try
        {
            bool done = OperatingSystem.IsLinux() && mallopt(MmapThreshold, 64 * 1024) == 1;
            LargeAllocationsUseMmap |= done;
            return done;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>True once <see cref="UseMmapForLargeAllocations"/> changed this process's allocator.</summary>
    public static bool LargeAllocationsUseMmap { get; private set; }

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int mallopt(int parameter, int value);

    static long ReadStatus(string field)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (!line.StartsWith(field, StringComparison.Ordinal)) continue;
                var parts = line[field.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[0]) * 1024;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return -1;
    }
}
