using ModelZoo.Models.Parity;
using ModelZoo.Models.Uniter;
using ModelZoo.Tests.OneStream;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Uniter;

public class UniterParityTests
{
    static string FixtureDirectory => TestPaths.Fixture("uniter");

    static void AssertPasses(ParityResult result)
    {
        foreach (var output in result.Outputs)
            Assert.That(output.Pass, Is.True, $"{output.Name}: max abs error {output.MaxAbsError:E2} {output.Error}");
        Assert.That(result.Outputs.Select(o => o.Name), Does.Contain("vqa_logits").And.Contain("encoded_layers.0").And.Contain("embedding_output"));
        Assert.That(result.Pass, Is.True);
    }

    [Test]
    public void SafetensorsCheckpointReproducesTheReference() => AssertPasses(ParityCheck.Check(FixtureDirectory));

    [Test]
    public void PickleCheckpointReproducesTheReference() => AssertPasses(ParityCheck.Check(FixtureDirectory, usePickle: true));
}

public class UniterModelTests
{
    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    static UniterConfig SmallConfig(int layers = 2) => new()
    {
        VocabSize = 50, HiddenSize = 16, NumHiddenLayers = layers, NumAttentionHeads = 4, IntermediateSize = 24,
        MaxPositionEmbeddings = 20, ImgDim = 6, InitializerRange = 0.3,
    };

    static UniterExample Example(Generator g, int tokens, int regions, int featureDim = 6) => new(
        randint(1, 50, new long[] { tokens }, generator: g).data<long>().ToArray(),
        randn(new long[] { regions, featureDim }, generator: g),
        rand(new long[] { regions, 7 }, generator: g));

    [Test]
    public void CollateReproducesTheOriginalGatherIndexAndMasks()
    {
        // The fixture's inputs were laid out by UNITER's own collate; rebuild them from the per-item pieces.
        using var fixture = new Fixture(TestPaths.Fixture("uniter"));
        var ids = fixture.Input("input_ids");
        var feat = fixture.Input("img_feat");
        var boxes = fixture.Input("img_pos_feat");
        var mask = fixture.Input("attention_mask");
        var examples = new List<UniterExample>();
        for (int b = 0; b < ids.shape[0]; b++)
        {
            int regions = (int)feat[b].abs().sum(1).ne(0).sum().item<long>();
            int tokens = (int)mask[b].sum().item<long>() - regions;
            examples.Add(new UniterExample(ids[b].narrow(0, 0, tokens).data<long>().ToArray(), feat[b].narrow(0, 0, regions), boxes[b].narrow(0, 0, regions)));
        }
        var inputs = UniterInputs.Collate(examples);
        Assert.That(inputs.TextLengths.Distinct().Count() > 1 || inputs.RegionCounts.Distinct().Count() > 1, Is.True, "the fixture should mix lengths");
        Assert.That(inputs.InputIds.equal(ids).all().item<bool>(), Is.True, "input_ids");
        Assert.That(inputs.PositionIds.equal(fixture.Input("position_ids")).all().item<bool>(), Is.True, "position_ids");
        Assert.That(inputs.AttentionMask.equal(mask).all().item<bool>(), Is.True, "attention_mask");
        Assert.That(inputs.GatherIndex.equal(fixture.Input("gather_index")).all().item<bool>(), Is.True, "gather_index");
        Assert.That(inputs.ImgFeat.equal(feat).all().item<bool>(), Is.True, "img_feat");
    }

