using ModelZoo.Models.Catalog;
using ModelZoo.Models.Clip;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Weights;

/// <summary>CLIP checkpoints converted to the Hugging Face layout and back.</summary>
public class ClipLayoutTests
{
    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    static (Tensor Image, Tensor Text) Features(ClipModel model, Tensor images, Tensor tokens)
    {
        using var _ = no_grad();
        model.eval();
        return (model.EncodeImage(images).DetachFromDisposeScope(), model.EncodeText(tokens).DetachFromDisposeScope());
    }

    [Test]
    public void ConvertWritesTheHuggingFaceLayoutAndReadsItBackToIdenticalOutputs()
    {
        using var source = ModelCatalog.Default.Create<ClipModel>("clip-tiny", new ModelCreateOptions { Seed = 5 });
        var original = SafetensorsBuilder.Write(Path.Combine(_directory, "original.safetensors"), source.state_dict());

        var hf = Path.Combine(_directory, "hf");
        var (code, output, error) = CliRunner.Run("convert", original, "--model", "clip-tiny", "--layout", "huggingface", "--out", hf + "/");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain("huggingface layout"));
        using (var reader = Checkpoint.Open(hf))
        {
            var names = reader.Entries.Select(e => e.Name).ToList();
            Assert.That(names, Does.Contain("vision_model.encoder.layers.0.self_attn.q_proj.weight")
                .And.Contain("text_model.encoder.layers.1.self_attn.v_proj.bias").And.Contain("visual_projection.weight").And.Contain("logit_scale"));
            Assert.That(names.Any(n => n.StartsWith("visual.", StringComparison.Ordinal) || n.Contains("in_proj", StringComparison.Ordinal)), Is.False);
            // nn.Linear layout: [embed, width] where CLIP keeps [width, embed].
            var projection = reader.Entries.Single(e => e.Name == "visual_projection.weight");
            Assert.That(projection.Shape, Is.EqualTo(new long[] { source.Config.EmbedDim, source.Config.VisionWidth }));
        }

        // Back to the original layout (the HF layout is detected), then both load into models that agree exactly.
        var back = Path.Combine(_directory, "back", "model.safetensors");
        (code, _, error) = CliRunner.Run("convert", hf, "--model", "clip-tiny", "--out", back);
        Assert.That(code, Is.EqualTo(0), error);
        using (var a = new SafetensorsReader(original))
        using (var b = new SafetensorsReader(back))
        {
            Assert.That(b.Entries.Select(e => e.Name).OrderBy(n => n), Is.EqualTo(a.Entries.Select(e => e.Name).OrderBy(n => n)));
            foreach (var entry in a.Entries)
            {
                using var x = a.Read(entry.Name);
                using var y = b.Read(entry.Name);
                Assert.That(x.equal(y).all().item<bool>(), Is.True, entry.Name);
            }
        }

        using var fromHf = ModelCatalog.Default.Create<ClipModel>("clip-tiny", new ModelCreateOptions { WeightsPath = hf });
        manual_seed(3);
        using var images = randn(2, 3, source.Config.ImageResolution, source.Config.ImageResolution);
        using var tokens = randint(1, 1000, new long[] { 2, source.Config.ContextLength });
        var (imageA, textA) = Features(source, images, tokens);
        var (imageB, textB) = Features(fromHf, images, tokens);
        using (imageA) using (textA) using (imageB) using (textB)
        {
            Assert.That(imageB.equal(imageA).all().item<bool>(), Is.True, "image features");
            Assert.That(textB.equal(textA).all().item<bool>(), Is.True, "text features");
        }
    }

    [Test]
    public void HuggingFaceKeysBehindAModulePrefixAreDetected()
    {
        using var source = ModelCatalog.Default.Create<ClipModel>("clip-tiny", new ModelCreateOptions { Seed = 6 });
        var hf = ClipKeyMaps.HuggingFace.Reverse().Apply(source.state_dict());
        var state = hf.Tensors.ToDictionary(t => "module." + t.Name, t => t.Materialize());
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "ddp.safetensors"), state);
        using (var reader = Checkpoint.Open(path))
            Assert.That(ClipKeyMaps.For(reader).MapName("module.vision_model.encoder.layers.0.self_attn.out_proj.weight"),
                Is.EqualTo("visual.transformer.resblocks.0.attn.out_proj.weight"));
        using var loaded = ModelCatalog.Default.Create<ClipModel>("clip-tiny", new ModelCreateOptions { WeightsPath = path });
        var loadedState = loaded.state_dict();
        foreach (var (key, value) in source.state_dict())
            Assert.That(loadedState[key].equal(value).all().item<bool>(), Is.True, key);
        foreach (var t in state.Values) t.Dispose();
    }
}
