using ModelZoo.Models.Catalog;
using ModelZoo.Models.Flamingo;
using ModelZoo.Tests.Generation;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Flamingo;

/// <summary>
/// A Flamingo model stored in several files, as the OpenFlamingo releases come: the CLIP checkpoint (open_clip names,
/// visual.* plus a text tower), the bare decoder LM checkpoint and a checkpoint.pt with the trained parts.
/// </summary>
public class FlamingoMultiFileTests
{
    string directory = "";
    string whole = "", vision = "", decoder = "", trained = "";
    Dictionary<string, Tensor> state = new();

    [OneTimeSetUp]
    public void WriteTheParts()
    {
        directory = TestPaths.TempDirectory();
        manual_seed(31);
        using var model = new FlamingoModel(FlamingoFamily.Tiny);
        GenerationTests.Sharpen(model, 0.05);
        state = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        whole = SafetensorsBuilder.Write(Path.Combine(directory, "whole.safetensors"), state);

        // open_clip's full CLIP checkpoint: the image tower under visual.*, the text tower beside it (ignored on load).
        var clip = state.Where(kv => kv.Key.StartsWith("vision_encoder.")).ToDictionary(kv => "visual." + kv.Key["vision_encoder.".Length..], kv => kv.Value);
        clip["token_embedding.weight"] = randn(10, 8);
        clip["text_projection"] = randn(8, 8);
        clip["logit_scale"] = ones(1);
        vision = SafetensorsBuilder.Write(Path.Combine(directory, "open_clip.safetensors"), clip);

        // The decoder LM alone (Hugging Face GPT-2 names, no lang_encoder. prefix); its wte is replaced by the trained
        // checkpoint's (zeros here, so an output equal to the whole model's proves the later file won).
        var lm = state.Where(kv => kv.Key.StartsWith("lang_encoder.transformer.")).ToDictionary(kv => kv.Key["lang_encoder.".Length..], kv => kv.Value);
        lm["transformer.wte.weight"] = zeros_like(lm["transformer.wte.weight"]);
        decoder = SafetensorsBuilder.Write(Path.Combine(directory, "decoder.safetensors"), lm);

        // OpenFlamingo's checkpoint.pt: the trainable parts (perceiver, cross-attention, the resized input embedding).
        var parts = state.Where(kv => kv.Key.StartsWith("perceiver.") || kv.Key.StartsWith("lang_encoder.gated_cross_attn_layers.")
                                       || kv.Key == "lang_encoder.transformer.wte.weight").ToDictionary(kv => kv.Key, kv => kv.Value);
        trained = SafetensorsBuilder.Write(Path.Combine(directory, "checkpoint.safetensors"), parts);
        Assert.That(clip.Count(kv => kv.Key.StartsWith("visual.")) + lm.Count + parts.Count, Is.EqualTo(state.Count + 1), "every key in exactly one file, wte in two");
    }

    [OneTimeTearDown]
    public void Clean()
    {
        foreach (var t in state.Values) t.Dispose();
        Directory.Delete(directory, true);
    }

    static Tensor Logits(FlamingoModel model)
    {
        manual_seed(3);
        var images = randn(new long[] { 1, 2, 1, 3, 32, 32 });
        var ids = tensor(new long[,] { { FlamingoFamily.Gpt2Media, 318, 257, FlamingoFamily.Gpt2EndOfChunk, FlamingoFamily.Gpt2Media, 3797, 319 } });
        using var _ = no_grad();
        return model.forward(images, ids);
    }

    [Test]
    public void ThreeFilesLoadLikeTheWholeCheckpoint()
    {
        using var fromWhole = ModelCatalog.Default.Create<FlamingoModel>("flamingo-tiny", new ModelCreateOptions { WeightsPath = whole, Seed = 1 });
        LoadReport? report = null;
        using var fromParts = ModelCatalog.Default.Create<FlamingoModel>("flamingo-tiny", new ModelCreateOptions
        {
            WeightsPaths = new[] { vision, decoder, trained }, Seed = 2, OnLoadReport = r => report = r,
        });
        var expected = Logits(fromWhole);
        Assert.That((Logits(fromParts) - expected).abs().max().item<float>(), Is.EqualTo(0f));
        using (var random = ModelCatalog.Default.Create<FlamingoModel>("flamingo-tiny", new ModelCreateOptions { Seed = 2 }))
            Assert.That((Logits(random) - expected).abs().max().item<float>(), Is.GreaterThan(1e-3f), "the weights came from the files");
        foreach (var (key, value) in fromParts.state_dict())
            Assert.That(value.equal(state[key]).all().item<bool>(), Is.True, key);

        Assert.That(report, Is.Not.Null);
        Assert.That(report!.IsComplete, Is.True, report.ToText());
        Assert.That(report.Superseded, Has.Count.EqualTo(1));
        Assert.That(report.Superseded[0], Does.StartWith("lang_encoder.transformer.wte.weight: from " + trained).And.Contain(decoder));
        Assert.That(report.Ignored, Does.Contain("token_embedding.weight").And.Contain("logit_scale"), "open_clip's text tower is ignored");
        Assert.That(report.TensorsLoaded, Is.EqualTo(state.Count), "each key read once, from the file that supplies it last");
        Assert.That(report.ToText(), Does.Contain("supplied by more than one file"));
    }

