using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;

namespace ModelZoo.Evaluation.Vqa;

/// <summary>One question of a VQA questions file (<c>questions[i]</c>).</summary>
public sealed record VqaQuestion(long QuestionId, long ImageId, string Question, IReadOnlyList<string>? MultipleChoices = null);

/// <summary>A VQA questions file: <c>{"task_type", "questions": [{image_id, question, question_id}]}</c>.</summary>
public sealed record VqaQuestionFile(string? TaskType, IReadOnlyList<VqaQuestion> Questions);

/// <summary>
/// One human answer (<c>answers[j]</c> of an annotation). <see cref="OtherFieldsKey"/> encodes every other field
/// of the answer object (answer_id, answer_confidence, ...) so that two answers compare equal exactly when the
/// official script's dictionaries compare equal (Python equality: 1 == 1.0 == true).
/// </summary>
public sealed record VqaHumanAnswer(string Answer, string? Confidence, long? AnswerId, string OtherFieldsKey);

/// <summary>One annotation of a VQA annotations file (<c>annotations[i]</c>).</summary>
public sealed record VqaAnnotation(long QuestionId, long ImageId, string QuestionType, string AnswerType, string? MultipleChoiceAnswer,
                                   IReadOnlyList<VqaHumanAnswer> Answers);

/// <summary>One prediction of a results file: <c>[{"question_id", "answer"}]</c>.</summary>
public sealed record VqaPrediction(long QuestionId, string Answer);

/// <summary>Reads the official VQA JSON formats (questions, annotations, results) with errors that name the file and the entry.</summary>
public static class VqaFiles
{
    public static VqaQuestionFile LoadQuestions(string path)
    {
        using var document = Open(path);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("questions", out var list) || list.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{path}: not a VQA questions file (expected an object with a \"questions\" array)");
        string? taskType = root.TryGetProperty("task_type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        var questions = new List<VqaQuestion>(list.GetArrayLength());
        int index = 0;
        foreach (var q in list.EnumerateArray())
        {
            string where = $"{path}: questions[{index++}]";
            questions.Add(ParseQuestion(q, where));
        }
        return new VqaQuestionFile(taskType, questions);
    }

    public static IReadOnlyList<VqaAnnotation> LoadAnnotations(string path)
    {
        using var document = Open(path);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("annotations", out var list) || list.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{path}: not a VQA annotations file (expected an object with an \"annotations\" array)");
        var annotations = new List<VqaAnnotation>(list.GetArrayLength());
        int index = 0;
        foreach (var a in list.EnumerateArray())
            annotations.Add(ParseAnnotation(a, $"{path}: annotations[{index++}]"));
        return annotations;
    }

    public static IReadOnlyList<VqaPrediction> LoadResults(string path)
    {
        using var document = Open(path);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{path}: results is not an array of objects (expected [{{\"question_id\": ..., \"answer\": ...}}])");
        var results = new List<VqaPrediction>(root.GetArrayLength());
        int index = 0;
        foreach (var r in root.EnumerateArray())
        {
            string where = $"{path}: [{index++}]";
            RequireObject(r, where);
            results.Add(new VqaPrediction(Id(r, "question_id", where), Text(r, "answer", where)));
        }
        return results;
    }

    internal static VqaQuestion ParseQuestion(JsonElement q, string where)
    {
        RequireObject(q, where);
        List<string>? choices = null;
        if (q.TryGetProperty("multiple_choices", out var mc) && mc.ValueKind == JsonValueKind.Array)
            choices = mc.EnumerateArray().Select(c => c.ValueKind == JsonValueKind.String ? c.GetString()! : c.GetRawText()).ToList();
        return new VqaQuestion(Id(q, "question_id", where), OptionalId(q, "image_id", where) ?? 0, Text(q, "question", where), choices);
    }

    internal static VqaAnnotation ParseAnnotation(JsonElement a, string where)
    {
        RequireObject(a, where);
        if (!a.TryGetProperty("answers", out var answers) || answers.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{where}: missing the \"answers\" array");
        var human = new List<VqaHumanAnswer>(answers.GetArrayLength());
        int j = 0;
        foreach (var answer in answers.EnumerateArray())
        {
            string at = $"{where}.answers[{j++}]";
            RequireObject(answer, at);
            string? confidence = answer.TryGetProperty("answer_confidence", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
            human.Add(new VqaHumanAnswer(Text(answer, "answer", at), confidence, OptionalId(answer, "answer_id", at), OtherFieldsKey(answer, "answer")));
        }
        string? multipleChoice = a.TryGetProperty("multiple_choice_answer", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
        return new VqaAnnotation(Id(a, "question_id", where), OptionalId(a, "image_id", where) ?? 0, Text(a, "question_type", where),
            Text(a, "answer_type", where), multipleChoice, human);
    }

    static JsonDocument Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        try
        {
            using var stream = File.OpenRead(path);
            return JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = false, MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e);
        }
    }

    static void RequireObject(JsonElement e, string where)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where}: expected an object, found {e.ValueKind}");
    }

    internal static long Id(JsonElement e, string key, string where) =>
        OptionalId(e, key, where) ?? throw new InvalidDataException($"{where}: missing \"{key}\"");

    internal static long? OptionalId(JsonElement e, string key, string where)
    {
        if (!e.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out long id)) return id;
        throw new InvalidDataException($"{where}: \"{key}\" must be an integer, found {value.GetRawText()}");
    }

    internal static string Text(JsonElement e, string key, string where)
    {
        if (!e.TryGetProperty(key, out var value)) throw new InvalidDataException($"{where}: missing \"{key}\"");
        if (value.ValueKind != JsonValueKind.String) throw new InvalidDataException($"{where}: \"{key}\" must be a string, found {value.GetRawText()}");
        return value.GetString()!;
    }

    /// <summary>
    /// A canonical text for the fields of an object other than <paramref name="except"/>, equal for two objects
    /// exactly when Python's == on the decoded dictionaries is true (ints and floats compare by value, true == 1).
    /// </summary>
    internal static string OtherFieldsKey(JsonElement obj, string except)
    {
        var fields = new SortedDictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var p in obj.EnumerateObject())
            if (p.Name != except) fields[p.Name] = p.Value; // duplicate keys: the last wins, as json.load does
        var sb = new StringBuilder();
        foreach (var (name, value) in fields)
        {
            sb.Append(JsonSerializer.Serialize(name)).Append(':');
            Canonical(value, sb);
            sb.Append(';');
        }
        return sb.ToString();
    }

