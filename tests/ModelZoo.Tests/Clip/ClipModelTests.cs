using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Clip;
using ModelZoo.Models.Parity;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Clip;

public class ClipModelTests
{
    /// <summary>A small ViT CLIP with every dimension different, so mix-ups show.</summary>
    internal static ClipConfig SmallVit => new()
    {
        EmbedDim = 24, ImageResolution = 16, VisionLayers = new[] { 2 }, VisionWidth = 48, VisionPatchSize = 8, VisionHeads = 3,
        ContextLength = 12, VocabSize = 50, TransformerWidth = 40, TransformerHeads = 4, TransformerLayers = 2,
    };

    internal static ClipConfig SmallResNet => SmallVit with { ImageResolution = 64, VisionLayers = new[] { 1, 1, 2, 1 }, VisionWidth = 8, VisionPatchSize = null, VisionHeads = null };

    internal static Tensor Text(int rows, ClipConfig config, long seed = 3)
    {
        var generator = new Generator((ulong)seed);
        var ids = randint(1, config.VocabSize - 2, new long[] { rows, config.ContextLength }, generator: generator);
        for (int r = 0; r < rows; r++)
        {
            int length = Math.Max(2, config.ContextLength - 3 * r);
            ids[r, 0].fill_(config.VocabSize - 2);
            ids[r, length - 1].fill_(config.VocabSize - 1);
            if (length < config.ContextLength) ids[r, TensorIndex.Slice(length)].fill_(0);
        }
        return ids;
    }

    [TestCase("clip-vit")]
    [TestCase("clip-rn")]
    public void GoldenFixtureMatchesTheReference(string name)
    {
        var result = ParityCheck.Check(TestPaths.Fixture(name));
        Assert.That(result.Family, Is.EqualTo(name));
        foreach (var output in result.Outputs)
            Assert.That(output.Pass, Is.True, $"{output.Name}: max abs error {output.MaxAbsError} {output.Error}");
        Assert.That(result.Outputs.Select(o => o.Name), Does.Contain("logits_per_image").And.Contain("text_hidden_states.0"));
    }

    [Test]
    public void HuggingFaceCLIPModelFixtureMatchesTransformers()
    {
        var result = ParityCheck.Check(Path.Combine(TestPaths.RepositoryRoot, "tests", "data", "hf-fixtures", "hf-clip"));
        Assert.That(result.Outputs.Select(o => o.Name), Does.Contain("vision_hidden_states.2").And.Contain("text_hidden_states.0"));
        foreach (var output in result.Outputs)
            Assert.That(output.Pass, Is.True, $"{output.Name}: max abs error {output.MaxAbsError} {output.Error}");
    }

    [TestCase("clip-vit")]
    [TestCase("clip-rn")]
    public void ParityCommandPasses(string name)
    {
        var (code, output, error) = CliRunner.Run("parity", TestPaths.Fixture(name));
        Assert.That(code, Is.EqualTo(0), output + error);
        Assert.That(output, Does.Contain("PASS"));
    }

    [Test]
    public void TheFixtureCheckpointRewrittenInHuggingFaceLayoutGivesTheSameOutputs()
    {
        string directory = TestPaths.TempDirectory();
        try
        {
            using var fixture = new Fixture(TestPaths.Fixture("clip-vit"));
            var hf = new Dictionary<string, Tensor>();
            using (var reader = Checkpoint.Open(fixture.CheckpointPath))
            {
                var entries = reader.Entries.ToDictionary(e => e.Name, e => reader.Read(e.Name));
                foreach (var t in ClipKeyMaps.HuggingFace.Reverse().Apply(entries).Tensors) hf[t.Name] = t.Materialize();
            }
            Assert.That(hf.Keys, Does.Contain("vision_model.encoder.layers.1.self_attn.k_proj.weight")
                .And.Contain("vision_model.pre_layrnorm.weight").And.Contain("vision_model.post_layernorm.bias")
                .And.Contain("vision_model.embeddings.patch_embedding.weight").And.Contain("vision_model.embeddings.class_embedding")
                .And.Contain("text_model.encoder.layers.0.mlp.fc2.bias").And.Contain("text_model.final_layer_norm.weight")
                .And.Contain("visual_projection.weight").And.Contain("text_projection.weight").And.Contain("logit_scale"));
            Assert.That(hf.Keys.Any(k => k.Contains("in_proj")), Is.False);
            Assert.That(hf["visual_projection.weight"].shape, Is.EqualTo(new long[] { 32, 128 }), "nn.Linear layout [embed, width]");
            Assert.That(hf["vision_model.encoder.layers.0.self_attn.q_proj.weight"].shape, Is.EqualTo(new long[] { 128, 128 }));
            string path = SafetensorsBuilder.Write(Path.Combine(directory, "model.safetensors"), hf);

            var config = ClipConfig.Parse(fixture.Config);
            using var model = new ClipModel(config);
            using (var reader = Checkpoint.Open(path))
            {
                Assert.That(ClipKeyMaps.For(reader), Is.SameAs(ClipKeyMaps.HuggingFace));
                var report = ModelLoader.Load(model, reader, ClipKeyMaps.For(reader));
                Assert.That(report.IsComplete, Is.True, report.ToText());
            }
            model.eval();
            using var _ = no_grad();
            var output = model.forward(fixture.Input("image"), fixture.Input("text"));
            foreach (var (name, actual) in new[] { ("logits_per_image", output.LogitsPerImage), ("image_features", output.Image.Features), ("text_features", output.Text.Features) })
            {
                var check = ParityCheck.Compare(name, actual, fixture.Outputs[name], fixture.Atol, fixture.Rtol);
                Assert.That(check.Pass, Is.True, $"{name}: {check.MaxAbsError}");
            }
        }
        finally { Directory.Delete(directory, true); }
    }

