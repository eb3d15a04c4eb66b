using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Lxmert;
using ModelZoo.Models.Parity;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static ModelZoo.Tests.TwoStream.TwoStreamTestKit;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Lxmert;

public class LxmertTests : TwoStream.SingleThreadedTests
{
    static LxmertConfig Tiny(int l = 2, int x = 2, int r = 1) => new()
    {
        VocabSize = 60, HiddenSize = 16, NumAttentionHeads = 4, IntermediateSize = 24, MaxPositionEmbeddings = 20,
        LLayers = l, XLayers = x, RLayers = r, VisualFeatDim = 10, InitializerRange = 0.2,
        NumQaLabels = 7, NumObjectLabels = 5, NumAttrLabels = 3,
    };

    [Test]
    public void ReproducesTheReferenceFixture()
    {
        var result = ParityCheck.Check(TestPaths.Fixture("lxmert"));
        var failures = result.Outputs.Where(o => !o.Pass).Select(o => $"{o.Name}: {o.Error ?? "max abs error " + o.MaxAbsError}").ToList();
        Assert.That(failures, Is.Empty);
        Assert.That(result.Outputs.Select(o => o.Name), Does.Contain("vqa_logits_no_visual_mask").And.Contain("x_layers.1.visn").And.Contain("r_layers.0"));
        Assert.That(result.Pass, Is.True);
        TestContext.Out.WriteLine(string.Join(Environment.NewLine, result.Outputs.Select(o => $"{o.Name}: {o.MaxAbsError:0.###e+0}")));
    }

    [Test]
    public void ReproducesTransformersLxmertForQuestionAnswering()
    {
        // tests/data/hf-fixtures: the Hugging Face layout (lxmert.*, answer_head.*) and the hidden states transformers returns.
        var result = ParityCheck.Check(Path.Combine(TestPaths.VendoredData, "hf-fixtures", "hf-lxmert"));
        var failures = result.Outputs.Where(o => !o.Pass).Select(o => $"{o.Name}: {o.Error ?? "max abs error " + o.MaxAbsError}").ToList();
        Assert.That(failures, Is.Empty);
        Assert.That(result.Outputs.Select(o => o.Name), Does.Contain("language_hidden_states.3").And.Contain("vqa_logits"));
        Assert.That(result.Pass, Is.True);
    }

