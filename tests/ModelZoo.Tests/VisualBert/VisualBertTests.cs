using ModelZoo.Models.VisualBert;
using ModelZoo.Tests.OneStream;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.VisualBert;

public class VisualBertTests
{
    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    static VisualBertConfig Small(int? labels = 5) => new()
    {
        VocabSize = 60, HiddenSize = 16, NumHiddenLayers = 2, NumAttentionHeads = 4, IntermediateSize = 24, MaxPositionEmbeddings = 20,
        VisualEmbeddingDim = 6, InitializerRange = 0.3, NumLabels = labels,
    };

    static T Noisy<T>(T model, long seed) where T : nn.Module
    {
        manual_seed(seed);
        using (no_grad())
            foreach (var (_, p) in model.named_parameters()) p.add_(randn_like(p) * 0.05);
        model.eval();
        return model;
    }

    static VisualBertInputs Sample(long seed)
    {
        var g = new Generator((ulong)seed);
        return VisualBertInputs.Collate(new[] { new long[] { 2, 11, 12, 13, 3 }, new long[] { 2, 14, 3 } },
            new[] { randn(new long[] { 3, 6 }, generator: g), randn(new long[] { 5, 6 }, generator: g) });
    }

    static Dictionary<string, Tensor> StateDict(nn.Module model) => model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    [Test]
    public void KeysAreTheHuggingFaceNames()
    {
        using var model = new VisualBertForQuestionAnswering(Small());
        var keys = model.state_dict().Keys.ToList();
        Assert.That(keys, Does.Contain("visual_bert.embeddings.visual_projection.weight")
            .And.Contain("visual_bert.embeddings.visual_token_type_embeddings.weight")
            .And.Contain("visual_bert.embeddings.visual_position_embeddings.weight")
            .And.Contain("visual_bert.embeddings.word_embeddings.weight")
            .And.Contain("visual_bert.embeddings.LayerNorm.bias")
            .And.Contain("visual_bert.encoder.layer.1.attention.self.query.weight")
            .And.Contain("visual_bert.encoder.layer.1.output.LayerNorm.weight")
            .And.Contain("visual_bert.pooler.dense.weight")
            .And.Contain("cls.weight"));
        Assert.That(keys.Where(k => k.Contains(".text.") || k.Contains("dropout")), Is.Empty);
    }

    [Test]
    public void EmbeddingsAndTheVqaTokenFollowTheReferenceFormulas()
    {
        using var model = Noisy(new VisualBertForQuestionAnswering(Small()), 1);
        var s = model.state_dict();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var inputs = Sample(2);
        var output = model.VisualBert.forward(inputs);

        // Text: LN(word + position + type 0); regions: LN(projection + visual position 0 + visual type 1), same LN.
        Tensor Norm(Tensor x) => nn.functional.layer_norm(x, new long[] { 16 }, s["visual_bert.embeddings.LayerNorm.weight"], s["visual_bert.embeddings.LayerNorm.bias"], 1e-12);
        var text = Norm(s["visual_bert.embeddings.word_embeddings.weight"].index_select(0, inputs.InputIds.flatten()).view(2, 5, 16)
            + s["visual_bert.embeddings.position_embeddings.weight"].narrow(0, 0, 5) + s["visual_bert.embeddings.token_type_embeddings.weight"][0]);
        var regions = Norm(nn.functional.linear(inputs.VisualEmbeds, s["visual_bert.embeddings.visual_projection.weight"], s["visual_bert.embeddings.visual_projection.bias"])
            + s["visual_bert.embeddings.visual_position_embeddings.weight"][0] + s["visual_bert.embeddings.visual_token_type_embeddings.weight"][1]);
        TensorAssert.Close(output.EmbeddingOutput, cat(new[] { text, regions }, 1), 1e-5, "embedding output");

        // VQA reads the token before [SEP]: index text_mask.sum − 2.
        var logits = model.forward(inputs);
        var tokens = stack(new[] { output.SequenceOutput[0, 3], output.SequenceOutput[1, 1] });
        TensorAssert.Close(logits, nn.functional.linear(tokens, s["cls.weight"], s["cls.bias"]), 1e-5, "vqa logits");
    }