    [Test]
    public void ARandomModelConvertedToHuggingFaceLayoutLoadsWithIdenticalOutputs()
    {
        string directory = TestPaths.TempDirectory();
        try
        {
            manual_seed(11);
            using var original = new ClipModel(SmallVit);
            original.eval();
            var mapped = ClipKeyMaps.HuggingFace.Reverse().Apply(original.state_dict());
            string path = SafetensorsBuilder.Write(Path.Combine(directory, "hf.safetensors"), mapped.Tensors.ToDictionary(t => t.Name, t => t.Materialize()));

            manual_seed(12);
            using var loaded = new ClipModel(SmallVit);
            using (var reader = Checkpoint.Open(path))
                Assert.That(ModelLoader.Load(loaded, reader, ClipKeyMaps.For(reader)).IsComplete, Is.True);
            loaded.eval();

            using var _ = no_grad();
            var image = randn(2, 3, 16, 16);
            var text = Text(3, SmallVit);
            var a = original.forward(image, text);
            var b = loaded.forward(image, text);
            Assert.That((a.LogitsPerImage - b.LogitsPerImage).abs().max().item<float>(), Is.EqualTo(0f));
            Assert.That((a.Text.HiddenStates[1] - b.Text.HiddenStates[1]).abs().max().item<float>(), Is.EqualTo(0f));
            Assert.That((a.Image.HiddenStates[1] - b.Image.HiddenStates[1]).abs().max().item<float>(), Is.EqualTo(0f));
        }
        finally { Directory.Delete(directory, true); }
    }

    [Test]
    public void TheTorchScriptReleaseFormatLoadsThroughTheCatalogPath()
    {
        // The clip-vit fixture weights inside a TorchScript archive with the release files' extra int entries
        // (made by data/make_torchscript_archive.py).
        string archive = Path.Combine(TestPaths.RepositoryRoot, "tests", "ModelZoo.Tests", "Clip", "data", "clip-vit-torchscript.pt");
        using var fixture = new Fixture(TestPaths.Fixture("clip-vit"));
        using (var reader = Checkpoint.Open(archive))
        {
            Assert.That(reader.Format, Is.EqualTo(TorchPickleReader.TorchScriptFormat), "read by the streaming pickle reader, not libtorch");
            Assert.That(reader.Entries.Select(e => e.Name), Does.Contain("visual.transformer.resblocks.0.attn.in_proj_weight").And.Contain("context_length"));
            var config = ClipConfig.Parse(fixture.Config);
            using var model = new ClipModel(config);
            var report = ModelLoader.Load(model, reader, ClipKeyMaps.For(reader));
            Assert.That(report.Ignored, Is.EquivalentTo(new[] { "input_resolution", "context_length", "vocab_size" }));
            model.eval();
            using var _ = no_grad();
            var output = model.forward(fixture.Input("image"), fixture.Input("text"));
            var check = ParityCheck.Compare("logits_per_image", output.LogitsPerImage, fixture.Outputs["logits_per_image"], fixture.Atol, fixture.Rtol);
            Assert.That(check.Pass, Is.True, check.MaxAbsError.ToString());
        }
    }

    [Test]
    public void LibtorchsOwnLoaderReadsTheSameArchiveAsAFallback()
    {
        string archive = Path.Combine(TestPaths.RepositoryRoot, "tests", "ModelZoo.Tests", "Clip", "data", "clip-vit-torchscript.pt");
        using var streamed = Checkpoint.Open(archive);
        using var scripted = TorchScriptReader.Open(archive);
        Assert.That(scripted.Format, Is.EqualTo("TorchScript archive"));
        Assert.That(scripted.Entries.Select(e => e.Name), Is.SupersetOf(streamed.Entries.Select(e => e.Name).Where(n => n.Contains('.'))));
        foreach (var entry in streamed.Entries.Where(e => e.Name.Contains('.')))
        {
            using var a = streamed.Read(entry.Name);
            using var b = scripted.Read(entry.Name);
            Assert.That(a.equal(b).all().item<bool>(), Is.True, entry.Name);
        }
    }

