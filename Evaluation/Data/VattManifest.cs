using System.Text.Json;

namespace ModelZoo.Evaluation.Data;

/// <summary>
/// One clip of a VATT pre-training manifest: its video (a file ffmpeg decodes, or a safetensors file of frames),
/// its WAV audio and its captions. Paths are absolute; <see cref="Source"/> is "manifest:line" for error messages.
/// </summary>
public sealed record VattClipEntry(string Source, string? Id, string? Video, string? Frames, string? Audio, IReadOnlyList<string> Captions, double Start);

/// <summary>
/// The VATT pre-training manifest: JSON lines, one clip per line, paths relative to the manifest:
/// <c>{"video": "clips/a.mp4", "audio": "clips/a.wav", "captions": ["a dog barks", "..."], "start": 1.5}</c> or
/// <c>{"frames": "clips/b.safetensors", "audio": "clips/b.wav", "captions": "one caption"}</c>. Exactly one of
/// <c>video</c> / <c>frames</c>; <c>audio</c> and <c>captions</c> are optional, but every line must have the same
/// ones (they decide the loss terms); <c>start</c> (seconds, default 0) offsets the video file and the audio;
/// <c>id</c> is optional. Blank lines are skipped.
/// </summary>
public static class VattManifest
{
    static readonly HashSet<string> Keys = new(StringComparer.Ordinal) { "id", "video", "frames", "audio", "captions", "start" };

    public static List<VattClipEntry> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: VATT manifest not found", path);
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var entries = new List<VattClipEntry>();
        int number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string where = $"{path}:{number}";
            JsonDocument document;
            try { document = JsonDocument.Parse(line); }
            catch (JsonException e) { throw new InvalidDataException($"{where}: not a JSON object ({e.Message}); a VATT manifest has one JSON object per line"); }
            using (document) entries.Add(Parse(document.RootElement, where, directory));
        }
        if (entries.Count == 0) throw new InvalidDataException($"{path}: no clips (one JSON object per line: video or frames, audio, captions)");
        var first = entries[0];
        foreach (var entry in entries)
        {
            if ((entry.Audio is null) != (first.Audio is null))
                throw new InvalidDataException($"{entry.Source}: {(entry.Audio is null ? "no \"audio\"" : "has \"audio\"")} but {first.Source} " +
                                               $"{(first.Audio is null ? "has none" : "has one")}: every clip needs the same modalities");
            if ((entry.Captions.Count == 0) != (first.Captions.Count == 0))
                throw new InvalidDataException($"{entry.Source}: {(entry.Captions.Count == 0 ? "no captions" : "has captions")} but {first.Source} " +
                                               $"{(first.Captions.Count == 0 ? "has none" : "has some")}: every clip needs the same modalities");
        }
        if (first.Audio is null && first.Captions.Count == 0)
            throw new InvalidDataException($"{path}: the clips have neither \"audio\" nor \"captions\": nothing to contrast the video with");
        return entries;
    }

    static VattClipEntry Parse(JsonElement root, string where, string directory)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where}: expected a JSON object, got {root.ValueKind}");
        foreach (var property in root.EnumerateObject())
            if (!Keys.Contains(property.Name))
                throw new InvalidDataException($"{where}: unknown key \"{property.Name}\" (known: {string.Join(", ", Keys)})");
        string? Text(string key)
        {
            if (!root.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null) return null;
            if (value.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(value.GetString()))
                throw new InvalidDataException($"{where}: \"{key}\" must be a non-empty string");
            return value.GetString();
        }
        string? Resolve(string? relative) => relative is null ? null : Path.GetFullPath(Path.Combine(directory, relative));
        string? video = Resolve(Text("video")), frames = Resolve(Text("frames"));
        if ((video is null) == (frames is null))
            throw new InvalidDataException($"{where}: give exactly one of \"video\" (a file ffmpeg decodes) and \"frames\" (a safetensors file of [T, H, W, 3] frames)");
        var captions = new List<string>();
        if (root.TryGetProperty("captions", out var c))
        {
            if (c.ValueKind == JsonValueKind.String) captions.Add(c.GetString()!);
            else if (c.ValueKind == JsonValueKind.Array)
                foreach (var (item, i) in c.EnumerateArray().Select((item, i) => (item, i)))
                    captions.Add(item.ValueKind == JsonValueKind.String ? item.GetString()! : throw new InvalidDataException($"{where}: captions[{i}] is not a string"));
            else if (c.ValueKind != JsonValueKind.Null) throw new InvalidDataException($"{where}: \"captions\" must be a string or a list of strings");
        }
        double start = 0;
        if (root.TryGetProperty("start", out var s) && s.ValueKind != JsonValueKind.Null)
        {
            if (s.ValueKind != JsonValueKind.Number || !s.TryGetDouble(out start) || !(start >= 0) || !double.IsFinite(start))
                throw new InvalidDataException($"{where}: \"start\" must be a number of seconds ≥ 0");
        }
        string? id = root.TryGetProperty("id", out var idValue) ? idValue.ValueKind switch
        {
            JsonValueKind.String => idValue.GetString(),
            JsonValueKind.Number => idValue.GetRawText(),
            JsonValueKind.Null => null,
            _ => throw new InvalidDataException($"{where}: \"id\" must be a string or a number"),
        } : null;
        return new VattClipEntry(where, id, video, frames, Resolve(Text("audio")), captions, start);
    }

    /// <summary>Writes clips as a manifest (paths relative to it), atomically.</summary>
    public static void Write(string path, IEnumerable<VattClipEntry> entries)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string? Relative(string? full) => full is null ? null : Path.GetRelativePath(directory, full).Replace('\\', '/');
        var lines = entries.Select(e => JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["id"] = e.Id, ["video"] = Relative(e.Video), ["frames"] = Relative(e.Frames), ["audio"] = Relative(e.Audio),
            ["captions"] = e.Captions.Count > 0 ? e.Captions : null, ["start"] = e.Start != 0 ? e.Start : null,
        }.Where(p => p.Value is not null).ToDictionary(p => p.Key, p => p.Value)));
        Weights.AtomicFile.WriteAllText(path, string.Join("\n", lines) + "\n");
    }
}