    static void Canonical(JsonElement value, StringBuilder sb)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String: sb.Append(JsonSerializer.Serialize(value.GetString())); break;
            case JsonValueKind.True: sb.Append('1'); break;
            case JsonValueKind.False: sb.Append('0'); break;
            case JsonValueKind.Null: sb.Append("null"); break;
            case JsonValueKind.Number: sb.Append(CanonicalNumber(value.GetRawText())); break;
            case JsonValueKind.Array:
                sb.Append('[');
                foreach (var item in value.EnumerateArray()) { Canonical(item, sb); sb.Append(','); }
                sb.Append(']');
                break;
            default:
                var fields = new SortedDictionary<string, JsonElement>(StringComparer.Ordinal);
                foreach (var p in value.EnumerateObject()) fields[p.Name] = p.Value;
                sb.Append('{');
                foreach (var (name, item) in fields) { sb.Append(JsonSerializer.Serialize(name)).Append(':'); Canonical(item, sb); sb.Append(','); }
                sb.Append('}');
                break;
        }
    }

    // JSON integers are Python ints (exact); others are floats. An integral float equals the int of the same value.
    static string CanonicalNumber(string raw)
    {
        if (raw.IndexOfAny(new[] { '.', 'e', 'E' }) < 0) return BigInteger.Parse(raw, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture);
        double d = double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture);
        if (double.IsFinite(d) && Math.Floor(d) == d) return new BigInteger(d).ToString(CultureInfo.InvariantCulture);
        return "f" + d.ToString("R", CultureInfo.InvariantCulture);
    }
}
