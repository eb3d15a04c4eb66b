using System.Text;
using System.Text.Json;
using ModelZoo.Evaluation.Data;
using ModelZoo.Tests.Support;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Evaluation;

public class DataTests
{
    string _dir = "";

    [SetUp] public void SetUp() => _dir = TestPaths.TempDirectory();
    [TearDown] public void TearDown() => Directory.Delete(_dir, true);

    [Test]
    public void JsonArrayStreamReadsEveryItemAcrossBufferBoundaries()
    {
        // Other properties (nested, long) before the wanted array; items larger than the 64 KB read buffer.
        var items = Enumerable.Range(0, 3000).Select(i => new { id = i, text = new string((char)('a' + i % 26), i % 7 == 0 ? 70_000 : i % 50), nested = new[] { new[] { i } } }).ToList();
        var document = new { info = new { big = new string('x', 100_000), list = new[] { 1, 2, 3 } }, skip = new[] { new { a = 1 } }, annotations = items, after = 1 };
        var path = Path.Combine(_dir, "big.json");
        File.WriteAllText(path, JsonSerializer.Serialize(document));

        var read = JsonArrayStream.Items(path, "annotations").Select(e => (e.GetProperty("id").GetInt32(), e.GetProperty("text").GetString()!.Length)).ToList();
        Assert.That(read.Count, Is.EqualTo(items.Count));
        Assert.That(read.Select(r => r.Item1), Is.EqualTo(Enumerable.Range(0, 3000)));
        Assert.That(read.Select(r => r.Item2), Is.EqualTo(items.Select(i => i.text.Length)));

        var rootArray = Path.Combine(_dir, "root.json");
        File.WriteAllText(rootArray, "[1, {\"a\": [2]}, \"three\"]");
        Assert.That(JsonArrayStream.Items(rootArray, null).Select(e => e.GetRawText()), Is.EqualTo(new[] { "1", "{\"a\": [2]}", "\"three\"" }));
    }

    [Test]
    public void JsonArrayStreamErrorsNameTheFile()
    {
        var path = Path.Combine(_dir, "cut.json");
        File.WriteAllText(path, "{\"annotations\": [{\"a\": 1}, {\"a\": ");
        var e = Assert.Throws<InvalidDataException>(() => JsonArrayStream.Items(path, "annotations").ToList());
        Assert.That(e!.Message, Does.Contain(path).And.Contain("truncated"));
        File.WriteAllText(path, "{\"questions\": []}");
        e = Assert.Throws<InvalidDataException>(() => JsonArrayStream.Items(path, "annotations").ToList());
        Assert.That(e!.Message, Does.Contain("no \"annotations\" array"));
        File.WriteAllText(path, "{\"annotations\": [1,, 2]}");
        e = Assert.Throws<InvalidDataException>(() => JsonArrayStream.Items(path, "annotations").ToList());
        Assert.That(e!.Message, Does.Contain("not valid JSON"));
    }

    [Test]
    public void VqaReaderJoinsQuestionsAndAnnotationsAndBuildsSoftTargets()
    {
        var fixture = TestPaths.Fixture("vqa-metric");
        var examples = VqaData.Read(Path.Combine(fixture, "questions.json"), Path.Combine(fixture, "annotations.json")).ToList();
        Assert.That(examples, Has.Count.EqualTo(300));
        Assert.That(examples[0].QuestionId, Is.EqualTo(360281000));
        Assert.That(examples[0].Question, Is.EqualTo("How many dogs are there?"));
        Assert.That(examples[0].Answers, Has.Count.EqualTo(10));
        Assert.That(examples[0].AnswerType, Is.EqualTo("number"));

        var vocabulary = AnswerVocabulary.Build(examples, maxAnswers: 20);
        Assert.That(vocabulary.Count, Is.EqualTo(20));
        // Answers are stored normalised, as the official evaluation compares them.
        Assert.That(vocabulary.Answers, Has.None.Matches<string>(a => a != AnswerVocabulary.Key(a)));

        var big = AnswerVocabulary.Build(examples);
        Assert.That(big.IndexOf("Two"), Is.EqualTo(big.IndexOf("2")).And.Not.Null);
        var targets = big.SoftTargets(new[] { "2", "2", "two", "2", "3", "red", "3", "2", "2", "1" });
        var byAnswer = targets.ToDictionary(t => big.Answers[t.Label], t => t.Score);
        Assert.That(byAnswer["2"], Is.EqualTo(1f));             // 6 of 10: capped at 1
        Assert.That(byAnswer, Does.ContainKey("3"));
        Assert.That(byAnswer["3"], Is.EqualTo(2f / 3));          // 2 of 10

        var path = Path.Combine(_dir, "answers.json");
        big.Save(path);
        Assert.That(AnswerVocabulary.Load(path).Answers, Is.EqualTo(big.Answers));
    }

    [Test]
    public void SoftScoresAreMinOneCountOverThree()
    {
        var vocabulary = new AnswerVocabulary(new[] { "red", "blue", "green" });
        var v = vocabulary.SoftTargetVector(new[] { "red", "blue", "blue", "green", "green", "green", "green", "yellow" });
        Assert.That(v, Is.EqualTo(new[] { 1f / 3, 2f / 3, 1f }));
    }

