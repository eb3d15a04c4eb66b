using ModelZoo.Models.Catalog;
using ModelZoo.Models.Flamingo;
using ModelZoo.Models.Generation;
using ModelZoo.Models.Gpt2;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Flamingo;

public class FlamingoModelTests
{
    const int Media = FlamingoFamily.Gpt2Media, EndOfChunk = FlamingoFamily.Gpt2EndOfChunk;

    static FlamingoModel Tiny(long seed = 7)
    {
        manual_seed(seed);
        var model = new FlamingoModel(FlamingoFamily.Tiny);
        model.eval();
        return model;
    }

    static void SetGates(FlamingoModel model, float attn, float ff)
    {
        using var _ = no_grad();
        foreach (var (_, block) in model.LanguageModel.CrossAttention.Blocks)
        {
            block.AttentionGate.fill_(attn);
            block.FeedForwardGate.fill_(ff);
        }
    }

    /// <summary>Two prompts: "&lt;image&gt; a b &lt;|endofchunk|&gt; &lt;image&gt; c d" and a shorter one, left-padded.</summary>
    static (Tensor Ids, Tensor Mask, Tensor Images) Batch()
    {
        var ids = tensor(new long[,]
        {
            { Media, 318, 257, EndOfChunk, Media, 3797, 319, 262 },
            { FlamingoFamily.Gpt2Pad, FlamingoFamily.Gpt2Pad, FlamingoFamily.Gpt2Pad, Media, 32, 3290, EndOfChunk, Media },
        });
        var mask = tensor(new long[,] { { 1, 1, 1, 1, 1, 1, 1, 1 }, { 0, 0, 0, 1, 1, 1, 1, 1 } });
        var images = randn(new long[] { 2, 2, 1, 3, 32, 32 });
        return (ids, mask, images);
    }

    [Test]
    public void StateDictFollowsTheOpenFlamingoLayout()
    {
        using var model = Tiny();
        var keys = model.state_dict().Keys.ToList();
        Assert.That(keys, Does.Contain("vision_encoder.conv1.weight").And.Contain("vision_encoder.transformer.resblocks.1.attn.in_proj_weight")
            .And.Contain("perceiver.latents").And.Contain("perceiver.layers.1.0.to_kv.weight").And.Contain("perceiver.layers.1.1.3.weight")
            .And.Contain("lang_encoder.transformer.wte.weight").And.Contain("lang_encoder.transformer.h.3.attn.c_attn.weight")
            .And.Contain("lang_encoder.gated_cross_attn_layers.1.attn_gate").And.Contain("lang_encoder.gated_cross_attn_layers.3.ff.3.weight"));
        // every 2nd layer: blocks before decoder layers 1 and 3 only
        Assert.That(keys.Where(k => k.StartsWith("lang_encoder.gated_cross_attn_layers.")).Select(k => k.Split('.')[2]).Distinct(), Is.EquivalentTo(new[] { "1", "3" }));
        Assert.That(ModelCatalog.Default.Describe("flamingo-tiny").Parameters, Is.EqualTo(model.parameters().Sum(p => p.numel())));
    }

    [Test]
    public void WithBothGatesAtZeroTheLogitsEqualThePlainLanguageModel()
    {
        using var model = Tiny();
        var (ids, mask, images) = Batch();
        using var _ = no_grad();
        var plain = ((Gpt2LMHeadModel)model.Decoder).ForwardTokens(ids, mask);
        var flamingo = model.forward(images, ids, mask);
        Assert.That((flamingo - plain).abs().max().item<float>(), Is.EqualTo(0f), "gates at 0 must leave the LM exactly unchanged");

        SetGates(model, 0.5f, -0.5f);
        var gated = model.forward(images, ids, mask);
        Assert.That((gated - plain).abs().max().item<float>(), Is.GreaterThan(1e-3f), "open gates must change the logits");
        // and the images matter: a different image changes the text after it
        var other = model.forward(randn(images.shape), ids, mask);
        Assert.That((other - gated).narrow(1, 1, 3).abs().max().item<float>(), Is.GreaterThan(1e-4f));
    }

