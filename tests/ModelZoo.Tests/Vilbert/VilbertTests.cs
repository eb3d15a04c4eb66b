using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Common;
using ModelZoo.Models.Vilbert;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static ModelZoo.Tests.TwoStream.TwoStreamTestKit;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Vilbert;

public class VilbertTests : TwoStream.SingleThreadedTests
{
    /// <summary>A tiny ViLBERT with widths that differ per stream and a sharp initialisation (0.2) so that masks matter.</summary>
    static VilbertConfig Tiny(int[] vIds, int[] tIds, int textLayers = 4, int visualLayers = 3, int fixedT = 0, int fixedV = 0, bool taskTokens = true) => new()
    {
        VocabSize = 50, HiddenSize = 16, NumHiddenLayers = textLayers, NumAttentionHeads = 2, IntermediateSize = 24, MaxPositionEmbeddings = 20,
        VFeatureSize = 12, VTargetSize = 7, VHiddenSize = 20, VNumHiddenLayers = visualLayers, VNumAttentionHeads = 4, VIntermediateSize = 28,
        BiHiddenSize = 8, BiNumAttentionHeads = 2, VBiattentionId = vIds, TBiattentionId = tIds, FixedTLayer = fixedT, FixedVLayer = fixedV,
        InitializerRange = 0.2, TaskSpecificTokens = taskTokens,
    };

    static string Steps(VilbertConfig config) => string.Join(" ", VilbertEncoder.Schedule(config));

    [Test]
    public void TheScheduleFollowsTheReferenceLoopForEveryPlacement()
    {
        // The fixture's placement, as its README describes it.
        Assert.That(Steps(Tiny(new[] { 0, 2 }, new[] { 1, 3 })), Is.EqualTo("t0 c0 t1 t2 v0 v1 c1 v2 t3"));
        // bert_base_6layer_6conect: all six co-attention layers after text layer 5, one text and one visual layer between them.
        Assert.That(Steps(VilbertConfig.Base6Layer6Connect),
            Is.EqualTo("t0 t1 t2 t3 t4 t5 c0 t6 v0 c1 t7 v1 c2 t8 v2 c3 t9 v3 c4 t10 v4 c5 v5 t11"));
        // Frozen layers run first (marked *), then the rest of the range up to the co-attention layer.
        Assert.That(Steps(Tiny(new[] { 1, 2 }, new[] { 3, 5 }, textLayers: 6, fixedT: 2, fixedV: 1)), Is.EqualTo("t0* t1* t2 v0* c0 t3 t4 v1 c1 v2 t5"));
        // Co-attention at the very end of both streams.
        Assert.That(Steps(Tiny(new[] { 3 }, new[] { 4 })), Is.EqualTo("t0 t1 t2 t3 v0 v1 v2 c0"));
        // Out-of-order ids behave as the reference loop does: an empty range, and text layers 1-2 run a second time.
        Assert.That(Steps(Tiny(new[] { 0, 0 }, new[] { 3, 1 }, visualLayers: 1)), Is.EqualTo("t0 t1 t2 c0 c1 v0 t1 t2 t3"));
        // No co-attention layers; without co-attention the layers still run in the same order.
        Assert.That(Steps(Tiny(Array.Empty<int>(), Array.Empty<int>())), Is.EqualTo("v0 v1 v2 t0 t1 t2 t3"));
        Assert.That(Steps(Tiny(new[] { 0, 2 }, new[] { 1, 3 }) with { WithCoattention = false }), Is.EqualTo("t0 t1 t2 v0 v1 v2 t3"));
        Assert.That(Steps(Tiny(new[] { 0, 2 }, new[] { 1, 3 }) with { FastMode = true }), Is.EqualTo("t0 expand c0 t1 t2 v0 v1 c1 v2 t3"));
    }