    [Test]
    public void KarpathyCaptionsReadSplitsAndFlatten()
    {
        var path = Path.Combine(_dir, "dataset_coco.json");
        File.WriteAllText(path, """
        {"images": [
          {"filepath": "val2014", "filename": "a.jpg", "imgid": 0, "cocoid": 42, "split": "test",
           "sentences": [{"raw": "A dog.", "tokens": ["a", "dog"]}, {"tokens": ["two", "dogs"]}]},
          {"filepath": "train2014", "filename": "b.jpg", "imgid": 1, "cocoid": 7, "split": "restval",
           "sentences": [{"raw": "A cat."}]},
          {"filename": "c.jpg", "imgid": 2, "split": "test", "sentences": [{"raw": "A bird."}]}
        ], "dataset": "coco"}
        """);
        var test = KarpathyCaptions.Read(path, "test").ToList();
        Assert.That(test.Select(i => i.ImageId), Is.EqualTo(new long[] { 42, 2 }));
        Assert.That(test[0].FilePath, Is.EqualTo(Path.Combine("val2014", "a.jpg")));
        Assert.That(test[0].Captions, Is.EqualTo(new[] { "A dog.", "two dogs" }));
        Assert.That(KarpathyCaptions.Read(path, "train", "restval").Single().ImageId, Is.EqualTo(7));
        var (captions, owner) = KarpathyCaptions.Flatten(test);
        Assert.That(captions, Has.Count.EqualTo(3));
        Assert.That(owner, Is.EqualTo(new[] { 0, 0, 1 }));
    }

    [Test]
    public void ImageFolderFindsClassesOrAFlatList()
    {
        foreach (var (cls, file) in new[] { ("dog", "1.png"), ("dog", "2.jpg"), ("cat", "3.JPG"), ("cat", "notes.txt") })
        {
            Directory.CreateDirectory(Path.Combine(_dir, cls));
            File.WriteAllBytes(Path.Combine(_dir, cls, file), new byte[] { 1 });
        }
        var folder = ImageFolder.Scan(_dir);
        Assert.That(folder.Classes, Is.EqualTo(new[] { "cat", "dog" }));
        Assert.That(folder.Images.Select(i => i.Label), Is.EqualTo(new[] { 0, 1, 1 }));
        Assert.Throws<DirectoryNotFoundException>(() => ImageFolder.Scan(Path.Combine(_dir, "missing")));
    }

    [Test]
    public void SeededOrderDependsOnlyOnSeedAndEpoch()
    {
        Assert.That(new SeededRandom(0).NextUInt64(), Is.EqualTo(0xE220A8397B1DCDAFUL), "SplitMix64 reference value");
        var a = Batching.EpochOrder(100, seed: 7, epoch: 3);
        Assert.That(Batching.EpochOrder(100, seed: 7, epoch: 3), Is.EqualTo(a));
        Assert.That(Batching.EpochOrder(100, seed: 7, epoch: 4), Is.Not.EqualTo(a));
        Assert.That(Batching.EpochOrder(100, seed: 8, epoch: 3), Is.Not.EqualTo(a));
        Assert.That(a.Order(), Is.EqualTo(Enumerable.Range(0, 100)));
        Assert.That(Batching.EpochOrder(5, 1, 0, shuffle: false), Is.EqualTo(new[] { 0, 1, 2, 3, 4 }));

        var batches = Batching.Batches(Enumerable.Range(0, 10).ToList(), 4);
        Assert.That(batches.Select(b => b.Length), Is.EqualTo(new[] { 4, 4, 2 }));
        Assert.That(Batching.Batches(Enumerable.Range(0, 10).ToList(), 4, dropLast: true), Has.Count.EqualTo(2));
    }

    [Test]
    public void PaddingProducesMasks()
    {
        using var scope = NewDisposeScope();
        var (ids, mask) = Batching.PadSequences(new[] { new[] { 5, 6, 7 }, new[] { 8 } }, padId: 0);
        Assert.That(ids.data<long>().ToArray(), Is.EqualTo(new long[] { 5, 6, 7, 8, 0, 0 }));
        Assert.That(mask.data<long>().ToArray(), Is.EqualTo(new long[] { 1, 1, 1, 1, 0, 0 }));
        var (cut, _) = Batching.PadSequences(new[] { new[] { 5, 6, 7 } }, maxLength: 2);
        Assert.That(cut.shape, Is.EqualTo(new long[] { 1, 2 }));

        var (features, featureMask) = Batching.PadFeatures(new[] { ones(2, 3), ones(1, 3) * 2 });
        Assert.That(features.shape, Is.EqualTo(new long[] { 2, 2, 3 }));
        Assert.That(features[1, 1].sum().item<float>(), Is.EqualTo(0));
        Assert.That(featureMask.data<long>().ToArray(), Is.EqualTo(new long[] { 1, 1, 1, 0 }));
        Assert.Throws<ArgumentException>(() => Batching.PadFeatures(new[] { ones(2, 3), ones(2, 4) }));
    }
}