    [Test]
    public void FreezingLeavesExactlyThePerceiverTheCrossAttentionAndTheNewTokenRowsTrainable()
    {
        using var model = Tiny();
        SetGates(model, 0.5f, 0.5f);
        model.Freeze();
        model.train();
        var (ids, mask, images) = Batch();
        var logits = model.forward(images, ids, mask);
        var targets = ids.roll(-1, 1);
        var loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), targets.reshape(-1));
        loss.backward();

        var trained = new List<string>();
        foreach (var (name, parameter) in model.named_parameters())
        {
            bool expected = name.StartsWith("perceiver.") || name.StartsWith("lang_encoder.gated_cross_attn_layers.") || name == "lang_encoder.transformer.wte.weight";
            Assert.That(parameter.requires_grad, Is.EqualTo(expected), name);
            var grad = parameter.grad;
            if (!expected) { Assert.That(grad is null || grad.abs().sum().item<float>() == 0, Is.True, $"{name} got a gradient"); continue; }
            Assert.That(grad, Is.Not.Null, $"{name} got no gradient");
            Assert.That(grad!.abs().sum().item<float>(), Is.GreaterThan(0f), $"{name} got a zero gradient");
            trained.Add(name);
        }
        var embeddingGrad = model.Decoder.TokenEmbeddingWeight.grad!;
        Assert.That(embeddingGrad.narrow(0, 0, 50257).abs().max().item<float>(), Is.EqualTo(0f), "the GPT-2 vocabulary rows stay frozen");
        Assert.That(embeddingGrad.narrow(0, 50257, 3).abs().sum(1).gt(0).all().item<bool>(), Is.True, "each added token row trains");
        Assert.That(trained.Count(n => n.StartsWith("perceiver.")), Is.EqualTo(model.Perceiver.parameters().Count()));
    }

    [Test]
    public void ConvertingTheDtypeKeepsEveryParameterInUse()
    {
        using var model = Tiny();
        SetGates(model, 0.5f, 0.5f);
        var (ids, mask, images) = Batch();
        using var _ = no_grad();
        var fp32 = model.forward(images, ids, mask);
        ((nn.Module)model).to(ScalarType.Float64);
        Assert.That(model.parameters().All(p => p.dtype == ScalarType.Float64), Is.True);
        var fp64 = model.forward(images.to(ScalarType.Float64), ids, mask);
        Assert.That((fp64.to(ScalarType.Float32) - fp32).abs().max().item<float>(), Is.LessThan(1e-3f));
        using var bf16 = ModelCatalog.Default.Create<FlamingoModel>("flamingo-tiny", new ModelCreateOptions { Dtype = "bf16", Seed = 1 });
        var generated = bf16.Generate(images.narrow(0, 0, 1), new[] { ids[0].data<long>().ToArray() }, new ModelZoo.Models.Generation.GenerationOptions { MaxNewTokens = 3 });
        Assert.That(generated[0].Tokens, Is.Not.Empty);
    }

    [Test]
    public void OpenFlamingoCheckpointLayoutAndOurLayoutLoad()
    {
        using var source = Tiny(11);
        SetGates(source, 0.3f, -0.2f);
        var (ids, mask, images) = Batch();
        Tensor expected;
        using (no_grad()) expected = source.forward(images, ids, mask);

        // OpenFlamingo's full state_dict: FlamingoLayer wrappers, duplicate copies, HF Conv1D [in, out], tied lm_head, buffers.
        var openFlamingo = new Dictionary<string, Tensor>();
        foreach (var (key, value) in source.state_dict())
        {
            var layer = System.Text.RegularExpressions.Regex.Match(key, @"^lang_encoder\.transformer\.h\.(\d+)\.(.*)$");
            var block = System.Text.RegularExpressions.Regex.Match(key, @"^lang_encoder\.gated_cross_attn_layers\.(\d+)\.(.*)$");
            if (layer.Success)
            {
                var rest = layer.Groups[2].Value;
                bool conv = rest is "attn.c_attn.weight" or "attn.c_proj.weight" or "mlp.c_fc.weight" or "mlp.c_proj.weight";
                var stored = conv ? value.t().contiguous() : value;
                openFlamingo[$"lang_encoder.transformer.h.{layer.Groups[1].Value}.decoder_layer.{rest}"] = stored;
                openFlamingo[$"lang_encoder.old_decoder_blocks.{layer.Groups[1].Value}.{rest}"] = stored;
            }
            else if (block.Success)
            {
                openFlamingo[$"lang_encoder.transformer.h.{block.Groups[1].Value}.gated_cross_attn_layer.{block.Groups[2].Value}"] = value;
                openFlamingo[key] = value;
            }
            else openFlamingo[key] = value;
        }
        openFlamingo["lang_encoder.lm_head.weight"] = source.Decoder.TokenEmbeddingWeight;
        openFlamingo["lang_encoder.transformer.h.0.decoder_layer.attn.bias"] = ones(1, 1, 8, 8).tril();

        var directory = TestPaths.TempDirectory();
        try
        {
            foreach (var (file, tensors) in new[] { ("openflamingo.safetensors", openFlamingo), ("ours.safetensors", source.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value)) })
            {
                var path = SafetensorsBuilder.Write(Path.Combine(directory, file), tensors);
                using var target = ModelCatalog.Default.Create<FlamingoModel>("flamingo-tiny", new ModelCreateOptions { WeightsPath = path, Seed = 99 });
                using var _ = no_grad();
                Assert.That((target.forward(images, ids, mask) - expected).abs().max().item<float>(), Is.EqualTo(0f), file);
            }
        }
        finally { Directory.Delete(directory, true); }
    }
}

public class FlamingoParameterCountTests
{
    [Test]
    public void ArithmeticMatchesBuiltModules()
    {
        var vision = new VisionTransformerConfig { ImageSize = 24, PatchSize = 6, Width = 20, Layers = 3, Heads = 2, MlpRatio = 3, OutputDim = 7 };
        using (var module = new ClipVisionEncoder(vision).Module)
            Assert.That(FlamingoParameterCounts.VisionEncoder(vision), Is.EqualTo(module.parameters().Sum(p => p.numel())));
        var perceiver = new PerceiverConfig { Dim = 20, Depth = 2, DimHead = 6, Heads = 3, NumLatents = 5, MaxNumMedia = 4, MaxNumFrames = 2, FfMult = 3 };
        using (var module = new PerceiverResampler(perceiver))
            Assert.That(FlamingoParameterCounts.Perceiver(perceiver), Is.EqualTo(module.parameters().Sum(p => p.numel())));
        var block = new CrossAttentionConfig { Dim = 12, DimVisual = 20, DimHead = 5, Heads = 3, FfMult = 2 };
        using (var module = new GatedCrossAttentionBlock(block))
            Assert.That(FlamingoParameterCounts.CrossAttentionBlock(block), Is.EqualTo(module.parameters().Sum(p => p.numel())));
        var tiny = ModelCatalog.Default.Describe("flamingo-tiny");
        Assert.That(tiny.ParametersByTopModule["vision_encoder"], Is.EqualTo(FlamingoParameterCounts.VisionEncoder(FlamingoFamily.Tiny.VisionEncoder)));
        Assert.That(tiny.ParametersByTopModule["perceiver"], Is.EqualTo(FlamingoParameterCounts.Perceiver(FlamingoFamily.Tiny.Perceiver)));
    }
}