    [Test]
    public void TheOriginalConfigAndVisualConfigCombine()
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixture("lxmert"), "fixture.json")));
        var root = document.RootElement;
        var config = LxmertConfig.FromOriginal(root.GetProperty("config"), root.GetProperty("visual_config"));
        Assert.That((config.LLayers, config.XLayers, config.RLayers, config.VisualFeatDim, config.VisualPosDim), Is.EqualTo((2, 2, 1, 20, 4)));
        Assert.That((config.HiddenSize, config.VocabSize, config.MaxPositionEmbeddings), Is.EqualTo((32, 110, 40)));
        Assert.That(config.NumHiddenLayers!.Value.GetInt32(), Is.EqualTo(12), "kept, not read");
    }

    [Test]
    public void AHuggingFaceConfigFileLoadsAsItIs()
    {
        // The fields Hugging Face writes for LxmertConfig (num_hidden_layers as the per-encoder object it serialises).
        const string hf = """
        {
          "architectures": ["LxmertForPreTraining"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
          "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072, "l_layers": 9, "layer_norm_eps": 1e-12,
          "max_position_embeddings": 512, "model_type": "lxmert", "num_attention_heads": 12, "num_attr_labels": 400,
          "num_hidden_layers": {"cross_encoder": 5, "language": 9, "vision": 5}, "num_object_labels": 1600, "num_qa_labels": 9500,
          "r_layers": 5, "task_mask_lm": true, "task_matched": true, "task_obj_predict": true, "task_qa": true, "type_vocab_size": 2,
          "visual_attr_loss": true, "visual_feat_dim": 2048, "visual_feat_loss": true, "visual_loss_normalizer": 6.67,
          "visual_obj_loss": true, "visual_pos_dim": 4, "vocab_size": 30522, "x_layers": 5
        }
        """;
        var dir = TestPaths.TempDirectory();
        try
        {
            var path = Path.Combine(dir, "config.json");
            File.WriteAllText(path, hf);
            var config = LxmertConfig.Load(path);
            Assert.That(config with { NumHiddenLayers = null, ModelType = null }, Is.EqualTo(LxmertFamily.BaseConfig));
            File.WriteAllText(path, hf.Replace("\"l_layers\": 9", "\"l_layers\": 0"));
            Assert.That(LxmertConfig.Load(path).LLayers, Is.EqualTo(0));
            File.WriteAllText(path, hf.Replace("\"num_attention_heads\": 12", "\"num_attention_heads\": 5"));
            var e = Assert.Throws<ArgumentException>(() => LxmertConfig.Load(path));
            Assert.That(e!.Message, Does.Contain(path).And.Contain("num_attention_heads 5"));
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>LXRTModel / LxmertModel: vocabulary 30522, 512 positions, 2 types, 2048-d features, 4-d boxes.</summary>
    public static long LxmertBackboneParameters(long h, long intermediate, long l, long x, long r)
    {
        long embeddings = (30522 + 512 + 2) * h + LayerNorm(h);                               // words, positions, types, LayerNorm
        long visualEncoder = Linear(2048, h) + LayerNorm(h) + Linear(4, h) + LayerNorm(h);    // visn_fc + LN, box_fc + LN
        long attentionBlock = 4 * Linear(h, h) + LayerNorm(h);                                 // q, k, v, output dense, LayerNorm
        long feedForward = Linear(h, intermediate) + Linear(intermediate, h) + LayerNorm(h);
        long crossLayer = 3 * attentionBlock + 2 * feedForward;                                // visual_attention (shared), lang/visn self-att, two FFNs
        long pooler = Linear(h, h);
        return embeddings + visualEncoder + (l + r) * BertLayer(h, intermediate) + x * crossLayer + pooler;
    }

    /// <summary>lxmert-base = LXRTModel / LxmertModel at l=9, x=5, r=5 with BERT-base widths.</summary>
    public static long LxmertBaseParameters() => LxmertBackboneParameters(768, 3072, 9, 5, 5);

    [Test]
    public void PresetCountsEqualTheArithmeticOfThePublishedConfig()
    {
        long h = 768;
        long vqa = LxmertBaseParameters() + AnswerClassifier(h, 2 * h, 3129);
        long gqa = LxmertBaseParameters() + AnswerClassifier(h, 2 * h, 1842);                // GQA answer table of the original (data/gqa)
        long pretraining = LxmertBaseParameters()
                           + Linear(h, h) + LayerNorm(h) + 30522                           // cls.predictions: transform, bias (decoder tied)
                           + Linear(h, 2)                                                  // cls.seq_relationship
                           + Linear(h, h) + LayerNorm(h) + Linear(h, 1600) + Linear(h, 400) + Linear(h, 2048) // obj_predict_head
                           + AnswerClassifier(h, 2 * h, 9500);                              // answer_head
        long tinyVqa = LxmertBackboneParameters(128, 512, 2, 1, 1) + AnswerClassifier(128, 256, 3129);
        Assert.That(LxmertBaseParameters(), Is.EqualTo(207_936_768L));
        Assert.That(vqa, Is.EqualTo(213_930_297L));
        Assert.That(pretraining, Is.EqualTo(228_051_752L));
        var expected = new Dictionary<string, long>
        {
            ["lxmert-base"] = LxmertBaseParameters(), ["lxmert-vqa"] = vqa, ["lxmert-gqa"] = gqa, ["lxmert-base-pretraining"] = pretraining, ["lxmert-tiny-vqa"] = tinyVqa,
        };
        var catalog = ModelCatalog.Default;
        foreach (var (name, count) in expected)
        {
            Assert.That(catalog.Describe(name).Parameters, Is.EqualTo(count), name);
            var (code, output, error) = CliRunner.Run("info", name, "--json");
            Assert.That(code, Is.EqualTo(0), error);
            using var json = JsonDocument.Parse(output);
            Assert.That(json.RootElement.GetProperty("parameters").GetInt64(), Is.EqualTo(count), name);
            using var model = catalog.Create(name);
            Assert.That(model.parameters().Sum(p => p.numel()), Is.EqualTo(count), name);
        }
        using var gqaModel = catalog.Create<LxmertForQuestionAnswering>("lxmert-gqa");
        Assert.That((gqaModel.AnswerCount, gqaModel.MaxQuestionTokens), Is.EqualTo((1842, 20)), "MAX_GQA_LENGTH is 20 as for VQA");
    }

    /// <summary>Writes the fixture's weights under other key layouts and checks each loads into the model it is meant for.</summary>
    [Test]
    public void EveryKnownCheckpointLayoutLoads()
    {
        var fixture = TestPaths.Fixture("lxmert");
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixture, "fixture.json")));
        var config = LxmertConfig.FromOriginal(document.RootElement.GetProperty("config"), document.RootElement.GetProperty("visual_config"));
        var dir = TestPaths.TempDirectory();
        using var inputs = new SafetensorsReader(Path.Combine(fixture, "inputs.safetensors"));
        using var outputs = new SafetensorsReader(Path.Combine(fixture, "outputs.safetensors"));
        try
        {
            string Rewrite(string name, Func<string, string?> rename)
            {
                var path = Path.Combine(dir, name);
                using var reader = new SafetensorsReader(Path.Combine(fixture, "model.safetensors"));
                var tensors = new Dictionary<string, Tensor>();
                foreach (var e in reader.Entries) if (rename(e.Name) is string key) tensors[key] = reader.Read(e.Name);
                SafetensorsBuilder.Write(path, tensors);
                foreach (var t in tensors.Values) t.Dispose();
                return path;
            }
            string Backbone(string k) => k.Replace("lxrt_encoder.model.bert.", "");
            var layouts = new Dictionary<string, string>
            {
                ["hf-qa"] = Rewrite("hf.safetensors", k => k.Replace("lxrt_encoder.model.bert.", "lxmert.").Replace("logit_fc.", "answer_head.logit_fc.")),
                ["dataparallel-task"] = Rewrite("dp.safetensors", k => k.Replace("lxrt_encoder.model.bert.", "lxrt_encoder.model.module.bert.")),
                ["module-original"] = Rewrite("orig.safetensors", k => "module." + k.Replace("lxrt_encoder.model.bert.", "bert.")),
            };
            foreach (var (layout, path) in layouts)
            {
                using var model = new LxmertForQuestionAnswering(config, 9);
                var report = ModelLoader.Load(model, path, LxmertFamily.QuestionAnsweringKeyMap);
                Assert.That(report.IsComplete, Is.True, layout + ": " + report.ToText());
                model.eval();
                using var scope = NewDisposeScope();
                using var _ = no_grad();
                var (_, logits) = model.forward(inputs.Read("input_ids"), inputs.Read("feat"), inputs.Read("pos"), inputs.Read("attention_mask"),
                    inputs.Read("visual_attention_mask"), inputs.Read("token_type_ids"));
                Assert.That(MaxAbs(logits, outputs.Read("vqa_logits")), Is.LessThan(1e-4), layout);
            }

            // The backbone preset's map takes the task file (dropping logit_fc) and a bare Hugging Face LxmertModel file.
            var bare = Rewrite("bare.safetensors", k => k.StartsWith("logit_fc.") ? null : Backbone(k));
            foreach (var path in new[] { Path.Combine(fixture, "model.safetensors"), bare })
            {
                using var backbone = new LxmertModel(config);
                var report = ModelLoader.Load(backbone, path, LxmertFamily.BackboneKeyMap);
                Assert.That(report.IsComplete, Is.True, report.ToText());
                backbone.eval();
                using var scope = NewDisposeScope();
                using var _ = no_grad();
                var o = backbone.forward(inputs.Read("input_ids"), inputs.Read("feat"), inputs.Read("pos"), inputs.Read("attention_mask"),
                    inputs.Read("visual_attention_mask"), inputs.Read("token_type_ids"));
                Assert.That(MaxAbs(o.PooledOutput, outputs.Read("pooled_output")), Is.LessThan(1e-4));
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void APretrainingCheckpointLoadsWithItsHeadsOrIntoTheBackbone()
    {
        // An original model_LXRT.pth layout: module.bert.*, module.cls.* (with the tied decoder stored twice),
        // module.obj_predict_head.decoder_dict.{obj,attr,feat}, module.answer_head.logit_fc.*.
        manual_seed(7);
        var config = Tiny();
        using var source = new LxmertForPreTraining(config);
        var dir = TestPaths.TempDirectory();
        try
        {
            var state = source.state_dict().ToDictionary(kv => "module." + (kv.Key.StartsWith("lxmert.") ? "bert." + kv.Key[7..] : kv.Key), kv => kv.Value);
            state["module.cls.predictions.decoder.weight"] = source.Backbone.Embeddings.WordEmbeddings.weight!;
            Assert.That(state.Keys, Does.Contain("module.obj_predict_head.decoder_dict.attr.weight").And.Contain("module.bert.encoder.x_layers.1.visual_attention.att.query.weight"));
            var path = SafetensorsBuilder.Write(Path.Combine(dir, "model_LXRT.safetensors"), state);

            using var target = new LxmertForPreTraining(config);
            var report = ModelLoader.Load(target, path, LxmertFamily.PreTrainingKeyMap);
            Assert.That(report.IsComplete, Is.True, report.ToText());
            Assert.That(report.Ignored, Is.EqualTo(new[] { "module.cls.predictions.decoder.weight" }));
            source.eval(); target.eval();
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var ids = randint(1, 60, new long[] { 2, 6 });
            var feats = randn(2, 4, 10);
            var boxes = rand(2, 4, 4);
            var a = source.forward(ids, feats, boxes);
            var b = target.forward(ids, feats, boxes);
            Assert.That(MaxAbs(a.PredictionLogits, b.PredictionLogits), Is.EqualTo(0));
            Assert.That(MaxAbs(a.VisualPredictions["feat"], b.VisualPredictions["feat"]), Is.EqualTo(0));
            Assert.That(b.VisualPredictions["obj"].shape, Is.EqualTo(new long[] { 2, 4, 5 }));
            Assert.That(b.QuestionAnsweringScore!.shape, Is.EqualTo(new long[] { 2, 7 }));

            using var backbone = new LxmertModel(config);
            report = ModelLoader.Load(backbone, path, LxmertFamily.BackboneKeyMap);
            Assert.That(report.IsComplete, Is.True, report.ToText());
            Assert.That(report.Ignored.Count(k => k.Contains("obj_predict_head") || k.Contains("answer_head") || k.Contains(".cls.")), Is.EqualTo(report.Ignored.Count));
            backbone.eval();
            Assert.That(MaxAbs(backbone.forward(ids, feats, boxes).PooledOutput, a.Backbone.PooledOutput), Is.EqualTo(0));

            // Into the VQA model the 7-answer pretraining head does not fit a 3-answer head: a strict load names it.
            using var vqa = new LxmertForQuestionAnswering(config, 3);
            var e = Assert.Throws<CheckpointException>(() => ModelLoader.Load(vqa, path, LxmertFamily.QuestionAnsweringKeyMap));
            Assert.That(e!.Message, Does.Contain("answer_head.logit_fc.3.weight").And.Contain("[3, 32]").And.Contain("[7, 32]"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void PaddingDoesNotLeakIntoAnyItemOfABatch()
    {
        manual_seed(13);
        using var model = new LxmertForQuestionAnswering(Tiny(), 5);
        model.eval();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var idsA = randint(1, 60, new long[] { 1, 4 }); var idsB = randint(1, 60, new long[] { 1, 8 });
        var featA = randn(1, 2, 10); var featB = randn(1, 5, 10);
        var posA = rand(1, 2, 4); var posB = rand(1, 5, 4);
        var ids = cat(new[] { nn.functional.pad(idsA, new long[] { 0, 4 }), idsB }, 0);
        var mask = tensor(new long[,] { { 1, 1, 1, 1, 0, 0, 0, 0 }, { 1, 1, 1, 1, 1, 1, 1, 1 } });
        var feats = cat(new[] { nn.functional.pad(featA, new long[] { 0, 0, 0, 3 }), featB }, 0);
        var pos = cat(new[] { nn.functional.pad(posA, new long[] { 0, 0, 0, 3 }), posB }, 0);
        var regionMask = tensor(new long[,] { { 1, 1, 0, 0, 0 }, { 1, 1, 1, 1, 1 } });
        var (batch, logits) = model.forward(ids, feats, pos, mask, regionMask);
        var alone = new[] { model.forward(idsA, featA, posA), model.forward(idsB, featB, posB) };
        long[] tokens = { 4, 8 }, regions = { 2, 5 };
        for (int i = 0; i < 2; i++)
        {
            var (single, singleLogits) = alone[i];
            Assert.That(MaxAbs(logits.narrow(0, i, 1), singleLogits), Is.LessThan(2e-5), $"item {i} logits");
            Assert.That(MaxAbs(batch.LanguageOutput.narrow(0, i, 1).narrow(1, 0, tokens[i]), single.LanguageOutput), Is.LessThan(2e-5), $"item {i} lang");
            Assert.That(MaxAbs(batch.VisionOutput.narrow(0, i, 1).narrow(1, 0, regions[i]), single.VisionOutput), Is.LessThan(2e-5), $"item {i} visn");
        }
        // The check can fail: without the visual mask the padded regions leak into item 0.
        var (_, leaky) = model.forward(ids, feats, pos, mask, null);
        Assert.That(MaxAbs(leaky.narrow(0, 0, 1), alone[0].Logits), Is.GreaterThan(1e-3));
    }

    [Test]
    public void RepeatedInferenceDoesNotGrowMemory()
    {
        manual_seed(2);
        using var model = new LxmertForQuestionAnswering(Tiny(), 5);
        model.eval();
        var ids = randint(1, 60, new long[] { 2, 8 });
        var feats = randn(2, 6, 10);
        var pos = rand(2, 6, 4);
        // The region VQA path too: box encoding and padding of two images with different region counts.
        var questions = new[]
        {
            new ModelZoo.Models.TwoStream.RegionVqaInput(new long[] { 2, 9, 8, 3 }, randn(5, 10), tensor(new float[] { 10, 20, 110, 90 }).expand(5, 4).contiguous(), 200, 100),
            new ModelZoo.Models.TwoStream.RegionVqaInput(new long[] { 2, 7, 3 }, randn(3, 10), tensor(new float[] { 0, 0, 50, 40 }).expand(3, 4).contiguous(), 50, 40),
        };
        // 400 warm-up passes: glibc's arenas and the allocator keep growing over the first few hundred tiny passes.
        MemoryGrowth.AssertSteady(() =>
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            model.forward(ids, feats, pos);
            ((ModelZoo.Models.TwoStream.IRegionVqaModel)model).AnswerLogits(questions);
        }, warmup: 400);
    }

    [Test]
    public void BadInputsNameTheTensorAndTheShapes()
    {
        using var model = new LxmertModel(Tiny());
        using var scope = NewDisposeScope();
        var ids = randint(1, 60, new long[] { 1, 5 });
        var e = Assert.Throws<ArgumentException>(() => model.forward(ids, randn(1, 3, 9), rand(1, 3, 4)));
        Assert.That(e!.Message, Does.Contain("visual_feats").And.Contain("[1, 3, 9]").And.Contain("visual_feat_dim"));
        e = Assert.Throws<ArgumentException>(() => model.forward(ids, randn(1, 3, 10), rand(1, 2, 4)));
        Assert.That(e!.Message, Does.Contain("visual_pos").And.Contain("[1, 2, 4]"));
        e = Assert.Throws<ArgumentException>(() => model.forward(ids, randn(1, 3, 10), rand(1, 3, 4), visualAttentionMask: ones(1, 4)));
        Assert.That(e!.Message, Does.Contain("visual_attention_mask"));
    }
}