    [Test]
    public void AnObserverHearsOfTheWholeLoadOnceAndAMisshapedCopyIsNoted()
    {
        // A fourth file, first in order, holds a misshaped copy of a perceiver tensor that checkpoint.safetensors has right.
        string odd = SafetensorsBuilder.Write(Path.Combine(directory, "odd.safetensors"),
            new Dictionary<string, Tensor> { ["perceiver.latents"] = zeros(3, 5) });
        var heard = new List<LoadReport>();
        using (ModelLoader.ObserveLoads(heard.Add))
        using (var model = ModelCatalog.Default.Create<FlamingoModel>("flamingo-tiny", new ModelCreateOptions { WeightsPaths = new[] { odd, vision, decoder, trained } }))
            Assert.That(model.state_dict()["perceiver.latents"].equal(state["perceiver.latents"]).all().item<bool>(), Is.True);
        Assert.That(heard, Has.Count.EqualTo(1), "one report for the four files");
        Assert.That(heard[0].IsComplete, Is.True, heard[0].ToText());
        Assert.That(heard[0].Superseded, Has.Some.StartsWith("perceiver.latents: misshaped in " + odd).And.Some.Contains("[3, 5]"));
    }

    [Test]
    public void AMissingPartIsAnErrorNamingTheMissingKeys()
    {
        var e = Assert.Throws<CheckpointException>(() => ModelCatalog.Default.Create("flamingo-tiny", new ModelCreateOptions { WeightsPaths = new[] { vision, decoder } }))!;
        Assert.That(e.Message, Does.Contain("do not fit the model").And.Contain(vision).And.Contain(decoder));
        Assert.That(e.Message, Does.Contain("missing (in the model, not in the checkpoint)").And.Contain("perceiver.latents"));

        // Non-strict loads what the files have and reports the rest.
        LoadReport? report = null;
        using var partial = ModelCatalog.Default.Create("flamingo-tiny", new ModelCreateOptions { WeightsPaths = new[] { vision, decoder }, Strict = false, OnLoadReport = r => report = r });
        Assert.That(report!.Missing, Does.Contain("perceiver.latents").And.Contain("lang_encoder.gated_cross_attn_layers.1.attn_gate")
            .And.Not.Contain("lang_encoder.transformer.wte.weight").And.Not.Contain("vision_encoder.conv1.weight"));

        // A file key the model does not have is named with its file.
        var extra = SafetensorsBuilder.Write(Path.Combine(directory, "extra.safetensors"), new Dictionary<string, Tensor> { ["perceiver.not_a_parameter"] = zeros(2) });
        var unexpected = Assert.Throws<CheckpointException>(() => ModelCatalog.Default.Create("flamingo-tiny",
            new ModelCreateOptions { WeightsPaths = new[] { vision, decoder, trained, extra } }))!;
        Assert.That(unexpected.Message, Does.Contain("perceiver.not_a_parameter (in " + extra + ")"));
    }

    [Test]
    public void LoadCommandTakesSeveralFiles()
    {
        var (code, output, error) = CliRunner.Run("load", "flamingo-tiny", vision, decoder, trained);
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain("complete: every model tensor loaded").And.Contain("supplied by more than one file").And.Contain("lang_encoder.transformer.wte.weight"));
        var (missingCode, _, missingError) = CliRunner.Run("load", "flamingo-tiny", vision, decoder);
        Assert.That(missingCode, Is.EqualTo(1));
        Assert.That(missingError, Does.Contain("perceiver.latents").And.Contain("do not fit the model"));
    }
}
