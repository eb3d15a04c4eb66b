using System.Text.Json;
using ModelZoo.Evaluation.Metrics;
using ModelZoo.Evaluation.Vqa;
using ModelZoo.Tests.Support;
using NUnit.Framework;

namespace ModelZoo.Tests.Evaluation;

public class VqaMetricTests
{
    static string FixtureFile(string name) => Path.Combine(TestPaths.Fixture("vqa-metric"), name);

    static VqaEvaluation EvaluateFixture() =>
        VqaEvaluator.EvaluateFiles(FixtureFile("questions.json"), FixtureFile("annotations.json"), FixtureFile("results.json"));

    [Test]
    public void FixtureAggregatesMatchTheOfficialScriptExactly()
    {
        using var expected = JsonDocument.Parse(File.ReadAllText(FixtureFile("expected.json")));
        var root = expected.RootElement;
        var ours = EvaluateFixture();

        Assert.That(ours.Overall, Is.EqualTo(root.GetProperty("overall").GetDouble()));
        AssertSameMap(ours.PerAnswerType, root.GetProperty("perAnswerType"), "perAnswerType");
        AssertSameMap(ours.PerQuestionType, root.GetProperty("perQuestionType"), "perQuestionType");
    }

    [Test]
    public void FixturePerQuestionAccuraciesMatchTheOfficialScriptExactly()
    {
        using var expected = JsonDocument.Parse(File.ReadAllText(FixtureFile("expected.json")));
        var root = expected.RootElement;
        var ours = EvaluateFixture();

        var perQuestion = root.GetProperty("perQuestion").EnumerateArray()
            .ToDictionary(e => e.GetProperty("question_id").GetInt64(), e => e.GetProperty("accuracy").GetDouble());
        Assert.That(ours.PerQuestion.Count, Is.EqualTo(perQuestion.Count));
        foreach (var (id, accuracy) in perQuestion)
            Assert.That(ours.PerQuestion[id], Is.EqualTo(accuracy), $"question {id}");

        foreach (var (group, ourGroups) in new[] { ("evalAnsType", ours.EvalAnswerType), ("evalQuesType", ours.EvalQuestionType) })
        {
            var theirs = root.GetProperty(group);
            Assert.That(ourGroups.Keys, Is.EquivalentTo(theirs.EnumerateObject().Select(p => p.Name)), group);
            foreach (var type in theirs.EnumerateObject())
            {
                var values = type.Value.EnumerateObject().ToDictionary(p => long.Parse(p.Name), p => p.Value.GetDouble());
                Assert.That(ourGroups[type.Name], Is.EquivalentTo(values), $"{group}[{type.Name}]");
            }
        }
        // The fixture is built so that every accuracy level occurs, and 24 questions have ten identical answers.
        Assert.That(ours.PerQuestion.Values.Distinct().Order(), Is.EqualTo(new[] { 0.0, 30.0, 60.0, 90.0, 100.0 }));
    }

    [Test]
    public void OpenFlamingoPostprocessingMatchesEveryFixturePair()
    {
        using var expected = JsonDocument.Parse(File.ReadAllText(FixtureFile("expected.json")));
        var pairs = expected.RootElement.GetProperty("postprocess_vqa_generation").EnumerateArray().ToList();
        Assert.That(pairs, Is.Not.Empty);
        foreach (var pair in pairs)
        {
            string input = pair.GetProperty("input").GetString()!;
            Assert.That(VqaGeneration.Postprocess(input), Is.EqualTo(pair.GetProperty("output").GetString()), $"input '{input}'");
        }
    }

    [Test]
    public void TenIdenticalHumanAnswersAreComparedWithoutNormalisation()
    {
        var tens = Enumerable.Range(1, 10).Select(i => Answer("2", i)).ToList();
        // Identical answers: the raw stripped prediction is compared, so "Two" and "two" score 0, " 2 " scores 100.
        Assert.That(Score(tens, "Two"), Is.EqualTo(0.0));
        Assert.That(Score(tens, "two"), Is.EqualTo(0.0));
        Assert.That(Score(tens, " 2\t"), Is.EqualTo(100.0));
        // One differing answer switches normalisation on for both sides: "two" now becomes "2".
        var mixed = tens.Take(9).Append(Answer("3", 10)).ToList();
        Assert.That(Score(mixed, "Two"), Is.EqualTo(100.0));
    }

