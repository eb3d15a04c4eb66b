using System.Text;

namespace ModelZoo.Cli.Infrastructure;

/// <summary>A plain-text table with aligned columns (numbers right-aligned).</summary>
public sealed class Table(params string[] headers)
{
    readonly List<string[]> _rows = new();

    public Table Add(params object?[] cells)
    {
        _rows.Add(cells.Select(c => c?.ToString() ?? "").ToArray());
        return this;
    }

    public override string ToString()
    {
        int columns = headers.Length;
        var widths = Enumerable.Range(0, columns).Select(i => Math.Max(headers[i].Length, _rows.Count == 0 ? 0 : _rows.Max(r => i < r.Length ? r[i].Length : 0))).ToArray();
        var sb = new StringBuilder();
        Line(sb, headers, widths, numeric: false);
        sb.AppendLine(string.Join("  ", widths.Select(w => new string('-', w))));
        foreach (var row in _rows) Line(sb, row, widths, numeric: true);
        return sb.ToString();
    }

    static void Line(StringBuilder sb, string[] cells, int[] widths, bool numeric)
    {
        for (int i = 0; i < widths.Length; i++)
        {
            string cell = i < cells.Length ? cells[i] : "";
            bool right = numeric && cell.Length > 0 && (char.IsDigit(cell[0]) || cell[0] == '-' && cell.Length > 1 && char.IsDigit(cell[1]));
            if (i > 0) sb.Append("  ");
            sb.Append(right ? cell.PadLeft(widths[i]) : (i == widths.Length - 1 ? cell : cell.PadRight(widths[i])));
        }
        sb.AppendLine();
    }
}
