using System.Text.Json;
using System.Text.RegularExpressions;

namespace ModelZoo.Models.OneStream;

/// <summary>
/// The answer text of each output of a VQA head. From a checkpoint's config.json (id2label, as the Hugging Face
/// ViLT VQA checkpoint carries the 3129 VQA v2 answers), or from a user file: a JSON array of answers, a JSON
/// object answer → index (UNITER's ans2label) or index → answer (id2label), or a text file with one answer a line.
/// </summary>
public sealed class AnswerVocabulary
{
    static readonly Regex Placeholder = new(@"^LABEL_\d+$", RegexOptions.CultureInvariant);

    public IReadOnlyList<string> Answers { get; }
    /// <summary>Where the answers came from (a file path, or "config.json id2label").</summary>
    public string Source { get; }

    public AnswerVocabulary(IReadOnlyList<string> answers, string source)
    {
        if (answers.Count == 0) throw new InvalidDataException($"{source}: no answers");
        Answers = answers;
        Source = source;
    }

    public int Count => Answers.Count;
    public string this[int index] => Answers[index];

    /// <summary>Index → answer pairs (id2label) as answers in index order; every index 0..n-1 must be present once.</summary>
    public static AnswerVocabulary FromIndexMap(IReadOnlyDictionary<int, string> byIndex, string source)
    {
        var answers = new string[byIndex.Count];
        foreach (var (index, answer) in byIndex)
        {
            if (index < 0 || index >= answers.Length)
                throw new InvalidDataException($"{source}: answer index {index} is outside 0..{answers.Length - 1} (indices must be 0..n-1)");
            answers[index] = answer;
        }
        return new AnswerVocabulary(answers, source);
    }

    /// <summary>
    /// id2label of the config.json beside the weights (a directory's config.json, or the one next to a file); null
    /// when there is none or it holds only Hugging Face's placeholder names LABEL_0, LABEL_1, ...
    /// </summary>
    public static AnswerVocabulary? FromCheckpointConfig(string weightsPath)
    {
        string directory = Directory.Exists(weightsPath) ? weightsPath : Path.GetDirectoryName(Path.GetFullPath(weightsPath)) ?? ".";
        string path = Path.Combine(directory, "config.json");
        if (!File.Exists(path)) return null;
        using var document = ParseJson(path);
        if (!document.RootElement.TryGetProperty("id2label", out var id2label) || id2label.ValueKind != JsonValueKind.Object) return null;
        var vocabulary = FromIndexMap(ReadIndexToAnswer(id2label, path), path + " id2label");
        return vocabulary.Answers.All(a => Placeholder.IsMatch(a)) ? null : vocabulary;
    }

    /// <summary>Reads a user's answer file (JSON array, JSON answer → index or index → answer, or one answer a line).</summary>
    public static AnswerVocabulary Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such answer file", path);
        string text = File.ReadAllText(path);
        if (text.TrimStart().StartsWith('[') || text.TrimStart().StartsWith('{'))
        {
            using var document = ParseJson(path);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Array)
                return new AnswerVocabulary(root.EnumerateArray().Select((e, i) => e.ValueKind == JsonValueKind.String ? e.GetString()!
                    : throw new InvalidDataException($"{path}: entry {i} is not a string")).ToList(), path);
            var first = root.EnumerateObject().FirstOrDefault();
            if (first.Value.ValueKind == JsonValueKind.Number)
            {
                var byIndex = new Dictionary<int, string>();
                foreach (var entry in root.EnumerateObject())
                {
                    if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int index))
                        throw new InvalidDataException($"{path}: \"{entry.Name}\" maps to {entry.Value}, not an answer index");
                    if (!byIndex.TryAdd(index, entry.Name)) throw new InvalidDataException($"{path}: index {index} is given twice");
                }
                return FromIndexMap(byIndex, path);
            }
            return FromIndexMap(ReadIndexToAnswer(root, path), path);
        }
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return new AnswerVocabulary(lines, path);
    }

    static Dictionary<int, string> ReadIndexToAnswer(JsonElement map, string path)
    {
        var byIndex = new Dictionary<int, string>();
        foreach (var entry in map.EnumerateObject())
        {
            if (!int.TryParse(entry.Name, out int index)) throw new InvalidDataException($"{path}: key \"{entry.Name}\" is not an answer index");
            if (entry.Value.ValueKind != JsonValueKind.String) throw new InvalidDataException($"{path}: answer {index} is not a string");
            byIndex[index] = entry.Value.GetString()!;
        }
        return byIndex;
    }

    static JsonDocument ParseJson(string path)
    {
        try { return JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
    }
}