    [Test]
    public void ABrokenTorchScriptArchiveSaysHowToConvertIt()
    {
        string directory = TestPaths.TempDirectory();
        try
        {
            string path = Path.Combine(directory, "ViT-B-32.pt");
            using (var zip = System.IO.Compression.ZipFile.Open(path, System.IO.Compression.ZipArchiveMode.Create))
            {
                using (var writer = new StreamWriter(zip.CreateEntry("ViT-B-32/constants.pkl").Open())) writer.Write("not a pickle");
                using (var writer = new StreamWriter(zip.CreateEntry("ViT-B-32/code/__torch__/model.py").Open())) writer.Write("class CLIP: pass");
            }
            var e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path));
            Assert.That(e!.Message, Does.Contain(path).And.Contain("TorchScript").And.Contain("save_file"));
        }
        finally { Directory.Delete(directory, true); }
    }

    [Test]
    public void ShapesOfBothTowersFollowTheConfig()
    {
        using var _ = no_grad();
        foreach (var config in new[] { SmallVit, SmallResNet })
        {
            using var model = new ClipModel(config);
            model.eval();
            var output = model.forward(randn(2, 3, config.ImageResolution, config.ImageResolution), Text(3, config));
            Assert.That(output.LogitsPerImage.shape, Is.EqualTo(new long[] { 2, 3 }));
            Assert.That(output.LogitsPerText.shape, Is.EqualTo(new long[] { 3, 2 }));
            Assert.That(output.Image.Features.shape, Is.EqualTo(new long[] { 2, config.EmbedDim }));
            Assert.That(output.Text.HiddenStates, Has.Count.EqualTo(config.TransformerLayers));
            if (config.IsResNet)
            {
                Assert.That(output.Image.Stages.Select(s => s.shape), Is.EqualTo(new[]
                {
                    new long[] { 2, 32, 16, 16 }, new long[] { 2, 64, 8, 8 }, new long[] { 2, 128, 4, 4 }, new long[] { 2, 256, 2, 2 },
                }));
            }
            else
            {
                Assert.That(output.Image.HiddenStates[0].shape, Is.EqualTo(new long[] { 2, 5, 48 }));
            }
        }
    }

    [Test]
    public void TextFeaturesAreReadAtTheEndOfTextTokenAndIgnoreLaterTokens()
    {
        using var _ = no_grad();
        using var model = new ClipModel(SmallVit);
        model.eval();
        var text = Text(2, SmallVit);
        var changed = text.clone();
        changed[1, -1].fill_(5); // row 1 ends before the last position: what follows its end token is not seen (causal mask)
        var a = model.EncodeTextDetailed(text);
        var b = model.EncodeTextDetailed(changed);
        Assert.That((a.Features - b.Features).abs().max().item<float>(), Is.EqualTo(0f));
        Assert.That((a.HiddenStates[1][1, -1] - b.HiddenStates[1][1, -1]).abs().max().item<float>(), Is.GreaterThan(0f));
    }

    [Test]
    public void BadInputsGiveClearErrors()
    {
        using var _ = no_grad();
        using var vit = new ClipModel(SmallVit);
        var e = Assert.Throws<ArgumentException>(() => vit.EncodeImage(randn(1, 3, 32, 32)));
        Assert.That(e!.Message, Does.Contain("16x16").And.Contain("32x32"));
        e = Assert.Throws<ArgumentException>(() => vit.EncodeText(zeros(1, 13, dtype: ScalarType.Int64)));
        Assert.That(e!.Message, Does.Contain("13 tokens").And.Contain("12"));
        using var resnet = new ClipModel(SmallResNet);
        e = Assert.Throws<ArgumentException>(() => resnet.EncodeImage(randn(1, 3, 32, 32)));
        Assert.That(e!.Message, Does.Contain("64x64"));
        Assert.Throws<ArgumentException>(() => new ClipModel(SmallVit with { VisionPatchSize = 5 }));
    }

    [Test]
    public void ConvertsToBfloat16AndRuns()
    {
        using var _ = no_grad();
        foreach (var config in new[] { SmallVit, SmallResNet })
        {
            using var model = new ClipModel(config);
            model.eval();
            var image = randn(1, 3, config.ImageResolution, config.ImageResolution);
            var text = Text(1, config);
            var reference = model.forward(image, text).LogitsPerImage.clone();
            model.to(ScalarType.BFloat16);
            Assert.That(model.parameters().All(p => p.dtype == ScalarType.BFloat16), Is.True);
            var logits = model.forward(image, text).LogitsPerImage;
            Assert.That(logits.dtype, Is.EqualTo(ScalarType.BFloat16));
            Assert.That((logits.to(ScalarType.Float32) - reference).abs().max().item<float>(), Is.LessThan(0.5f));
        }
    }

    [Test]
    public void ConfigReadsANumberOrAListForVisionLayersAndHuggingFaceConfigs()
    {
        var vit = ClipConfig.Parse(JsonDocument.Parse("""{"embed_dim": 8, "image_resolution": 16, "vision_layers": 3, "vision_width": 64, "vision_patch_size": 4, "context_length": 5, "vocab_size": 9, "transformer_width": 8, "transformer_heads": 2, "transformer_layers": 1}""").RootElement);
        Assert.That(vit.IsResNet, Is.False);
        Assert.That(vit.VisionLayers, Is.EqualTo(new[] { 3 }));
        var rn = ClipConfig.Parse(JsonDocument.Parse("""{"embed_dim": 8, "image_resolution": 64, "vision_layers": [1, 2, 1, 1], "vision_width": 8, "vision_patch_size": null, "context_length": 5, "vocab_size": 9, "transformer_width": 8, "transformer_heads": 2, "transformer_layers": 1}""").RootElement);
        Assert.That(rn.IsResNet, Is.True);
        Assert.That(rn.ResolvedVisionHeads, Is.EqualTo(4));
        Assert.That(JsonDocument.Parse(ModelZoo.Models.Common.ConfigJson.Serialize(rn)).RootElement.GetProperty("vision_layers").GetArrayLength(), Is.EqualTo(4));

        var hf = ClipConfig.Parse(JsonDocument.Parse("""
            {"projection_dim": 512,
             "text_config": {"vocab_size": 49408, "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 8, "max_position_embeddings": 77, "hidden_act": "quick_gelu"},
             "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12, "image_size": 224, "patch_size": 32, "hidden_act": "quick_gelu"}}
            """).RootElement);
        Assert.That(ModelZoo.Models.Common.ConfigJson.Serialize(hf with { VisionHeads = null, TextHiddenAct = null, VisionHiddenAct = null }),
            Is.EqualTo(ModelZoo.Models.Common.ConfigJson.Serialize(ClipFamily.VitB32)));
        Assert.That(hf.ResolvedVisionHeads, Is.EqualTo(12));
        Assert.That(hf.VisionLayerOptions().Activation, Is.EqualTo(ModelZoo.Attention.Layers.Activation.QuickGelu));

        var gelu = ClipConfig.Parse(JsonDocument.Parse("""
            {"projection_dim": 8,
             "text_config": {"vocab_size": 20, "hidden_size": 16, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 6, "hidden_act": "gelu", "layer_norm_eps": 1e-6},
             "vision_config": {"hidden_size": 16, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 8, "patch_size": 4, "hidden_act": "gelu"}}
            """).RootElement);
        Assert.That(gelu.TextLayerOptions().Activation, Is.EqualTo(ModelZoo.Attention.Layers.Activation.GeluErf));
        Assert.That(gelu.TextLayerOptions().LayerNormEps, Is.EqualTo(1e-6));
        Assert.That(gelu.VisionLayerOptions().LayerNormEps, Is.EqualTo(1e-5));
        Assert.That(gelu.TextLayerOptions().MlpDim, Is.EqualTo(64));

        var odd = ClipConfig.Parse(JsonDocument.Parse("""
            {"projection_dim": 8,
             "text_config": {"vocab_size": 20, "hidden_size": 16, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 6},
             "vision_config": {"hidden_size": 16, "intermediate_size": 20, "num_hidden_layers": 1, "num_attention_heads": 4, "image_size": 8, "patch_size": 4}}
            """).RootElement);
        using var oddModel = new ClipModel(odd);
        Assert.That(oddModel.state_dict()["transformer.resblocks.0.mlp.c_fc.weight"].shape, Is.EqualTo(new long[] { 37, 16 }));
        Assert.That(oddModel.state_dict()["visual.transformer.resblocks.0.mlp.c_proj.weight"].shape, Is.EqualTo(new long[] { 16, 20 }));
    }

    [Test]
    public void RepeatedInferenceDoesNotGrowMemory()
    {
        using var model = new ClipModel(SmallResNet);
        model.eval();
        var image = randn(2, 3, 64, 64);
        var text = Text(3, SmallResNet);
        void Pass()
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            model.forward(image, text);
        }
        MemoryGrowth.AssertSteady(Pass);
    }
}
