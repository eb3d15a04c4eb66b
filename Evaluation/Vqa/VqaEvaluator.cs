using ModelZoo.Evaluation.Metrics;

namespace ModelZoo.Evaluation.Vqa;

/// <summary>
/// What the official evaluation reports, every value as Python's <c>round(100 * acc, digits)</c>:
/// <c>accuracy['overall' | 'perAnswerType' | 'perQuestionType']</c>, <c>evalQA</c> (per question) and
/// <c>evalAnsType</c> / <c>evalQuesType</c> (per question, grouped). Dictionaries keep the script's insertion order.
/// </summary>
public sealed record VqaEvaluation(
    double Overall,
    OrderedDictionary<string, double> PerAnswerType,
    OrderedDictionary<string, double> PerQuestionType,
    OrderedDictionary<long, double> PerQuestion,
    OrderedDictionary<string, OrderedDictionary<long, double>> EvalAnswerType,
    OrderedDictionary<string, OrderedDictionary<long, double>> EvalQuestionType);

/// <summary>
/// The official VQA accuracy (GT-Vision-Lab/VQA PythonEvaluationTools/vqaEvaluation/vqaEval.py, VQAEval.evaluate
/// with the VQA helper's loadRes checks), reproduced exactly:
/// <list type="bullet">
/// <item>human answers and the prediction get newline/tab to space and strip;</item>
/// <item>only when the human answers are not all identical do both sides get <see cref="VqaAnswerNormalizer.Normalize"/>
/// (with ten identical answers the raw stripped prediction is compared: "Two" against ten "2" scores 0);</item>
/// <item>accuracy = mean over leaving each human answer out of min(1, matches among the others / 3), where
/// "leaving out" drops every answer whose whole dictionary equals the one left out;</item>
/// <item>overall, per answer type and per question type are means in annotation order, with CPython's float
/// <c>sum</c> and <c>round</c> (see <see cref="PythonFloat"/>).</item>
/// </list>
/// </summary>
public static class VqaEvaluator
{
    /// <summary>Runs the evaluation over every annotated question. <paramref name="questions"/> is needed only for Multiple Choice checks.</summary>
    public static VqaEvaluation Evaluate(IReadOnlyList<VqaAnnotation> annotations, IReadOnlyList<VqaPrediction> results,
                                         VqaQuestionFile? questions = null, int digits = 2)
    {
        if (annotations.Count == 0) throw new InvalidDataException("the annotations hold no questions: nothing to evaluate");

        // The helper indexes annotations and results by question id; a repeated id keeps its last entry.
        var annotationById = new Dictionary<long, int>();
        for (int i = 0; i < annotations.Count; i++) annotationById[annotations[i].QuestionId] = i;
        var predictionById = new Dictionary<long, string>();
        foreach (var r in results) predictionById[r.QuestionId] = r.Answer;
        CheckResultsCoverAnnotations(annotationById.Keys, predictionById.Keys);
        if (string.Equals(questions?.TaskType, "Multiple Choice", StringComparison.Ordinal)) CheckMultipleChoice(questions!, predictionById);

        // The script rewrites the annotation's answers in place, so an id listed twice is processed twice.
        var currentAnswers = new Dictionary<int, string[]>();

        var accuracies = new List<double>(annotations.Count);
        var byQuestionType = new OrderedDictionary<string, List<double>>(StringComparer.Ordinal);
        var byAnswerType = new OrderedDictionary<string, List<double>>(StringComparer.Ordinal);
        var perQuestion = new OrderedDictionary<long, double>();
        var evalQuestionType = new OrderedDictionary<string, OrderedDictionary<long, double>>(StringComparer.Ordinal);
        var evalAnswerType = new OrderedDictionary<string, OrderedDictionary<long, double>>(StringComparer.Ordinal);

        foreach (var questionId in annotations.Select(a => a.QuestionId))
        {
            int index = annotationById[questionId];
            var annotation = annotations[index];
            if (annotation.Answers.Count == 0) throw new InvalidDataException($"question {questionId} has no human answers (the official script divides by zero)");
            if (!currentAnswers.TryGetValue(index, out var answers))
                currentAnswers[index] = answers = annotation.Answers.Select(a => a.Answer).ToArray();

            for (int j = 0; j < answers.Length; j++) answers[j] = VqaAnswerNormalizer.Clean(answers[j]);
            string prediction = VqaAnswerNormalizer.Clean(predictionById[questionId]);
            if (answers.Distinct(StringComparer.Ordinal).Skip(1).Any())
            {
                for (int j = 0; j < answers.Length; j++) answers[j] = VqaAnswerNormalizer.Normalize(answers[j]);
                prediction = VqaAnswerNormalizer.Normalize(prediction);
            }

            double accuracy = LeaveOneOutAccuracy(annotation.Answers, answers, prediction);
            accuracies.Add(accuracy);
            Group(byQuestionType, annotation.QuestionType).Add(accuracy);
            Group(byAnswerType, annotation.AnswerType).Add(accuracy);
            double rounded = PythonFloat.Round(100 * accuracy, digits);
            perQuestion[questionId] = rounded;
            Group(evalQuestionType, annotation.QuestionType)[questionId] = rounded;
            Group(evalAnswerType, annotation.AnswerType)[questionId] = rounded;
        }

        return new VqaEvaluation(
            Mean(accuracies, digits),
            Means(byAnswerType, digits),
            Means(byQuestionType, digits),
            perQuestion, evalAnswerType, evalQuestionType);
    }