    [Test]
    public void AnotherPlacementComputesExactlyTheScheduledComposition()
    {
        manual_seed(3);
        var config = Tiny(new[] { 1, 3 }, new[] { 0, 2 }, textLayers: 3, visualLayers: 4, fixedV: 1);
        using var model = new VilbertModel(config);
        model.eval();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = randint(1, 50, new long[] { 2, 6 });
        var feats = randn(2, 5, 12);
        var loc = rand(2, 5, 5);
        var textMask = tensor(new long[,] { { 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 0, 0 } });
        var regionMask = tensor(new long[,] { { 1, 1, 1, 1, 1 }, { 1, 1, 1, 0, 0 } });
        var tasks = tensor(new long[,] { { 1 }, { 4 } });
        var output = model.forward(ids, feats, loc, null, textMask, regionMask, tasks);

        // By hand: v0 (frozen), c0, t0 t1, v1 v2, c1, v3, t2.
        var encoder = model.Encoder;
        var tPad = output.TextPadding;
        var vPad = regionMask.ne(0);
        var t = output.EmbeddingOutputText;
        var v = output.EmbeddingOutputVisual;
        v = encoder.VisualLayer(0).forward(v, vPad);
        (v, t) = encoder.CoLayer(0).forward(v, vPad, t, tPad);
        t = encoder.TextLayer(0).forward(t, tPad);
        t = encoder.TextLayer(1).forward(t, tPad);
        v = encoder.VisualLayer(1).forward(v, vPad);
        v = encoder.VisualLayer(2).forward(v, vPad);
        (v, t) = encoder.CoLayer(1).forward(v, vPad, t, tPad);
        v = encoder.VisualLayer(3).forward(v, vPad);
        t = encoder.TextLayer(2).forward(t, tPad);
        Assert.That(MaxAbs(output.SequenceOutputText, t), Is.EqualTo(0));
        Assert.That(MaxAbs(output.SequenceOutputVisual, v), Is.EqualTo(0));
        Assert.That(output.SequenceOutputText.shape, Is.EqualTo(new long[] { 2, 7, 16 }), "task token inserted after [CLS]");
        Assert.That(MaxAbs(output.TextPadding.select(1, 1).to(ScalarType.Int64), ones(2, dtype: ScalarType.Int64)), Is.EqualTo(0), "the task token is never masked");
    }

    [Test]
    public void FrozenLayersGetNoGradients()
    {
        // Schedule t0* t1* t2 v0* c0 t3 t4 v1 c1 v2 t5: text layers 0-1 and visual layer 0 run without gradients.
        manual_seed(17);
        var config = Tiny(new[] { 1, 2 }, new[] { 3, 5 }, textLayers: 6, fixedT: 2, fixedV: 1);
        using var model = new VilbertModel(config);
        model.eval();
        var o = model.forward(randint(1, 50, new long[] { 2, 6 }), randn(2, 4, 12), rand(2, 4, 5), taskIds: ones(2, 1, dtype: ScalarType.Int64));
        (o.SequenceOutputText.sum() + o.SequenceOutputVisual.sum() + o.PooledOutputText.sum() + o.PooledOutputVisual.sum()).backward();

        static List<(string Name, bool HasGrad)> Grads(nn.Module m) => m.named_parameters().Select(p => (p.name, p.parameter.grad is not null)).ToList();
        var encoder = model.Encoder;
        foreach (var (module, name) in new[] { (encoder.TextLayer(0), "text layer 0"), (encoder.TextLayer(1), "text layer 1"), (encoder.VisualLayer(0), "visual layer 0") })
            Assert.That(Grads(module).Where(g => g.HasGrad).Select(g => g.Name), Is.Empty, $"{name} is frozen");
        foreach (var (module, name) in new[] { (encoder.TextLayer(2), "text layer 2"), (encoder.VisualLayer(1), "visual layer 1"), (encoder.TextLayer(5), "text layer 5") })
            Assert.That(Grads(module).Where(g => !g.HasGrad).Select(g => g.Name), Is.Empty, $"{name} trains");
        // Co-attention layer 0 trains; only q_dense1/q_dense2, which the reference never calls, get no gradient.
        var coGrads = Grads(encoder.CoLayer(0));
        Assert.That(coGrads.Where(g => !g.HasGrad).Select(g => g.Name), Is.All.Contain("q_dense"));
        Assert.That(coGrads.Count(g => g.HasGrad), Is.GreaterThan(coGrads.Count / 2));
        // Nothing before the frozen visual layer trains through it: the region embeddings get no gradient either.
        Assert.That(Grads(model.ImageEmbeddings).Where(g => g.HasGrad).Select(g => g.Name), Is.Empty);
    }

