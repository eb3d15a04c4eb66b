using System.Text;
using Microsoft.Win32.SafeHandles;

namespace ModelZoo.Processing.Regions;

/// <summary>
/// Random access to a region-feature TSV by image id: one pass over the file records where each line starts (only
/// the id field is looked at), then <see cref="Read"/> reads and decodes just that line. For evaluation over
/// files too large to hold in memory. A later line with the same id replaces an earlier one, as LXMERT's
/// img_id -> datum dictionary does. Reads are thread-safe.
/// </summary>
public sealed class RegionFeatureTsvIndex : IDisposable
{
    readonly SafeFileHandle _file;
    readonly Dictionary<string, (long Offset, int Length, int Line)> _lines;

    RegionFeatureTsvIndex(string path, SafeFileHandle file, Dictionary<string, (long, int, int)> lines)
    {
        Path = path;
        _file = file;
        _lines = lines;
    }

    public string Path { get; }

    public int Count => _lines.Count;

    public IEnumerable<string> ImageIds => _lines.Keys;

    public bool Contains(string imageId) => _lines.ContainsKey(imageId);

    public static RegionFeatureTsvIndex Build(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"region feature file not found: {path}", path);
        var lines = new Dictionary<string, (long, int, int)>(StringComparer.Ordinal);
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20))
        {
            var buffer = new byte[1 << 20];
            var id = new List<byte>(64);
            long position = 0, lineStart = 0;
            int lineNumber = 1;
            bool inId = true;
            int read;
            while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                for (int i = 0; i < read; i++, position++)
                {
                    byte b = buffer[i];
                    if (b == (byte)'\n')
                    {
                        Add(lineStart, position);
                        lineStart = position + 1;
                        lineNumber++;
                        id.Clear();
                        inId = true;
                    }
                    else if (inId)
                    {
                        if (b == (byte)'\t') inId = false;
                        else if (id.Count < 4096) id.Add(b);
                    }
                }
            }
            Add(lineStart, position);

            void Add(long start, long end)
            {
                if (end > start && end - start > int.MaxValue)
                    throw new InvalidDataException($"{path}: line {lineNumber} is longer than 2 GB");
                int length = (int)(end - start);
                if (length == 0 || (length == 1 && id.Count == 1 && id[0] == (byte)'\r')) return; // an empty line (or a lone '\r')
                if (inId) throw new InvalidDataException($"{path}: line {lineNumber} has no tab after its image id");
                lines[Encoding.UTF8.GetString(id.ToArray())] = (start, length, lineNumber);
            }
        }
        return new RegionFeatureTsvIndex(path, File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess), lines);
    }

    /// <summary>The features of one image; KeyNotFoundException when the file has no line for it.</summary>
    public RegionFeatures Read(string imageId)
    {
        if (!_lines.TryGetValue(imageId, out var line))
            throw new KeyNotFoundException($"{Path}: no features for image '{imageId}' ({Count} images indexed)");
        var bytes = new byte[line.Length];
        int done = 0;
        while (done < bytes.Length)
        {
            int n = RandomAccess.Read(_file, bytes.AsSpan(done), line.Offset + done);
            if (n == 0) throw new InvalidDataException($"{Path}: the file ended inside line {line.Line}; was it changed after indexing?");
            done += n;
        }
        var text = Encoding.UTF8.GetString(bytes).TrimEnd('\r');
        return RegionFeatureTsv.Parse(text, Path, line.Line);
    }

    public void Dispose() => _file.Dispose();
}