    /// <summary>Loads the three official files and evaluates.</summary>
    public static VqaEvaluation EvaluateFiles(string questionsPath, string annotationsPath, string resultsPath, int digits = 2)
    {
        var questions = VqaFiles.LoadQuestions(questionsPath);
        var annotations = VqaFiles.LoadAnnotations(annotationsPath);
        var results = VqaFiles.LoadResults(resultsPath);
        try
        {
            return Evaluate(annotations, results, questions, digits);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{resultsPath} against {annotationsPath}: {e.Message}", e);
        }
    }

    /// <summary>
    /// The accuracy of one prediction against (already processed) human answers: mean over each answer left out of
    /// min(1, matches among the rest / 3). Answers are "the same entry" when their whole dictionaries are equal.
    /// </summary>
    public static double LeaveOneOutAccuracy(IReadOnlyList<VqaHumanAnswer> raw, IReadOnlyList<string> processed, string prediction)
    {
        var perSubset = new PythonFloat.Number[processed.Count];
        for (int left = 0; left < processed.Count; left++)
        {
            int matches = 0;
            for (int other = 0; other < processed.Count; other++)
            {
                bool sameEntry = processed[other] == processed[left] && raw[other].OtherFieldsKey == raw[left].OtherFieldsKey;
                if (!sameEntry && processed[other] == prediction) matches++;
            }
            double ratio = matches / 3.0;
            // Python's min(1, ratio) returns the int 1 unless ratio < 1; the int matters to sum().
            perSubset[left] = ratio < 1 ? PythonFloat.Number.FromFloat(ratio) : PythonFloat.Number.FromInt(1);
        }
        return PythonFloat.Sum(perSubset) / perSubset.Length;
    }

    static double Mean(List<double> values, int digits) => PythonFloat.Round(100 * PythonFloat.Sum(values) / values.Count, digits);

    static OrderedDictionary<string, double> Means(OrderedDictionary<string, List<double>> groups, int digits)
    {
        var result = new OrderedDictionary<string, double>(StringComparer.Ordinal);
        foreach (var (key, values) in groups) result[key] = Mean(values, digits);
        return result;
    }

    static TValue Group<TValue>(OrderedDictionary<string, TValue> groups, string key) where TValue : new()
    {
        if (!groups.TryGetValue(key, out var group)) groups[key] = group = new TValue();
        return group;
    }

    static void CheckResultsCoverAnnotations(IEnumerable<long> annotated, IEnumerable<long> predicted)
    {
        var expected = annotated.ToHashSet();
        var given = predicted.ToHashSet();
        var missing = expected.Where(id => !given.Contains(id)).Order().ToList();
        var extra = given.Where(id => !expected.Contains(id)).Order().ToList();
        if (missing.Count == 0 && extra.Count == 0) return;
        var parts = new List<string>();
        if (missing.Count > 0) parts.Add($"{missing.Count} annotated question(s) have no prediction (e.g. {string.Join(", ", missing.Take(5))})");
        if (extra.Count > 0) parts.Add($"{extra.Count} prediction(s) are for questions not in the annotations (e.g. {string.Join(", ", extra.Take(5))})");
        throw new InvalidDataException("results do not correspond to the annotations, as the official evaluation requires one prediction per annotated question: " +
                                       string.Join("; ", parts));
    }

    static void CheckMultipleChoice(VqaQuestionFile questions, Dictionary<long, string> predictions)
    {
        var choices = new Dictionary<long, IReadOnlyList<string>?>();
        foreach (var q in questions.Questions) choices[q.QuestionId] = q.MultipleChoices;
        foreach (var (id, answer) in predictions)
        {
            if (!choices.TryGetValue(id, out var list) || list is null)
                throw new InvalidDataException($"Multiple Choice task: question {id} has no \"multiple_choices\" in the questions file");
            if (!list.Contains(answer, StringComparer.Ordinal))
                throw new InvalidDataException($"Multiple Choice task: the prediction '{answer}' for question {id} is not one of its multiple choices");
        }
    }
}
