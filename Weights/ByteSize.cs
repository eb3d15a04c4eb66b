using System.Globalization;
using System.Text.RegularExpressions;

namespace ModelZoo.Weights;

/// <summary>Sizes written the Hugging Face way: "2GB" (10^9), "500MB", "1GiB" (2^30), "4096" (bytes).</summary>
public static partial class ByteSize
{
    [GeneratedRegex(@"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    public static long Parse(string text)
    {
        var m = Pattern().Match(text ?? "");
        if (!m.Success) throw new ArgumentException($"'{text}' is not a size (examples: 2GB, 500MB, 1GiB, 4096)");
        double number = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        string unit = m.Groups[2].Success ? m.Groups[2].Value.ToUpperInvariant() : "B";
        double factor = unit switch
        {
            "B" => 1,
            "KB" => 1e3, "MB" => 1e6, "GB" => 1e9, "TB" => 1e12,
            "KIB" => 1L << 10, "MIB" => 1L << 20, "GIB" => 1L << 30, "TIB" => 1L << 40,
            _ => throw new ArgumentException($"unknown size unit '{unit}'"),
        };
        double bytes = Math.Round(number * factor);
        if (bytes < 1 || bytes > long.MaxValue / 2) throw new ArgumentException($"size '{text}' is out of range");
        return (long)bytes;
    }

    public static string Format(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.00} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.0} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.0} KiB",
        _ => $"{bytes} B",
    };
}