    [Test]
    public void LegacyBertPrefixGammaBetaAndModulePrefixLoadTheSameWeights()
    {
        // The fixture's state_dict rewritten as an older distributed-training file: module.bert.*, LayerNorm gamma/beta.
        using var fixture = new Fixture(TestPaths.Fixture("uniter"));
        var legacy = new Dictionary<string, Tensor>();
        using (var reader = Checkpoint.Open(fixture.CheckpointPath))
        {
            foreach (var entry in reader.Entries)
            {
                string key = entry.Name.StartsWith("uniter.") ? "bert." + entry.Name["uniter.".Length..] : entry.Name;
                if (key.Contains("LayerNorm.") || key.Contains("layer_norm.") || key.StartsWith("vqa_output.2."))
                    key = key.Replace(".weight", ".gamma").Replace(".bias", ".beta");
                legacy["module." + key] = reader.Read(entry.Name);
            }
        }
        Assert.That(legacy.Keys, Does.Contain("module.bert.embeddings.LayerNorm.gamma"));
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "legacy.safetensors"), legacy);

        var config = SmallConfig() with { VocabSize = 120, HiddenSize = 32, NumHiddenLayers = 3, IntermediateSize = 64, MaxPositionEmbeddings = 40, ImgDim = 20 };
        using var model = new UniterForVisualQuestionAnswering(config, 11);
        var report = ModelLoader.Load(model, path, UniterFamily.TaskKeyMap("vqa_output"));
        Assert.That(report.IsComplete, Is.True, report.ToText());
        model.eval();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var output = model.Uniter.forward(fixture.Input("input_ids"), fixture.Input("position_ids"), fixture.Input("img_feat"),
            fixture.Input("img_pos_feat"), fixture.Input("attention_mask"), fixture.Input("gather_index"));
        TensorAssert.Close(model.AnswerLogits(output.PooledOutput!), fixture.Outputs["vqa_logits"], 1e-4, "vqa_logits");

        // The backbone map reads the same file into UniterModel and drops the head.
        using var backbone = new UniterModel(config);
        var backboneReport = ModelLoader.Load(backbone, path, UniterFamily.BackboneKeyMap);
        Assert.That(backboneReport.IsComplete, Is.True, backboneReport.ToText());
        Assert.That(backboneReport.Ignored, Does.Contain("module.vqa_output.3.weight"));
        backbone.eval();
        var sequence = backbone.forward(fixture.Input("input_ids"), fixture.Input("position_ids"), fixture.Input("img_feat"),
            fixture.Input("img_pos_feat"), fixture.Input("attention_mask"), fixture.Input("gather_index")).SequenceOutput;
        TensorAssert.Close(sequence, fixture.Outputs["sequence_output"], 1e-4, "sequence_output");
    }

    [Test]
    public void ACheckpointOfAnotherTaskIsRefusedNamingTheHead()
    {
        using var retrieval = new UniterForImageTextRetrieval(SmallConfig(), rankOutput: true);
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "retrieval.safetensors"),
            retrieval.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));
        using var vqa = new UniterForVisualQuestionAnswering(SmallConfig(), 5);
        var e = Assert.Throws<CheckpointException>(() => ModelLoader.Load(vqa, path, UniterFamily.TaskKeyMap("vqa_output")));
        Assert.That(e!.Message, Does.Contain("rank_output.weight").And.Contain("vqa_output.0.weight"));
    }

    [Test]
    public void BatchedItemsMatchEachItemRunAlone()
    {
        manual_seed(3);
        using var model = new UniterForVisualQuestionAnswering(SmallConfig(), 7);
        model.eval();
        var g = new Generator(17);
        var examples = new[] { Example(g, 5, 3), Example(g, 9, 1), Example(g, 3, 6) };
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var batch = UniterInputs.Collate(examples);
        var batched = model.Uniter.forward(batch);
        var logits = model.forward(batch);
        for (int i = 0; i < examples.Length; i++)
        {
            var alone = UniterInputs.Collate(new[] { examples[i] });
            var single = model.Uniter.forward(alone);
            int real = examples[i].TokenIds.Length + (int)examples[i].Features.shape[0];
            TensorAssert.Close(batched.SequenceOutput[i].narrow(0, 0, real), single.SequenceOutput[0], 1e-5, $"item {i} sequence");
            TensorAssert.Close(batched.PooledOutput![i], single.PooledOutput![0], 1e-5, $"item {i} pooled");
            TensorAssert.Close(logits[i], model.forward(alone)[0], 1e-5, $"item {i} logits");
        }
        // Control: ignoring the padding mask changes item 1 (the one with the most padding).
        var unmasked = model.Uniter.forward(batch.InputIds, batch.PositionIds, batch.ImgFeat, batch.ImgPosFeat,
            ones_like(batch.AttentionMask), batch.GatherIndex);
        TensorAssert.Differ(unmasked.PooledOutput![2], batched.PooledOutput![2], 1e-4, "unmasked padding");
    }

    [Test]
    public void TextOnlyAndImageOnlyInputsRun()
    {
        using var model = new UniterModel(SmallConfig());
        model.eval();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = tensor(new long[,] { { 1, 5, 7 } });
        var text = model.forward(ids, arange(3).unsqueeze(0), null, null, ones(1, 3, dtype: ScalarType.Int64));
        Assert.That(text.SequenceOutput.shape, Is.EqualTo(new long[] { 1, 3, 16 }));
        var image = model.forward(null, null, randn(1, 4, 6), rand(1, 4, 7), ones(1, 4, dtype: ScalarType.Int64));
        Assert.That(image.SequenceOutput.shape, Is.EqualTo(new long[] { 1, 4, 16 }));
        var bad = Assert.Throws<ArgumentException>(() => model.forward(ids, null, randn(1, 4, 5), rand(1, 4, 7), ones(1, 7, dtype: ScalarType.Int64)));
        Assert.That(bad!.Message, Does.Contain("img_feat").And.Contain("6"));
    }

    [Test]
    public void MaskedRegionsAddTheMaskEmbeddingRow()
    {
        using var model = new UniterModel(SmallConfig());
        model.eval();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var feat = randn(1, 3, 6);
        var boxes = rand(1, 3, 7);
        var masks = tensor(new long[,] { { 0, 1, 0 } });
        var maskRow = model.state_dict()["img_embeddings.mask_embedding.weight"][1];
        var expected = model.ImageEmbeddings(feat + masks.unsqueeze(-1).to(ScalarType.Float32) * maskRow, boxes);
        TensorAssert.Close(model.ImageEmbeddings(feat, boxes, masks), expected, 1e-6, "masked regions");
        TensorAssert.Close(model.ImageEmbeddings(feat, boxes, zeros_like(masks)), model.ImageEmbeddings(feat, boxes), 1e-6, "no region masked");
    }

    [Test]
    public void RetrievalScoresAreTheMatchLogitAndTheScoreMatrixAgreesWithSinglePairs()
    {
        manual_seed(5);
        using var itm = new UniterForImageTextRetrieval(SmallConfig(), rankOutput: false);
        using var retrieval = new UniterForImageTextRetrieval(SmallConfig(), rankOutput: true);
        retrieval.load_state_dict(itm.state_dict(), strict: false);
        retrieval.InitializeRankFromItm();
        itm.eval();
        retrieval.eval();
        var g = new Generator(9);
        var captions = new[] { Example(g, 4, 0).TokenIds, Example(g, 7, 0).TokenIds };
        var images = new[] { Example(g, 1, 2), Example(g, 1, 5), Example(g, 1, 3) }.Select(e => (e.Features, e.Boxes)).ToList();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var matrix = retrieval.ScoreMatrix(captions, images, batchSize: 4);
        Assert.That(matrix.shape, Is.EqualTo(new long[] { 2, 3 }));
        for (int c = 0; c < 2; c++)
        for (int i = 0; i < 3; i++)
        {
            var pair = UniterInputs.Collate(new[] { new UniterExample(captions[c], images[i].Features, images[i].Boxes) });
            TensorAssert.Close(matrix[c, i], retrieval.forward(pair)[0], 1e-5, $"pair {c},{i}");
            TensorAssert.Close(itm.forward(pair)[0], itm.MatchLogits(pair)[0, 1], 1e-6, "itm score = match logit");
            TensorAssert.Close(retrieval.forward(pair)[0], itm.forward(pair)[0], 1e-5, "rank_output initialised from itm_output");
        }
    }

    [Test]
    public void BoxFeaturesAreNormalisedCornersWidthHeightArea()
    {
        var boxes = UniterInputs.BoxFeatures(tensor(new float[,] { { 10, 20, 60, 120 } }), 100, 200);
        var expected = tensor(new float[,] { { 0.1f, 0.1f, 0.6f, 0.6f, 0.5f, 0.5f, 0.25f } });
        TensorAssert.Close(boxes, expected, 1e-6, "box features");
    }
}

