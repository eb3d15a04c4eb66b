using System.Text;

namespace ModelZoo.Weights;

public sealed record ShapeMismatch(string Key, long[] Expected, long[] Found, IReadOnlyList<string> Sources)
{
    public override string ToString() =>
        $"{Key}: model expects [{string.Join(", ", Expected)}], checkpoint has [{string.Join(", ", Found)}]" +
        (Sources.Count == 1 && Sources[0] == Key ? "" : $" (from {string.Join(" + ", Sources)})");
}

/// <summary>What a load did: keys missing from the checkpoint, keys the model does not have, shape mismatches, dtype changes.</summary>
public sealed class LoadReport
{
    public string Source { get; init; } = "";
    public string Format { get; init; } = "";
    public List<string> Missing { get; } = new();
    public List<string> Unexpected { get; } = new();
    public List<ShapeMismatch> ShapeMismatches { get; } = new();
    /// <summary>Checkpoint keys dropped on purpose by the key map.</summary>
    public List<string> Ignored { get; } = new();
    /// <summary>Several files loaded together: keys more than one file supplied, "key: from LATER (also in EARLIER)".</summary>
    public List<string> Superseded { get; } = new();
    /// <summary>"F32 -> BF16" → number of tensors converted that way.</summary>
    public SortedDictionary<string, int> DtypeChanges { get; } = new(StringComparer.Ordinal);
    public int TensorsLoaded { get; set; }
    public long ParametersLoaded { get; set; }

    public bool IsComplete => Missing.Count == 0 && Unexpected.Count == 0 && ShapeMismatches.Count == 0;

    public string ToText(int maxPerList = 20)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"loaded {TensorsLoaded} tensors ({ParametersLoaded:N0} values) from {Source} ({Format})");
        Section(sb, "missing (in the model, not in the checkpoint)", Missing, maxPerList);
        Section(sb, "unexpected (in the checkpoint, not in the model)", Unexpected, maxPerList);
        Section(sb, "shape mismatches", ShapeMismatches.Select(m => m.ToString()).ToList(), maxPerList);
        Section(sb, "ignored by the key map", Ignored, maxPerList);
        Section(sb, "supplied by more than one file (the later file is used)", Superseded, maxPerList);
        if (DtypeChanges.Count > 0)
            sb.AppendLine("dtype changes: " + string.Join(", ", DtypeChanges.Select(kv => $"{kv.Key} ({kv.Value})")));
        return sb.ToString().TrimEnd();
    }

    /// <summary>One line: tensors and values loaded, from where, and counts of everything else worth knowing.</summary>
    public string ToSummary()
    {
        var parts = new List<string> { $"loaded {TensorsLoaded} tensors ({ParametersLoaded:N0} values) from {Source} ({Format})" };
        if (Missing.Count > 0) parts.Add($"missing {Missing.Count}");
        if (Unexpected.Count > 0) parts.Add($"unexpected {Unexpected.Count}");
        if (ShapeMismatches.Count > 0) parts.Add($"shape mismatches {ShapeMismatches.Count}");
        parts.Add($"ignored by the key map {Ignored.Count}" + (Ignored.Count is > 0 and <= 3 ? $" ({string.Join(", ", Ignored)})" : ""));
        parts.Add(DtypeChanges.Count == 0 ? "no dtype changes" : "dtype changes " + string.Join(", ", DtypeChanges.Select(kv => $"{kv.Key} ({kv.Value})")));
        return string.Join("; ", parts);
    }

    static void Section(StringBuilder sb, string title, IReadOnlyList<string> items, int max)
    {
        if (items.Count == 0) return;
        sb.AppendLine($"{title}: {items.Count}");
        foreach (var item in items.Take(max)) sb.AppendLine("  " + item);
        if (items.Count > max) sb.AppendLine($"  ... and {items.Count - max} more");
    }

    public override string ToString() => ToText();
}
