using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.OneStream;
using ModelZoo.Models.Uniter;
using ModelZoo.Models.Vilt;
using ModelZoo.Models.VisualBert;
using ModelZoo.Tests.Support;
using ModelZoo.Tokenization.Bert;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.OneStream;

public class VqaPipelineTests
{
    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    string Write(string name, string text)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>Random weights of a preset written as a checkpoint directory (model.safetensors + config.json).</summary>
    string SaveCheckpoint(string preset, long seed, object? config = null)
    {
        manual_seed(seed);
        using var model = ModelCatalog.Default.Create(preset);
        var directory = Path.Combine(_directory, preset);
        Directory.CreateDirectory(directory);
        SafetensorsBuilder.Write(Path.Combine(directory, "model.safetensors"), model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));
        if (config is not null) File.WriteAllText(Path.Combine(directory, "config.json"), JsonSerializer.Serialize(config));
        return directory;
    }

    [Test]
    public void AnswerFilesInEveryFormatGiveTheSameVocabulary()
    {
        var expected = new[] { "yes", "no", "2" };
        Assert.That(AnswerVocabulary.Load(Write("list.json", "[\"yes\", \"no\", \"2\"]")).Answers, Is.EqualTo(expected));
        Assert.That(AnswerVocabulary.Load(Write("ans2label.json", "{\"no\": 1, \"2\": 2, \"yes\": 0}")).Answers, Is.EqualTo(expected));
        Assert.That(AnswerVocabulary.Load(Write("id2label.json", "{\"2\": \"2\", \"0\": \"yes\", \"1\": \"no\"}")).Answers, Is.EqualTo(expected));
        Assert.That(AnswerVocabulary.Load(Write("answers.txt", "yes\r\nno\n2\n")).Answers, Is.EqualTo(expected));
        Assert.That(Assert.Throws<InvalidDataException>(() => AnswerVocabulary.Load(Write("gap.json", "{\"yes\": 0, \"no\": 3}")))!.Message,
            Does.Contain("gap.json").And.Contain("index 3"));
        Assert.That(Assert.Throws<InvalidDataException>(() => AnswerVocabulary.Load(Write("bad.json", "{\"yes\": ")))!.Message, Does.Contain("not valid JSON"));
    }

    [Test]
    public void ConfigId2LabelIsUsedUnlessItHoldsPlaceholderNames()
    {
        Write("config.json", "{\"id2label\": {\"1\": \"no\", \"0\": \"yes\"}}");
        var weights = Write("model.safetensors", "");
        Assert.That(AnswerVocabulary.FromCheckpointConfig(weights)!.Answers, Is.EqualTo(new[] { "yes", "no" }));
        Assert.That(AnswerVocabulary.FromCheckpointConfig(_directory)!.Source, Does.Contain("config.json"));
        Write("config.json", "{\"id2label\": {\"0\": \"LABEL_0\", \"1\": \"LABEL_1\"}}");
        Assert.That(AnswerVocabulary.FromCheckpointConfig(weights), Is.Null);
    }

    [Test]
    public void ViltAnswersComeFromTheConfigAndMatchTheModelsOwnLogits()
    {
        var names = Enumerable.Range(0, ViltFamily.VqaAnswers).ToDictionary(i => i.ToString(), i => $"answer number {i}");
        var weights = SaveCheckpoint("vilt-tiny", 1, new { id2label = names });
        using var pipeline = VqaPipeline.Load("vilt-tiny", weights);
        Assert.That(pipeline.Answers.Source, Does.Contain("config.json"));
        Assert.That(pipeline.ReadsPixels, Is.True);

        var g = new Generator(2);
        var pixels = randn(new long[] { 3, 96, 64 }, generator: g);
        var answers = pipeline.Answer(pixels, "How many cats are there?");
        Assert.That(answers, Has.Count.EqualTo(5));
        Assert.That(answers.Select(a => a.Score), Is.Ordered.Descending);

        // The same by hand: tokenizer, model, sigmoid, top-5.
        using var model = ModelCatalog.Default.Create<ViltModel>("vilt-tiny", new ModelCreateOptions { WeightsPath = weights });
        var ids = BertWordPieceTokenizer.BaseUncased().Encode("How many cats are there?").InputIds.Select(i => (long)i).ToArray();
        Assert.That(ids[0], Is.EqualTo(101), "[CLS]");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var scores = model.VqaLogits(ViltInputs.Collate(new[] { ids }, new[] { pixels })).sigmoid()[0];
        var (values, indices) = scores.topk(5);
        Assert.That(answers.Select(a => a.Index), Is.EqualTo(indices.data<long>().ToArray().Select(i => (int)i)));
        Assert.That(answers[0].Answer, Is.EqualTo($"answer number {answers[0].Index}"));
        Assert.That(answers[0].Score, Is.EqualTo(values[0].item<float>()).Within(1e-6));
    }

    [Test]
    public void UniterAndVisualBertAnswerFromRegionFeatures()
    {
        var answerFile = Write("answers.txt", string.Join("\n", Enumerable.Range(0, UniterFamily.VqaAnswers).Select(i => $"a{i}")));
        var g = new Generator(3);
        var features = randn(new long[] { 6, 2048 }, generator: g);
        var corners = tensor(new float[,] { { 0, 0, 10, 10 }, { 5, 5, 50, 40 }, { 1, 2, 3, 4 }, { 0, 0, 64, 48 }, { 10, 20, 30, 40 }, { 7, 7, 9, 9 } });

        var uniterWeights = SaveCheckpoint("uniter-tiny-vqa", 4);
        using (var uniter = VqaPipeline.Load("uniter-tiny-vqa", uniterWeights, answerFile))
        {
            var answers = uniter.Answer(new DetectorRegions(features, corners, 64, 48), "what color is the cat?");
            Assert.That(answers, Has.Count.EqualTo(5));
            Assert.That(answers.All(a => a.Score > 0 && a.Score < 1 && a.Answer == $"a{a.Index}"), Is.True);

            // By hand: the 7-d boxes of UNITER's data, its collate, sigmoid.
            using var model = ModelCatalog.Default.Create<UniterForVisualQuestionAnswering>("uniter-tiny-vqa", new ModelCreateOptions { WeightsPath = uniterWeights });
            var ids = BertWordPieceTokenizer.BaseUncased().Encode("what color is the cat?").InputIds.Select(i => (long)i).ToArray();
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var scores = model.forward(UniterInputs.Collate(new[] { new UniterExample(ids, features, UniterInputs.BoxFeatures(corners, 64, 48)) })).sigmoid()[0];
            Assert.That(answers[0].Index, Is.EqualTo((int)scores.argmax().item<long>()));
            Assert.That(answers[0].Score, Is.EqualTo(scores.max().item<float>()).Within(1e-6));
            Assert.Throws<ArgumentException>(() => uniter.Answer(new DetectorRegions(features), "no boxes?"));
            Assert.Throws<InvalidOperationException>(() => uniter.Answer(randn(3, 64, 64), "pixels?"));
        }
        using (var visualBert = VqaPipeline.Load("visualbert-tiny", SaveCheckpoint("visualbert-tiny", 5), answerFile))
        {
            var batch = visualBert.Answer(new[] { new DetectorRegions(features), new DetectorRegions(features.narrow(0, 0, 2)) },
                new[] { "is it a cat?", "how many?" }, top: 3);
            Assert.That(batch[0], Has.Count.EqualTo(3));
            Assert.That(batch[0].Sum(a => a.Score), Is.LessThanOrEqualTo(1f), "softmax scores");
            var alone = visualBert.Answer(new DetectorRegions(features.narrow(0, 0, 2)), "how many?", top: 3);
            Assert.That(alone.Select(a => a.Index), Is.EqualTo(batch[1].Select(a => a.Index)));
            Assert.That(alone[0].Score, Is.EqualTo(batch[1][0].Score).Within(1e-5));
        }
    }

    [Test]
    public void MissingOrMismatchedAnswersAndVocabulariesAreClearErrors()
    {
        var weights = SaveCheckpoint("visualbert-tiny", 6);
        Assert.That(Assert.Throws<InvalidDataException>(() => VqaPipeline.Load("visualbert-tiny", weights))!.Message,
            Does.Contain("id2label").And.Contain("--answers"));
        var three = Write("three.txt", "a\nb\nc\n");
        Assert.That(Assert.Throws<InvalidDataException>(() => VqaPipeline.Load("visualbert-tiny", weights, three))!.Message,
            Does.Contain("3 answers").And.Contain("3129 outputs"));
        Assert.That(Assert.Throws<FileNotFoundException>(() => VqaPipeline.Load("uniter-base-vqa", weights))!.Message,
            Does.Contain("vocab.txt").And.Contain("bert-base-cased"));
        Assert.That(Assert.Throws<NotSupportedException>(() => VqaPipeline.Load("vilt-b32-nlvr2", null))!.Message,
            Does.Contain("not a VQA model"));
        Assert.That(VqaPipeline.VqaPresetNames(), Is.SupersetOf(new[] { "uniter-base-vqa", "uniter-large-vqa", "vilt-b32-vqa", "visualbert-vqa", "vilt-tiny", "uniter-tiny-vqa", "visualbert-tiny",
            "lxmert-vqa", "vilbert-multitask" }));
        Assert.That(VqaPipeline.VqaPresetNames(), Has.None.EqualTo("visualbert-nlvr2").And.None.EqualTo("uniter-base"));
    }

    [Test]
    public void TheCommandChecksItsInputsBeforeLoading()
    {
        var (code, _, error) = CliRunner.Run("vqa", "--model", "vilt-tiny", "--question", "what?");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("--image FILE or --features FILE --image-id ID"));
        (code, _, error) = CliRunner.Run("vqa", "--model", "uniter-tiny-vqa", "--features", "feats.tsv", "--question", "what?");
        Assert.That(error, Does.Contain("--image-id"));
        (code, _, error) = CliRunner.Run("vqa", "--model", "uniter-tiny-vqa", "--image", Path.Combine(_directory, "x.jpg"), "--question", "what?");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("region features"));
        (code, _, error) = CliRunner.Run("vqa", "--model", "vilt-tiny", "--image", Path.Combine(_directory, "missing.jpg"), "--question", "what?");
        Assert.That(error, Does.Contain("missing.jpg"));
    }
}