    [Test]
    public void LeaveOneOutGivesThirtySixtyNinetyAndDropsWholeEqualEntries()
    {
        List<VqaHumanAnswer> WithMatches(int matches) =>
            Enumerable.Range(1, 10).Select(i => Answer(i <= matches ? "red" : "blue" + i, i)).ToList();
        Assert.That(Score(WithMatches(1), "red"), Is.EqualTo(30.0));
        Assert.That(Score(WithMatches(2), "red"), Is.EqualTo(60.0));
        Assert.That(Score(WithMatches(3), "red"), Is.EqualTo(90.0));
        Assert.That(Score(WithMatches(4), "red"), Is.EqualTo(100.0));
        Assert.That(Score(WithMatches(0), "red"), Is.EqualTo(0.0));

        // Three "red" entries that are equal as whole dictionaries (same answer_id): leaving one out drops all three,
        // so those three subsets score 0 and the other seven min(1, 3/3) = 1: 70, not the 90 of distinct entries.
        var duplicated = Enumerable.Range(1, 7).Select(i => Answer("blue" + i, i)).Concat(Enumerable.Repeat(Answer("red", 99), 3)).ToList();
        Assert.That(Score(duplicated, "red"), Is.EqualTo(70.0));
    }

    [TestCase("Yes.", "yes")]
    [TestCase("two dogs", "2 dogs")]
    [TestCase("the cat", "cat")]
    [TestCase("An apple", "apple")]
    [TestCase("none", "0")]
    [TestCase("dont know", "don't know")]
    [TestCase("Im here", "im here")]                         // "Im" is a key only before lower-casing: never restored
    [TestCase("t-shirt", "t shirt")]                         // no punctuation next to a space: replaced by a space
    [TestCase("red - white", "red  white")]                  // "- " present: the mark is deleted (the split removes the double space)
    [TestCase("1,000 dogs, 2 cats", "1000 dogs 2 cats")]     // a digit,digit comma: every mark is deleted
    [TestCase("3.5", "3.5")]                                 // a period before a digit stays
    [TestCase("St. Louis.", "st louis")]
    [TestCase("Black and White.", "black and white")]
    [TestCase("12:30", "12:30")]                             // ':' is not in the punctuation list
    public void NormalisationFollowsTheOfficialRules(string input, string expected)
    {
        // Normalize returns the words joined by one space, so split runs of spaces out of the expectation.
        Assert.That(VqaAnswerNormalizer.Normalize(input), Is.EqualTo(string.Join(' ', PythonText.Split(expected))));
    }

    [Test]
    public void AtMostThirtyTwoPeriodsAreStripped()
    {
        string forty = new string('.', 40) + "ok";
        Assert.That(VqaAnswerNormalizer.ProcessPunctuation(forty), Is.EqualTo(new string('.', 8) + "ok"));
    }

    [Test]
    public void PunctuationIsDeletedWhenAMarkTouchesASpace()
    {
        Assert.That(VqaAnswerNormalizer.ProcessPunctuation("a-b"), Is.EqualTo("a b"));
        Assert.That(VqaAnswerNormalizer.ProcessPunctuation("a-b ?"), Is.EqualTo("a b "), "only '?' touches a space: '?' is deleted, '-' still replaced");
        Assert.That(VqaAnswerNormalizer.ProcessPunctuation("3,5 a-b"), Is.EqualTo("35 ab"), "a digit,digit comma deletes every mark");
    }

    [Test]
    public void ResultsMustCoverExactlyTheAnnotatedQuestions()
    {
        var annotations = new[] { Annotation(1, "red"), Annotation(2, "blue") };
        var e = Assert.Throws<InvalidDataException>(() => VqaEvaluator.Evaluate(annotations, new[] { new VqaPrediction(1, "red"), new VqaPrediction(3, "x") }));
        Assert.That(e!.Message, Does.Contain("no prediction").And.Contain("2").And.Contain("not in the annotations").And.Contain("3"));
    }