    [Test]
    public void InvalidPlacementsAreClearErrors()
    {
        var e = Assert.Throws<ArgumentException>(() => Tiny(new[] { 0, 5 }, new[] { 1, 3 }).Validated("cfg.json"));
        Assert.That(e!.Message, Does.Contain("cfg.json").And.Contain("v_biattention_id[1] = 5"));
        e = Assert.Throws<ArgumentException>(() => Tiny(new[] { 0 }, new[] { 1, 3 }).Validated());
        Assert.That(e!.Message, Does.Contain("v_biattention_id has 1 entries but t_biattention_id has 2"));
        e = Assert.Throws<ArgumentException>(() => Tiny(new[] { 0, 2 }, new[] { 1, 3 }, fixedT: 2).Validated());
        Assert.That(e!.Message, Does.Contain("fixed_t_layer 2 is after t_biattention_id[0] = 1"));
        Assert.Throws<NotSupportedException>(() => (Tiny(new[] { 0 }, new[] { 1 }, textLayers: 2, visualLayers: 1) with { DynamicAttention = true }).Validated());
    }

    [Test]
    public void ThePublishedConfigFileLoadsAsItIs()
    {
        // config/bert_base_6layer_6conect.json of facebookresearch/vilbert-multi-task, verbatim.
        const string published = """
        {
          "attention_probs_dropout_prob": 0.1,
          "hidden_act": "gelu",
          "hidden_dropout_prob": 0.1,
          "hidden_size": 768,
          "initializer_range": 0.02,
          "intermediate_size": 3072,
          "max_position_embeddings": 512,
          "num_attention_heads": 12,
          "num_hidden_layers": 12,
          "type_vocab_size": 2,
          "vocab_size": 30522,
          "v_feature_size": 2048,
          "v_target_size": 1601,
          "v_hidden_size": 1024,
          "v_num_hidden_layers":6,
          "v_num_attention_heads":8,
          "v_intermediate_size":1024,
          "bi_hidden_size":1024,
          "bi_num_attention_heads":8,
          "bi_intermediate_size": 1024,
          "bi_attention_type":1,
          "v_attention_probs_dropout_prob":0.1,
          "v_hidden_act":"gelu",
          "v_hidden_dropout_prob":0.1,
          "v_initializer_range":0.02,
          "v_biattention_id":[0, 1, 2, 3, 4, 5],
          "t_biattention_id":[6, 7, 8, 9, 10, 11],
          "pooling_method": "mul"
        }
        """;
        var dir = TestPaths.TempDirectory();
        try
        {
            var path = Path.Combine(dir, "bert_base_6layer_6conect.json");
            File.WriteAllText(path, published);
            var loaded = VilbertConfig.Load(path);
            var expected = VilbertConfig.Base6Layer6Connect;
            Assert.That(ConfigJson.Serialize(loaded), Is.EqualTo(ConfigJson.Serialize(expected)));
            Assert.That(loaded.VBiattentionId, Is.EqualTo(new[] { 0, 1, 2, 3, 4, 5 }));
            Assert.That(loaded.TBiattentionId, Is.EqualTo(new[] { 6, 7, 8, 9, 10, 11 }));
            Assert.That(loaded.VNumHiddenLayers, Is.EqualTo(6));
            Assert.That(loaded.TaskSpecificTokens, Is.False, "absent fields take the reference defaults");
            // Every field of the published file is written back under its own name.
            using var written = JsonDocument.Parse(ConfigJson.Serialize(loaded));
            using var original = JsonDocument.Parse(published);
            foreach (var property in original.RootElement.EnumerateObject())
                Assert.That(written.RootElement.TryGetProperty(property.Name, out _), Is.True, property.Name);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void TheFixtureConfigIsReadFromBertConfigToDict()
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixture("vilbert"), "fixture.json")));
        var config = ConfigJson.Parse<VilbertConfig>(document.RootElement.GetProperty("config"));
        Assert.That(config.VBiattentionId, Is.EqualTo(new[] { 0, 2 }));
        Assert.That(config.TBiattentionId, Is.EqualTo(new[] { 1, 3 }));
        Assert.That((config.VHiddenSize, config.BiHiddenSize, config.VNumAttentionHeads, config.TaskSpecificTokens), Is.EqualTo((24, 8, 2, true)));
    }

    /// <summary>The widths a parameter count depends on (published: bert_base_6layer_6conect; tiny: the vilbert-tiny-multitask preset).</summary>
    public sealed record Widths(long T, long TLayers, long TIntermediate, long V, long VLayers, long VIntermediate, long Bi, long CoLayers)
    {
        public static Widths Published { get; } = new(768, 12, 3072, 1024, 6, 1024, 1024, 6);
        public static Widths Tiny { get; } = new(128, 2, 512, 128, 2, 256, 128, 2);
    }

    /// <summary>The two-stream BertModel (no heads): vocabulary 30522, 512 positions, 2 types, 2048-d regions.</summary>
    public static long VilbertBackboneParameters(Widths w, bool taskTokens)
    {
        long t = w.T, v = w.V, bi = w.Bi;
        long embeddings = (30522 + 512 + 2 + (taskTokens ? 20 : 0)) * t + LayerNorm(t);          // words, positions, types (+ 20 tasks), LayerNorm
        long imageEmbeddings = Linear(2048, v) + Linear(5, v) + LayerNorm(v);                      // features, 5-d locations, LayerNorm
        long coLayer = 3 * Linear(v, bi) + 3 * Linear(t, bi)                                       // query1/key1/value1, query2/key2/value2
                       + 2 * Linear(bi, v) + LayerNorm(v) + 2 * Linear(bi, t) + LayerNorm(t)     // dense1, q_dense1, LayerNorm1, dense2, q_dense2, LayerNorm2
                       + Linear(v, w.VIntermediate) + Linear(w.VIntermediate, v) + LayerNorm(v)   // v_intermediate (v_intermediate_size), v_output
                       + Linear(t, w.TIntermediate) + Linear(w.TIntermediate, t) + LayerNorm(t);  // t_intermediate (intermediate_size), t_output
        long poolers = Linear(t, bi) + Linear(v, bi);
        return embeddings + imageEmbeddings + w.TLayers * BertLayer(t, w.TIntermediate) + w.VLayers * BertLayer(v, w.VIntermediate) + w.CoLayers * coLayer + poolers;
    }

    /// <summary>vilbert-base = the two-stream BertModel at bert_base_6layer_6conect (no heads).</summary>
    public static long VilbertBaseParameters(bool taskTokens) => VilbertBackboneParameters(Widths.Published, taskTokens);

    /// <summary>VILBertForVLTasks: backbone with task tokens, "cls" pretraining heads, task heads.</summary>
    public static long VilbertMultitaskParameters(Widths w)
    {
        long t = w.T, v = w.V, bi = w.Bi;
        long cls = Linear(t, t) + LayerNorm(t) + 30522                       // predictions: transform, bias (decoder tied to the word embeddings)
                   + Linear(bi, 2)                                           // bi_seq_relationship
                   + Linear(v, v) + LayerNorm(v) + Linear(v, 1601);          // imagePredictions: transform, decoder to v_target_size
        long heads = AnswerClassifier(bi, 2 * bi, 3129) + AnswerClassifier(bi, 2 * bi, 1533) + AnswerClassifier(2 * bi, 2 * bi, 2)
                     + Linear(bi, 1) + Linear(bi, 3) + Linear(v, 1) + Linear(t, 1); // vil_logit, vil_tri_prediction, vision_logit, linguisic_logit
        return VilbertBackboneParameters(w, taskTokens: true) + cls + heads;
    }

    public static long VilbertMultitaskParameters() => VilbertMultitaskParameters(Widths.Published);

    [Test]
    public void PresetCountsEqualTheArithmeticOfThePublishedConfig()
    {
        Assert.That(VilbertBaseParameters(false), Is.EqualTo(246_726_656L));
        Assert.That(VilbertMultitaskParameters(), Is.EqualTo(268_028_859L));
        var expected = new Dictionary<string, long>
        {
            ["vilbert-base"] = VilbertBaseParameters(false),
            ["vilbert-multitask"] = VilbertMultitaskParameters(),
            ["vilbert-tiny-multitask"] = VilbertMultitaskParameters(Widths.Tiny),
        };
        var catalog = ModelCatalog.Default;
        foreach (var (name, count) in expected)
        {
            Assert.That(catalog.Describe(name).Parameters, Is.EqualTo(count), name);
            var (code, output, error) = CliRunner.Run("info", name, "--json");
            Assert.That(code, Is.EqualTo(0), error);
            using var json = JsonDocument.Parse(output);
            long reported = json.RootElement.GetProperty("parameters").GetInt64();
            Assert.That(reported, Is.EqualTo(count), name);
            using var model = catalog.Create(name);
            Assert.That(model.parameters().Sum(p => p.numel()), Is.EqualTo(reported), name);
        }
    }

    static VilbertForVLTasks TinyTaskModel(long seed)
    {
        manual_seed(seed);
        var model = new VilbertForVLTasks(Tiny(new[] { 0, 2 }, new[] { 1, 3 }));
        model.eval();
        return model;
    }

    [Test]
    public void PaddingDoesNotLeakIntoAnyItemOfABatch()
    {
        using var model = TinyTaskModel(11);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        // Item 0: 5 tokens, 3 regions; item 1: 9 tokens, 6 regions.
        var idsA = randint(1, 50, new long[] { 1, 5 });
        var idsB = randint(1, 50, new long[] { 1, 9 });
        var featA = randn(1, 3, 12); var featB = randn(1, 6, 12);
        var locA = rand(1, 3, 5); var locB = rand(1, 6, 5);
        var taskA = tensor(new long[,] { { 1 } }); var taskB = tensor(new long[,] { { 7 } });
        var ids = cat(new[] { nn.functional.pad(idsA, new long[] { 0, 4 }), idsB }, 0);
        var textMask = tensor(new long[,] { { 1, 1, 1, 1, 1, 0, 0, 0, 0 }, { 1, 1, 1, 1, 1, 1, 1, 1, 1 } });
        var feats = cat(new[] { nn.functional.pad(featA, new long[] { 0, 0, 0, 3 }), featB }, 0);
        var locs = cat(new[] { nn.functional.pad(locA, new long[] { 0, 0, 0, 3 }), locB }, 0);
        var regionMask = tensor(new long[,] { { 1, 1, 1, 0, 0, 0 }, { 1, 1, 1, 1, 1, 1 } });
        var tasks = cat(new[] { taskA, taskB }, 0);

        var batch = model.forward(ids, feats, locs, null, textMask, regionMask, tasks);
        var alone = new[] { model.forward(idsA, featA, locA, taskIds: taskA), model.forward(idsB, featB, locB, taskIds: taskB) };
        long[] tokens = { 5 + 1, 9 + 1 }, regions = { 3, 6 };
        for (int i = 0; i < 2; i++)
        {
            var single = alone[i];
            var row = (Tensor x) => x.narrow(0, i, 1);
            var check = (string name, Tensor batched, Tensor one) => Assert.That(MaxAbs(batched, one), Is.LessThan(2e-5), $"item {i}: {name}");
            check("sequence_output_t", row(batch.Backbone.SequenceOutputText).narrow(1, 0, tokens[i]), single.Backbone.SequenceOutputText);
            check("sequence_output_v", row(batch.Backbone.SequenceOutputVisual).narrow(1, 0, regions[i]), single.Backbone.SequenceOutputVisual);
            check("pooled_output_t", row(batch.Backbone.PooledOutputText), single.Backbone.PooledOutputText);
            check("pooled_output_v", row(batch.Backbone.PooledOutputVisual), single.Backbone.PooledOutputVisual);
            check("vil_prediction", row(batch.VilPrediction), single.VilPrediction);
            check("vil_logit", row(batch.VilLogit), single.VilLogit);
            check("vision_logit", row(batch.VisionLogit).narrow(1, 0, regions[i]), single.VisionLogit);
            check("linguisic_prediction", row(batch.LinguisticPrediction).narrow(1, 0, tokens[i]), single.LinguisticPrediction);
        }
        // The check can fail: attending to the padding changes item 0.
        var leaky = model.forward(ids, feats, locs, null, ones_like(textMask), ones_like(regionMask), tasks);
        Assert.That(MaxAbs(leaky.VilPrediction.narrow(0, 0, 1), alone[0].VilPrediction), Is.GreaterThan(1e-3));
        Assert.That(batch.VisionLogit[0, 4, 0].item<float>(), Is.LessThan(-9000), "padded regions get -10000 in vision_logit");
        Assert.That(alone[0].VilBinaryPrediction, Is.Null, "the pair head needs an even batch");
        Assert.That(batch.VilBinaryPrediction!.shape, Is.EqualTo(new long[] { 1, 2 }));
    }

    [Test]
    public void ThePretrainingHeadsDrawTheirOwnDropoutMask()
    {
        // Every dropout off but the pretraining heads' own (0.1, as BertPreTrainingHeads): in training the task heads
        // are then deterministic, while the alignment head still drops out, with a mask of its own.
        manual_seed(29);
        var config = Tiny(new[] { 0, 2 }, new[] { 1, 3 }) with
        {
            HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0, VHiddenDropoutProb = 0, VAttentionProbsDropoutProb = 0, FusionMethod = "sum",
        };
        using var model = new VilbertForVLTasks(config, dropoutProb: 0);
        model.train();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = randint(1, 50, new long[] { 4, 6 });
        var feats = randn(4, 5, 12);
        var locs = rand(4, 5, 5);
        var tasks = ones(4, 1, dtype: ScalarType.Int64);
        var a = model.forward(ids, feats, locs, taskIds: tasks);
        var b = model.forward(ids, feats, locs, taskIds: tasks);
        Assert.That(MaxAbs(a.VilPrediction, b.VilPrediction), Is.EqualTo(0), "no dropout before the task heads");
        Assert.That(MaxAbs(a.AlignmentPrediction, b.AlignmentPrediction), Is.GreaterThan(0), "the pretraining heads' own dropout is active");
        model.eval();
        var c = model.forward(ids, feats, locs, taskIds: tasks);
        var d = model.forward(ids, feats, locs, taskIds: tasks);
        Assert.That(MaxAbs(c.AlignmentPrediction, d.AlignmentPrediction), Is.EqualTo(0));
    }

    [Test]
    public void RepeatedInferenceDoesNotGrowMemory()
    {
        using var model = TinyTaskModel(5);
        var ids = randint(1, 50, new long[] { 2, 8 });
        var feats = randn(2, 6, 12);
        var locs = rand(2, 6, 5);
        var tasks = ones(2, 1, dtype: ScalarType.Int64);
        // The region VQA path too: whole-image region, box encoding, padding of two images with different region counts.
        var questions = new[]
        {
            new ModelZoo.Models.TwoStream.RegionVqaInput(new long[] { 2, 9, 8, 3 }, randn(5, 12), tensor(new float[] { 10, 20, 110, 90 }).expand(5, 4).contiguous(), 200, 100),
            new ModelZoo.Models.TwoStream.RegionVqaInput(new long[] { 2, 7, 3 }, randn(3, 12), tensor(new float[] { 0, 0, 50, 40 }).expand(3, 4).contiguous(), 50, 40),
        };
        // 400 warm-up passes: glibc's arenas and the allocator keep growing over the first few hundred tiny passes.
        MemoryGrowth.AssertSteady(() =>
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            model.forward(ids, feats, locs, taskIds: tasks);
            ((ModelZoo.Models.TwoStream.IRegionVqaModel)model).AnswerLogits(questions);
        }, warmup: 400);
    }

    [Test]
    public void CheckpointsWithModulePrefixAndTheBackbonePresetLoad()
    {
        var fixture = TestPaths.Fixture("vilbert");
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixture, "fixture.json")));
        var config = ConfigJson.Parse<VilbertConfig>(document.RootElement.GetProperty("config"));
        var dir = TestPaths.TempDirectory();
        try
        {
            // A DataParallel-saved copy: every key starts with "module.".
            var prefixed = Path.Combine(dir, "module.safetensors");
            using (var reader = new SafetensorsReader(Path.Combine(fixture, "model.safetensors")))
            {
                var tensors = reader.Entries.ToDictionary(e => "module." + e.Name, e => reader.Read(e.Name));
                SafetensorsBuilder.Write(prefixed, tensors);
                foreach (var t in tensors.Values) t.Dispose();
            }
            using var full = new VilbertForVLTasks(config, 3);
            var report = ModelLoader.Load(full, prefixed, VilbertFamily.TaskKeyMap);
            Assert.That(report.IsComplete, Is.True, report.ToText());
            Assert.That(report.Ignored, Is.EqualTo(new[] { "module.cls.predictions.decoder.weight" }), "only the tied copy is ignored");

            using var backbone = new VilbertModel(config);
            report = ModelLoader.Load(backbone, Path.Combine(fixture, "model.safetensors"), VilbertFamily.BackboneKeyMap);
            Assert.That(report.IsComplete, Is.True, report.ToText());
            full.eval(); backbone.eval();
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            using var inputs = new SafetensorsReader(Path.Combine(fixture, "inputs.safetensors"));
            Tensor In(string n) => inputs.Read(n);
            var a = full.forward(In("input_txt"), In("input_imgs"), In("image_loc"), In("token_type_ids"), In("attention_mask"), In("image_attention_mask"), In("task_ids"));
            var b = backbone.forward(In("input_txt"), In("input_imgs"), In("image_loc"), In("token_type_ids"), In("attention_mask"), In("image_attention_mask"), In("task_ids"));
            Assert.That(MaxAbs(a.Backbone.SequenceOutputText, b.SequenceOutputText), Is.EqualTo(0));
            using var outputs = new SafetensorsReader(Path.Combine(fixture, "outputs.safetensors"));
            Assert.That(MaxAbs(b.PooledOutputVisual, outputs.Read("pooled_output_v")), Is.LessThan(1e-4));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void AMultiTaskCheckpointLoadsIntoTheBackboneWithoutItsTaskEmbeddings()
    {
        // multi_task_model.bin layout: module.bert.* with bert.embeddings.task_embeddings, every head, the tied decoder copy.
        var config = Tiny(new[] { 0, 2 }, new[] { 1, 3 });
        using var source = TinyTaskModel(23);
        var dir = TestPaths.TempDirectory();
        try
        {
            var state = source.state_dict().ToDictionary(kv => "module." + kv.Key, kv => kv.Value);
            state["module.cls.predictions.decoder.weight"] = source.Backbone.Embeddings.WordEmbeddings.weight!;
            Assert.That(state.Keys, Does.Contain("module.bert.embeddings.task_embeddings.weight"));
            var path = SafetensorsBuilder.Write(Path.Combine(dir, "multi_task_model.safetensors"), state);

            using var backbone = new VilbertModel(config with { TaskSpecificTokens = false });
            var report = ModelLoader.Load(backbone, path, VilbertFamily.BackboneKeyMapFor(backbone.Config));
            Assert.That(report.IsComplete, Is.True, report.ToText());
            Assert.That(report.Ignored, Does.Contain("module.bert.embeddings.task_embeddings.weight"));
            // vilbert-base (no task tokens) uses this map; the plain backbone map keeps the task embeddings for a backbone that has them.
            Assert.That(ModelCatalog.Default.Get("vilbert-base").KeyMapFor!(null!), Is.SameAs(VilbertFamily.BackboneWithoutTaskTokensKeyMap));
            using var other = new VilbertModel(config with { TaskSpecificTokens = false });
            var strict = Assert.Throws<CheckpointException>(() => ModelLoader.Load(other, path, VilbertFamily.BackboneKeyMap));
            Assert.That(strict!.Message, Does.Contain("embeddings.task_embeddings.weight"), "control: without the rule the multi-task file does not fit");
            Assert.That(report.Ignored.Where(k => k.StartsWith("module.bert.")), Is.EqualTo(new[] { "module.bert.embeddings.task_embeddings.weight" }),
                "every other backbone tensor is loaded");
            Assert.That(MaxAbs(backbone.Encoder.CoLayer(1).parameters().First(), source.Backbone.Encoder.CoLayer(1).parameters().First()), Is.EqualTo(0));
            Assert.That(MaxAbs(backbone.Embeddings.WordEmbeddings.weight!, source.Backbone.Embeddings.WordEmbeddings.weight!), Is.EqualTo(0));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void BadInputsNameTheTensorAndTheShapes()
    {
        using var model = TinyTaskModel(1);
        using var scope = NewDisposeScope();
        var ids = randint(1, 50, new long[] { 1, 5 });
        var e = Assert.Throws<ArgumentException>(() => model.forward(ids, randn(1, 3, 11), rand(1, 3, 5), taskIds: ones(1, 1, dtype: ScalarType.Int64)));
        Assert.That(e!.Message, Does.Contain("input_imgs").And.Contain("[1, 3, 11]").And.Contain("v_feature_size"));
        e = Assert.Throws<ArgumentException>(() => model.forward(ids, randn(1, 3, 12), rand(1, 3, 4), taskIds: ones(1, 1, dtype: ScalarType.Int64)));
        Assert.That(e!.Message, Does.Contain("image_loc").And.Contain("[1, 3, 4]"));
        e = Assert.Throws<ArgumentException>(() => model.forward(ids, randn(1, 3, 12), rand(1, 3, 5)));
        Assert.That(e!.Message, Does.Contain("task_ids"));
    }
}