public class UniterRegionVqaTests
{
    [Test]
    public void RegionVqaInputsBecomeSevenDimensionalBoxesAndAreCutToOneHundredRegions()
    {
        manual_seed(21);
        var config = new UniterConfig { VocabSize = 50, HiddenSize = 16, NumHiddenLayers = 1, NumAttentionHeads = 2, IntermediateSize = 24, MaxPositionEmbeddings = 80, ImgDim = 6 };
        using var model = new UniterForVisualQuestionAnswering(config, 4);
        model.eval();
        var g = new Generator(22);
        var features = randn(new long[] { 120, 6 }, generator: g);
        var corners = rand(new long[] { 120, 2 }, generator: g) * 50;
        var boxes = cat(new[] { corners, corners + 10 }, 1);
        var ids = new long[] { 1, 7, 8, 2 };
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var logits = model.AnswerLogits(new[] { new ModelZoo.Models.TwoStream.RegionVqaInput(ids, features, boxes, 80, 60) });
        var expected = model.forward(UniterInputs.Collate(new[] { new UniterExample(ids, features.narrow(0, 0, 100), UniterInputs.BoxFeatures(boxes.narrow(0, 0, 100), 80, 60)) }));
        TensorAssert.Close(logits, expected, 1e-6, "region VQA logits");
        Assert.That(model.MaxQuestionTokens, Is.EqualTo(60));
        Assert.Throws<ArgumentException>(() => model.AnswerLogits(new[] { new ModelZoo.Models.TwoStream.RegionVqaInput(Enumerable.Repeat(5L, 61).ToArray(), features, boxes, 80, 60) }));
    }
}