    [Test]
    public void BadFilesGiveErrorsNamingFileAndEntry()
    {
        var dir = TestPaths.TempDirectory();
        try
        {
            var path = Path.Combine(dir, "annotations.json");
            File.WriteAllText(path, "{\"annotations\": [{\"question_id\": 1, \"answers\": [{\"answer\": 3}], \"question_type\": \"what\", \"answer_type\": \"other\"}]}");
            var e = Assert.Throws<InvalidDataException>(() => VqaFiles.LoadAnnotations(path));
            Assert.That(e!.Message, Does.Contain(path).And.Contain("annotations[0].answers[0]").And.Contain("\"answer\""));
            File.WriteAllText(path, "{\"annotations\": [");
            Assert.That(Assert.Throws<InvalidDataException>(() => VqaFiles.LoadAnnotations(path))!.Message, Does.Contain("not valid JSON"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void PythonRoundIsCorrectlyRoundedFromTheBinaryValueNotMathRound()
    {
        // 0.005 is stored slightly above the tie: Python gives 0.01, Math.Round's scaling (0.005 * 100 == 0.5) gives 0.
        Assert.That(PythonFloat.Round(0.005, 2), Is.EqualTo(0.01));
        Assert.That(Math.Round(0.005, 2), Is.EqualTo(0.0));
        // 0.125 is an exact tie: half to even, 0.12 (AwayFromZero would give 0.13).
        Assert.That(PythonFloat.Round(0.125, 2), Is.EqualTo(0.12));
        Assert.That(Math.Round(0.125, 2, MidpointRounding.AwayFromZero), Is.EqualTo(0.13));
        Assert.That(PythonFloat.Round(2.675, 2), Is.EqualTo(2.67));
        Assert.That(PythonFloat.Round(1.005, 2), Is.EqualTo(1.0));
        Assert.That(PythonFloat.Round(2.5, 0), Is.EqualTo(2.0));
        Assert.That(PythonFloat.Round(75.19999999999999, 2), Is.EqualTo(75.2));
        Assert.That(double.IsNegative(PythonFloat.Round(-0.001, 2)), Is.True, "round(-0.001, 2) is -0.0");
        Assert.That(PythonFloat.Round(1234.5, -1), Is.EqualTo(1230.0));
        Assert.That(PythonFloat.Round(double.NaN, 2), Is.NaN);
    }

    [Test]
    public void PythonSumIsCompensatedForFloatsAsCPython312()
    {
        Assert.That(PythonFloat.Sum(Enumerable.Repeat(0.1, 10)), Is.EqualTo(1.0));
        Assert.That(Enumerable.Repeat(0.1, 10).Aggregate(0.0, (a, b) => a + b), Is.Not.EqualTo(1.0), "naive summation differs");
        // Ints before the first float add exactly; an int after a float is added uncompensated.
        var items = new[] { PythonFloat.Number.FromFloat(1e16), PythonFloat.Number.FromInt(1), PythonFloat.Number.FromFloat(-1e16) };
        Assert.That(PythonFloat.Sum(items), Is.EqualTo(0.0));
        Assert.That(PythonFloat.Sum(new[] { PythonFloat.Number.FromInt(1), PythonFloat.Number.FromInt(2) }), Is.EqualTo(3.0));
    }

    static VqaHumanAnswer Answer(string text, int id) => new(text, "yes", id, $"\"answer_confidence\":\"yes\";\"answer_id\":{id};");

    static VqaAnnotation Annotation(long id, string answer) =>
        new(id, 1, "what color", "other", answer, Enumerable.Range(1, 10).Select(i => Answer(answer, i)).ToList());

    static double Score(List<VqaHumanAnswer> answers, string prediction) =>
        VqaEvaluator.Evaluate(new[] { new VqaAnnotation(7, 1, "what", "other", null, answers) }, new[] { new VqaPrediction(7, prediction) }).Overall;

    static void AssertSameMap(OrderedDictionary<string, double> ours, JsonElement theirs, string what)
    {
        var expected = theirs.EnumerateObject().Select(p => (p.Name, p.Value.GetDouble())).ToList();
        Assert.That(ours.Select(p => (p.Key, p.Value)).ToList(), Is.EqualTo(expected), what + " (values and the script's key order)");
    }
}
