using System.Text.Json;
using ModelZoo.Evaluation.Vqa;
using ModelZoo.Weights;

namespace ModelZoo.Evaluation.Data;

/// <summary>A VQA question with its human answers (none for test splits).</summary>
public sealed record VqaExample(long QuestionId, long ImageId, string Question, IReadOnlyList<string> Answers,
                                string? QuestionType = null, string? AnswerType = null, string? MultipleChoiceAnswer = null);

/// <summary>Reads VQA v2 (questions + annotations, the official JSON files), streaming the large annotation array.</summary>
public static class VqaData
{
    /// <summary>
    /// Questions joined with their annotations by question id, in questions-file order. The questions are held in
    /// memory (short strings); the annotations are streamed. Without annotations (test splits) answers are empty.
    /// </summary>
    public static IEnumerable<VqaExample> Read(string questionsPath, string? annotationsPath)
    {
        var questions = new List<VqaQuestion>();
        int index = 0;
        foreach (var q in JsonArrayStream.Items(questionsPath, "questions"))
            questions.Add(VqaFiles.ParseQuestion(q, $"{questionsPath}: questions[{index++}]"));

        if (annotationsPath is null)
        {
            foreach (var q in questions) yield return new VqaExample(q.QuestionId, q.ImageId, q.Question, Array.Empty<string>());
            yield break;
        }

        var byId = new Dictionary<long, VqaAnnotation>(questions.Count);
        index = 0;
        foreach (var a in JsonArrayStream.Items(annotationsPath, "annotations"))
        {
            var annotation = VqaFiles.ParseAnnotation(a, $"{annotationsPath}: annotations[{index++}]");
            byId[annotation.QuestionId] = annotation;
        }
        foreach (var q in questions)
        {
            if (!byId.TryGetValue(q.QuestionId, out var a))
                throw new InvalidDataException($"{annotationsPath}: no annotation for question {q.QuestionId} of {questionsPath}");
            yield return new VqaExample(q.QuestionId, q.ImageId, q.Question, a.Answers.Select(x => x.Answer).ToList(),
                a.QuestionType, a.AnswerType, a.MultipleChoiceAnswer);
        }
    }

    /// <summary>Annotations only (what the answer vocabulary is built from), streamed.</summary>
    public static IEnumerable<VqaAnnotation> ReadAnnotations(string annotationsPath)
    {
        int index = 0;
        foreach (var a in JsonArrayStream.Items(annotationsPath, "annotations"))
            yield return VqaFiles.ParseAnnotation(a, $"{annotationsPath}: annotations[{index++}]");
    }
}

/// <summary>
/// The answer vocabulary of VQA classification heads: the most frequent answers of the training annotations
/// (3129 in the common VQA v2 setup), each normalised as the official evaluation normalises answers; and the soft
/// target of a question: score min(1, count / 3) for each vocabulary answer given by <c>count</c> of its humans.
/// </summary>
public sealed class AnswerVocabulary
{
    readonly Dictionary<string, int> _index;

    public const int CommonSize = 3129;

    public IReadOnlyList<string> Answers { get; }
    public int Count => Answers.Count;

    public AnswerVocabulary(IReadOnlyList<string> answers)
    {
        Answers = answers;
        _index = new Dictionary<string, int>(answers.Count, StringComparer.Ordinal);
        for (int i = 0; i < answers.Count; i++)
            if (!_index.TryAdd(answers[i], i)) throw new ArgumentException($"answer '{answers[i]}' appears twice in the vocabulary");
    }

    /// <summary>How an answer string becomes a vocabulary key: the official cleaning and normalisation.</summary>
    public static string Key(string answer) => VqaAnswerNormalizer.Normalize(VqaAnswerNormalizer.Clean(answer));

    /// <summary>
    /// The <paramref name="maxAnswers"/> most frequent normalised answers with at least <paramref name="minCount"/>
    /// occurrences, counting each question's multiple_choice_answer (its most common human answer when absent).
    /// Equal counts order by the answer text, so the vocabulary is deterministic.
    /// </summary>
    public static AnswerVocabulary Build(IEnumerable<VqaExample> training, int maxAnswers = CommonSize, int minCount = 1)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var example in training)
        {
            string? answer = example.MultipleChoiceAnswer
                             ?? example.Answers.GroupBy(a => a, StringComparer.Ordinal).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).FirstOrDefault()?.Key;
            if (answer is null) continue;
            string key = Key(answer);
            if (key.Length == 0) continue;
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }
        var answers = counts.Where(p => p.Value >= minCount)
            .OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal)
            .Take(maxAnswers).Select(p => p.Key).ToList();
        if (answers.Count == 0) throw new InvalidDataException("no answers to build a vocabulary from (are the training annotations empty?)");
        return new AnswerVocabulary(answers);
    }

    public int? IndexOf(string answer) => _index.TryGetValue(Key(answer), out int i) ? i : null;

    /// <summary>Soft target of one question: (vocabulary index, min(1, count / 3)) for each answer in the vocabulary.</summary>
    public IReadOnlyList<(int Label, float Score)> SoftTargets(IReadOnlyList<string> humanAnswers)
    {
        var counts = new Dictionary<int, int>();
        foreach (var answer in humanAnswers)
            if (IndexOf(answer) is int label) counts[label] = counts.GetValueOrDefault(label) + 1;
        return counts.OrderBy(p => p.Key).Select(p => (p.Key, Math.Min(1f, p.Value / 3f))).ToList();
    }

    /// <summary>Dense soft targets [answers] for one question.</summary>
    public float[] SoftTargetVector(IReadOnlyList<string> humanAnswers)
    {
        var vector = new float[Count];
        foreach (var (label, score) in SoftTargets(humanAnswers)) vector[label] = score;
        return vector;
    }

    public void Save(string path)
    {
        var json = JsonSerializer.Serialize(new { answers = Answers }, new JsonSerializerOptions { WriteIndented = true });
        AtomicFile.WriteAllText(path, json);
    }

    public static AnswerVocabulary Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: answer vocabulary not found", path);
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            var root = document.RootElement;
            var list = root.ValueKind == JsonValueKind.Array ? root
                : root.TryGetProperty("answers", out var a) ? a : throw new InvalidDataException($"{path}: expected {{\"answers\": [...]}} or a JSON array");
            return new AnswerVocabulary(list.EnumerateArray().Select(e => e.GetString() ?? throw new InvalidDataException($"{path}: answers must be strings")).ToList());
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e);
        }
    }
}