    [Test]
    public void OriginalUclanlpKeysLoadIntoTheHuggingFaceLayout()
    {
        using var reference = Noisy(new VisualBertForQuestionAnswering(Small()), 3);
        var original = new Dictionary<string, Tensor>();
        foreach (var (key, value) in StateDict(reference))
        {
            string renamed = key.Replace("visual_bert.", "bert.bert.").Replace("visual_token_type_embeddings", "token_type_embeddings_visual")
                .Replace("visual_position_embeddings", "position_embeddings_visual").Replace("visual_projection", "projection");
            if (renamed.StartsWith("cls.")) renamed = "bert.classifier." + renamed[4..];
            original["module." + renamed] = value;
        }
        original["module.detector.backbone.weight"] = zeros(2);
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "vqa_fine_tuned.safetensors"), original);
        using var model = new VisualBertForQuestionAnswering(Small());
        using var reader = Checkpoint.Open(path);
        var report = ModelLoader.Load(model, reader, VisualBertFamily.KeyMapFor(reader, preTraining: false));
        Assert.That(report.IsComplete, Is.True, report.ToText());
        model.eval();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var inputs = Sample(4);
        Assert.That(model.forward(inputs).equal(reference.forward(inputs)).all().item<bool>(), Is.True);
    }

    [Test]
    public void PreTrainingDecodesWithTheTiedWordEmbeddings()
    {
        var config = Small(null);
        using var reference = Noisy(new VisualBertForPreTraining(config), 5);
        var hf = StateDict(reference).ToDictionary(kv => "module." + kv.Key, kv => kv.Value);
        hf["module.cls.predictions.decoder.weight"] = hf["module.visual_bert.embeddings.word_embeddings.weight"].clone();
        hf["module.cls.predictions.decoder.bias"] = hf["module.cls.predictions.bias"].clone();
        hf["module.visual_bert.embeddings.position_ids"] = arange(20).unsqueeze(0);
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "pre.safetensors"), hf);
        using var model = new VisualBertForPreTraining(config);
        using (var reader = Checkpoint.Open(path))
        {
            var report = ModelLoader.Load(model, reader, VisualBertFamily.KeyMapFor(reader, preTraining: true));
            Assert.That(report.IsComplete, Is.True, report.ToText());
        }
        model.eval();
        var s = model.state_dict();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var inputs = Sample(6);
        var (prediction, relationship) = model.forward(inputs);
        var sequence = model.VisualBert.forward(inputs).SequenceOutput;
        var transformed = nn.functional.layer_norm(nn.functional.gelu(nn.functional.linear(sequence, s["cls.predictions.transform.dense.weight"], s["cls.predictions.transform.dense.bias"])),
            new long[] { 16 }, s["cls.predictions.transform.LayerNorm.weight"], s["cls.predictions.transform.LayerNorm.bias"], 1e-12);
        var expected = matmul(transformed, s["visual_bert.embeddings.word_embeddings.weight"].t()) + s["cls.predictions.bias"];
        Assert.That(prediction.shape, Is.EqualTo(new long[] { 2, 5 + 5, 60 }));
        TensorAssert.Close(prediction, expected, 1e-4, "prediction logits");
        Assert.That(relationship.shape, Is.EqualTo(new long[] { 2, 2 }));
    }

    [Test]
    public void BatchedItemsMatchEachItemRunAlone()
    {
        using var model = Noisy(new VisualBertForQuestionAnswering(Small()), 7);
        var g = new Generator(8);
        var texts = new[] { new long[] { 2, 5, 6, 3 }, new long[] { 2, 7, 8, 9, 10, 11, 3 }, new long[] { 2, 4, 3 } };
        var features = new[] { randn(new long[] { 4, 6 }, generator: g), randn(new long[] { 1, 6 }, generator: g), randn(new long[] { 6, 6 }, generator: g) };
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var batch = VisualBertInputs.Collate(texts, features);
        var batched = model.VisualBert.forward(batch);
        var logits = model.forward(batch);
        for (int i = 0; i < texts.Length; i++)
        {
            var alone = VisualBertInputs.Collate(new[] { texts[i] }, new[] { features[i] });
            var single = model.VisualBert.forward(alone);
            TensorAssert.Close(batched.SequenceOutput[i].narrow(0, 0, texts[i].Length), single.SequenceOutput[0].narrow(0, 0, texts[i].Length), 1e-5, $"item {i} text");
            TensorAssert.Close(batched.SequenceOutput[i].narrow(0, 7, features[i].shape[0]), single.SequenceOutput[0].narrow(0, texts[i].Length, features[i].shape[0]), 1e-5, $"item {i} regions");
            TensorAssert.Close(batched.PooledOutput![i], single.PooledOutput![0], 1e-5, $"item {i} pooled");
            TensorAssert.Close(logits[i], model.forward(alone)[0], 1e-5, $"item {i} logits");
        }
        var unmasked = model.forward(batch with { VisualMask = null });
        TensorAssert.Differ(unmasked[1], logits[1], 1e-4, "region padding ignored");
    }

    [Test]
    public void Nlvr2PairsGiveTheLeftImageType0AndTheRightType1()
    {
        using var model = Noisy(new VisualBertForVisualReasoning(Small(2)), 9);
        var g = new Generator(10);
        var pairs = new[]
        {
            (randn(new long[] { 2, 6 }, generator: g), randn(new long[] { 3, 6 }, generator: g)),
            (randn(new long[] { 4, 6 }, generator: g), randn(new long[] { 1, 6 }, generator: g)),
        };
        var texts = new[] { new long[] { 2, 5, 3 }, new long[] { 2, 6, 7, 3 } };
        var inputs = VisualBertForVisualReasoning.PairInputs(texts, pairs);
        Assert.That(inputs.VisualTokenTypeIds!.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 0, 1, 1, 1, 0, 0, 0, 0, 1 }));
        Assert.That(inputs.VisualMask!.data<long>().ToArray(), Is.EqualTo(new long[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var logits = model.forward(inputs);
        Assert.That(logits.shape, Is.EqualTo(new long[] { 2, 2 }));
        TensorAssert.Differ(logits, model.forward(inputs with { VisualTokenTypeIds = null }), 1e-4, "image types matter");
    }

    [Test]
    public void MultipleChoiceScoresEachChoice()
    {
        using var model = Noisy(new VisualBertForMultipleChoice(Small(null)), 11);
        var g = new Generator(12);
        var image = randn(new long[] { 3, 6 }, generator: g);
        var texts = new[] { new long[] { 2, 5, 3, 8, 3 }, new long[] { 2, 5, 3, 9, 9, 3 }, new long[] { 2, 5, 3, 4, 3 } };
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var logits = model.forward(VisualBertInputs.Collate(texts, new[] { image, image, image }), choices: 3);
        Assert.That(logits.shape, Is.EqualTo(new long[] { 1, 3 }));
        Assert.Throws<ArgumentException>(() => model.forward(VisualBertInputs.Collate(texts, new[] { image, image, image }), choices: 2));
    }

    [Test]
    public void BadFeatureWidthIsAClearError()
    {
        using var model = new VisualBertForQuestionAnswering(Small());
        var inputs = VisualBertInputs.Collate(new[] { new long[] { 2, 5, 3 } }, new[] { randn(2, 7) });
        var e = Assert.Throws<ArgumentException>(() => model.forward(inputs));
        Assert.That(e!.Message, Does.Contain("visual_embedding_dim").And.Contain("6"));
    }
}

public class VisualBertHuggingFaceParityTests
{
    [Test]
    public void HuggingFaceVisualBertForQuestionAnsweringIsReproduced()
    {
        var result = ModelZoo.Models.Parity.ParityCheck.Check(Path.Combine(TestPaths.VendoredData, "hf-fixtures", "hf-visualbert"));
        foreach (var output in result.Outputs)
            Assert.That(output.Pass, Is.True, $"{output.Name}: max abs error {output.MaxAbsError:E2} {output.Error}");
        Assert.That(result.Outputs.Select(o => o.Name), Does.Contain("vqa_logits").And.Contain("hidden_states.2").And.Contain("pooler_output"));
    }
}
