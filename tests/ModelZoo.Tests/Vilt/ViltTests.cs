using ModelZoo.Models.Vilt;
using ModelZoo.Tests.OneStream;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Vilt;

public class ViltKeyMapTests
{
    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    internal static ViltConfig Small => new()
    {
        VocabSize = 50, MaxPositionEmbeddings = 12, HiddenSize = 16, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 24,
        ImageSize = 64, PatchSize = 16, InitializerRange = 0.3,
    };

    internal static ViltModel Random(ViltConfig config, ViltHeads heads, long seed)
    {
        manual_seed(seed);
        var model = new ViltModel(config, heads);
        using (no_grad())
            foreach (var (_, p) in model.named_parameters()) p.add_(randn_like(p) * 0.05); // no zero biases / unit gains to hide a wrong mapping
        model.eval();
        return model;
    }

    internal static ViltInputs SampleInputs(long seed)
    {
        var g = new Generator((ulong)seed);
        var texts = new[] { new long[] { 1, 7, 9, 3, 2 }, new long[] { 1, 4, 2 } };
        var images = new[] { randn(new long[] { 3, 64, 48 }, generator: g), randn(new long[] { 3, 40, 64 }, generator: g) };
        return ViltInputs.Collate(texts, images);
    }

    Dictionary<string, Tensor> StateDict(ViltModel model) => model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    static ViltModel Load(string path, ViltConfig config, ViltHeads heads, out LoadReport report)
    {
        var model = new ViltModel(config, heads);
        using var reader = Checkpoint.Open(path);
        report = ModelLoader.Load(model, reader, ViltFamily.KeyMapFor(reader, heads));
        model.eval();
        return model;
    }

    [Test]
    public void AHandWrittenHuggingFaceFileLoadsIntoTheSameModelAsTheOriginalLayout()
    {
        var heads = new ViltHeads { VqaAnswers = 5 };
        using var reference = Random(Small, heads, 1);
        var original = StateDict(reference);
        Assert.That(original.Keys, Does.Contain("transformer.blocks.1.attn.qkv.weight").And.Contain("vqa_classifier.3.weight").And.Contain("transformer.pos_embed"));

        // The Hugging Face conversion script's renaming, written out by hand: q, k, v are the thirds of qkv in that order.
        var hf = new Dictionary<string, Tensor>();
        int h = Small.HiddenSize;
        foreach (var (key, value) in original)
        {
            var parts = key.Split('.');
            if (key.StartsWith("transformer.blocks.") && parts[3] == "attn" && parts[4] == "qkv")
            {
                string n = parts[2], param = parts[5];
                foreach (var (name, index) in new[] { ("query", 0), ("key", 1), ("value", 2) })
                    hf[$"vilt.encoder.layer.{n}.attention.attention.{name}.{param}"] = value.narrow(0, index * h, h).clone();
                continue;
            }
            string renamed = key switch
            {
                _ when key.StartsWith("text_embeddings.") => "vilt.embeddings." + key,
                _ when key.StartsWith("token_type_embeddings.") => "vilt.embeddings." + key,
                "transformer.cls_token" => "vilt.embeddings.cls_token",
                "transformer.pos_embed" => "vilt.embeddings.position_embeddings",
                _ when key.StartsWith("transformer.patch_embed.proj.") => "vilt.embeddings.patch_embeddings.projection." + parts[^1],
                _ when key.StartsWith("transformer.norm.") => "vilt.layernorm." + parts[^1],
                _ when key.StartsWith("pooler.") => "vilt." + key,
                _ when key.StartsWith("vqa_classifier.") => "classifier." + key["vqa_classifier.".Length..],
                _ when key.StartsWith("transformer.blocks.") => $"vilt.encoder.layer.{parts[2]}." + (parts[3] + "." + parts[4]) switch
                {
                    "norm1.weight" or "norm1.bias" => "layernorm_before." + parts[^1],
                    "norm2.weight" or "norm2.bias" => "layernorm_after." + parts[^1],
                    "attn.proj" => "attention.output.dense." + parts[^1],
                    "mlp.fc1" => "intermediate.dense." + parts[^1],
                    "mlp.fc2" => "output.dense." + parts[^1],
                    var other => throw new InvalidOperationException(other),
                },
                _ => throw new InvalidOperationException(key),
            };
            hf[renamed] = value;
        }
        hf["vilt.embeddings.text_embeddings.position_ids"] = arange(Small.MaxPositionEmbeddings).unsqueeze(0);
        var originalPath = SafetensorsBuilder.Write(Path.Combine(_directory, "original.safetensors"), original);
        var hfPath = SafetensorsBuilder.Write(Path.Combine(_directory, "hf.safetensors"), hf);

        using var fromOriginal = Load(originalPath, Small, heads, out var originalReport);
        using var fromHf = Load(hfPath, Small, heads, out var hfReport);
        Assert.That(originalReport.IsComplete && hfReport.IsComplete, Is.True, originalReport.ToText() + "\n" + hfReport.ToText());
        Assert.That(hfReport.Ignored, Is.EqualTo(new[] { "vilt.embeddings.text_embeddings.position_ids" }));

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var inputs = SampleInputs(2);
        var expected = reference.VqaLogits(inputs);
        Assert.That(fromOriginal.VqaLogits(inputs).equal(expected).all().item<bool>(), Is.True, "original layout");
        Assert.That(fromHf.VqaLogits(inputs).equal(expected).all().item<bool>(), Is.True, "Hugging Face layout");
    }

    [Test]
    public void PresetsDeclareTheHuggingFaceLayoutForConvert()
    {
        foreach (var name in new[] { "vilt-b32-mlm", "vilt-b32-vqa", "vilt-b32-nlvr2", "vilt-b32-coco-retrieval", "vilt-tiny" })
        {
            var map = ModelZoo.Models.Catalog.ModelCatalog.Default.Get(name).Layouts!["huggingface"];
            Assert.That(map.IsReversible, Is.True, name);
            Assert.That(map.Reverse().MapName("transformer.blocks.3.norm1.weight"), Is.EqualTo("vilt.encoder.layer.3.layernorm_before.weight"), name);
        }
    }

    [Test]
    public void ConversionGoesBothWays()
    {
        foreach (var heads in new[] { new ViltHeads { Mlm = true }, new ViltHeads { Nlvr2 = true }, new ViltHeads { Rank = true } })
        {
            var config = heads.Nlvr2 ? Small with { ModalityTypeVocabSize = 3 } : Small;
            using var model = Random(config, heads, 3);
            var state = StateDict(model);
            var toHf = ViltFamily.HuggingFaceKeyMap(heads).Reverse().Apply(state);
            var hf = toHf.Tensors.ToDictionary(t => t.Name, t => t.Materialize());
            Assert.That(hf.Keys.Any(k => k.StartsWith("transformer.")), Is.False, string.Join(", ", hf.Keys));
            Assert.That(hf["vilt.encoder.layer.1.attention.attention.value.weight"].shape, Is.EqualTo(new long[] { 16, 16 }));
            TensorAssert.Close(hf["vilt.encoder.layer.1.attention.attention.key.bias"],
                state["transformer.blocks.1.attn.qkv.bias"].narrow(0, 16, 16), 0, "key bias = middle third of qkv");
            if (heads.Nlvr2) Assert.That(hf.Keys, Does.Contain("classifier.0.weight"));
            var path = SafetensorsBuilder.Write(Path.Combine(_directory, "hf.safetensors"), hf);

            using var reloaded = Load(path, config, heads, out var report);
            Assert.That(report.IsComplete, Is.True, report.ToText());
            var back = StateDict(reloaded);
            Assert.That(back.Keys, Is.EquivalentTo(state.Keys));
            foreach (var (key, value) in state)
                Assert.That(back[key].equal(value).all().item<bool>(), Is.True, key);
        }
    }

    [Test]
    public void WithoutQkvBiasOnlyTheProjectionsLoseTheirBias()
    {
        var config = Small with { QkvBias = false };
        using var model = Random(config, ViltHeads.None, 17);
        var keys = model.state_dict().Keys.ToList();
        Assert.That(keys, Does.Contain("transformer.blocks.0.attn.qkv.weight").And.Contain("transformer.blocks.0.attn.proj.bias").And.Contain("transformer.blocks.0.mlp.fc1.bias"));
        Assert.That(keys, Has.None.EqualTo("transformer.blocks.0.attn.qkv.bias"));
        var hf = ViltFamily.HuggingFaceKeyMap(ViltHeads.None).Reverse().Apply(StateDict(model)).Tensors.Select(t => t.Name).ToList();
        Assert.That(hf, Does.Contain("vilt.encoder.layer.0.attention.attention.query.weight").And.Contain("vilt.encoder.layer.0.attention.output.dense.bias"));
        Assert.That(hf, Has.None.EqualTo("vilt.encoder.layer.0.attention.attention.query.bias"));
    }

    [Test]
    public void MlmDecoderBiasIsReadFromEitherName()
    {
        var heads = new ViltHeads { Mlm = true };
        using var model = Random(Small, heads, 4);
        var hf = ViltFamily.HuggingFaceKeyMap(heads).Reverse().Apply(StateDict(model)).Tensors.ToDictionary(t => t.Name, t => t.Materialize());
        var bias = hf["mlm_score.bias"];

        hf["mlm_score.decoder.bias"] = bias.clone(); // pytorch_model.bin holds the tied bias under both names
        using (var both = Load(SafetensorsBuilder.Write(Path.Combine(_directory, "both.safetensors"), hf), Small, heads, out var report))
            Assert.That(report.IsComplete, Is.True, report.ToText());

        hf.Remove("mlm_score.bias");               // a file that kept only the decoder's name
        using var only = Load(SafetensorsBuilder.Write(Path.Combine(_directory, "decoder.safetensors"), hf), Small, heads, out var onlyReport);
        Assert.That(onlyReport.IsComplete, Is.True, onlyReport.ToText());
        Assert.That(only.state_dict()["mlm_score.bias"].equal(bias).all().item<bool>(), Is.True);
    }

    [Test]
    public void TheOriginalPretrainingCheckpointLoadsIntoTheMlmModelWithoutItsItmHead()
    {
        using var pretrained = Random(Small, new ViltHeads { Mlm = true, Itm = true }, 5);
        var state = StateDict(pretrained);
        state["text_embeddings.position_ids"] = arange(Small.MaxPositionEmbeddings).unsqueeze(0);
        var path = SafetensorsBuilder.Write(Path.Combine(_directory, "mlm_itm.safetensors"), state.ToDictionary(kv => "module." + kv.Key, kv => kv.Value));
        using var mlm = Load(path, Small, new ViltHeads { Mlm = true }, out var report);
        Assert.That(report.IsComplete, Is.True, report.ToText());
        Assert.That(report.Ignored, Does.Contain("module.itm_score.fc.weight").And.Contain("module.text_embeddings.position_ids"));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var inputs = SampleInputs(6);
        Assert.That(mlm.MlmLogits(inputs).equal(pretrained.MlmLogits(inputs)).all().item<bool>(), Is.True);
    }
}

public class ViltModelTests
{
    static ViltConfig Small => ViltKeyMapTests.Small;

    [Test]
    public void AFullSizeImageGetsThePretrainingPositionGridAsItIs()
    {
        using var model = ViltKeyMapTests.Random(Small, ViltHeads.None, 7);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var pixels = randn(1, 3, 64, 64);
        var embedded = model.Transformer.Embed(pixels, null, -1);
        var state = model.state_dict();
        var patches = nn.functional.conv2d(pixels, state["transformer.patch_embed.proj.weight"], state["transformer.patch_embed.proj.bias"], strides: new long[] { 16, 16 });
        var expected = cat(new[]
        {
            state["transformer.cls_token"] + state["transformer.pos_embed"].narrow(1, 0, 1),
            patches.flatten(2).transpose(1, 2) + state["transformer.pos_embed"].narrow(1, 1, 16),
        }, 1);
        TensorAssert.Close(embedded.Embeddings, expected, 1e-5, "embeddings");
        Assert.That(embedded.Mask.sum().item<long>(), Is.EqualTo(17));
        Assert.That(embedded.PatchIndex[0, 5].data<long>().ToArray(), Is.EqualTo(new long[] { 1, 1 }), "patch 5 of a 4x4 grid is row 1, column 1");
    }

    [Test]
    public void ASmallerImageGetsTheGridResizedWithAlignedCorners()
    {
        // A 32x32 image is a 2x2 patch grid; resizing the 4x4 grid with aligned corners picks its four corners.
        using var model = ViltKeyMapTests.Random(Small, ViltHeads.None, 8);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var pixels = randn(1, 3, 32, 32);
        var embedded = model.Transformer.Embed(pixels, null, -1);
        var state = model.state_dict();
        var grid = state["transformer.pos_embed"].narrow(1, 1, 16).reshape(4, 4, 16);
        var patches = nn.functional.conv2d(pixels, state["transformer.patch_embed.proj.weight"], state["transformer.patch_embed.proj.bias"], strides: new long[] { 16, 16 })
            .flatten(2).transpose(1, 2)[0];
        var corners = new[] { (0, 0), (0, 3), (3, 0), (3, 3) };
        for (int p = 0; p < 4; p++)
            TensorAssert.Close(embedded.Embeddings[0, p + 1], patches[p] + grid[corners[p].Item1, corners[p].Item2], 1e-5, $"patch {p}");
    }

    [Test]
    public void PaddedImagesKeepTheirRealPatchesAndMaskTheRest()
    {
        using var model = ViltKeyMapTests.Random(Small, ViltHeads.None, 9);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var inputs = ViltInputs.Collate(new[] { new long[] { 1 }, new long[] { 1 } }, new[] { randn(3, 64, 48), randn(3, 32, 64) });
        var embedded = model.Transformer.Embed(inputs.PixelValues, inputs.PixelMask, -1);
        // 4x3 = 12 and 2x4 = 8 real patches; both keep 12 (+ class token).
        Assert.That(embedded.Mask.shape, Is.EqualTo(new long[] { 2, 13 }));
        Assert.That(embedded.Mask.sum(1).data<long>().ToArray(), Is.EqualTo(new long[] { 13, 9 }));
        var rows = embedded.PatchIndex[1].narrow(0, 0, 8);
        Assert.That(rows.select(1, 0).max().item<long>(), Is.EqualTo(1), "the second image's real patches lie in rows 0-1");
        Assert.That(ViltInputs.PixelMaskFromZeroPadding(inputs.PixelValues).equal(inputs.PixelMask!).all().item<bool>(), Is.True,
            "the original's mask (non-zero pixels) agrees with the collated mask");
    }

    [Test]
    public void MaxImageLengthSamplesInTrainingAndKeepsTheFirstPatchesInInference()
    {
        using var model = ViltKeyMapTests.Random(Small, ViltHeads.None, 10);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var pixels = randn(1, 3, 64, 64);
        var a = model.Transformer.Embed(pixels, null, 5, sample: true, new Generator(42));
        var b = model.Transformer.Embed(pixels, null, 5, sample: true, new Generator(42));
        Assert.That(a.Mask.shape, Is.EqualTo(new long[] { 1, 6 }));
        Assert.That(a.Mask.sum().item<long>(), Is.EqualTo(6), "only real patches are kept");
        var flat = (a.PatchIndex.select(2, 0) * 4 + a.PatchIndex.select(2, 1)).data<long>().ToArray();
        Assert.That(flat.Distinct().Count(), Is.EqualTo(5));
        Assert.That(a.Embeddings.equal(b.Embeddings).all().item<bool>(), Is.True, "same generator, same patches");
        // Inference keeps the first five in raster order.
        var first = model.Transformer.Embed(pixels, null, 5);
        Assert.That((first.PatchIndex.select(2, 0) * 4 + first.PatchIndex.select(2, 1)).data<long>().ToArray(), Is.EqualTo(new long[] { 0, 1, 2, 3, 4 }));
        // Fewer real patches than the cap: every one is kept, none drawn at random.
        var all = model.Transformer.Embed(pixels, null, 100, sample: true);
        Assert.That(all.Mask.shape[1], Is.EqualTo(17));
    }

    [Test]
    public void BatchedItemsMatchEachItemRunAlone()
    {
        using var model = ViltKeyMapTests.Random(Small, new ViltHeads { VqaAnswers = 4 }, 11);
        var g = new Generator(12);
        var texts = new[] { new long[] { 1, 5, 6, 7, 2 }, new long[] { 1, 8, 2 }, new long[] { 1, 9, 9, 9, 9, 9, 2 } };
        var images = new[] { randn(new long[] { 3, 64, 64 }, generator: g), randn(new long[] { 3, 32, 48 }, generator: g), randn(new long[] { 3, 48, 16 }, generator: g) };
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var batch = ViltInputs.Collate(texts, images);
        var batched = model.forward(batch);
        var logits = model.VqaLogits(batch);
        for (int i = 0; i < texts.Length; i++)
        {
            var alone = ViltInputs.Collate(new[] { texts[i] }, new[] { images[i] });
            var single = model.forward(alone);
            long realPatches = single.ImageMasks.shape[1];
            TensorAssert.Close(batched.TextFeats[i].narrow(0, 0, texts[i].Length), single.TextFeats[0], 1e-5, $"item {i} text");
            TensorAssert.Close(batched.ImageFeats[i].narrow(0, 0, realPatches), single.ImageFeats[0], 1e-5, $"item {i} image");
            TensorAssert.Close(batched.ClsFeats[i], single.ClsFeats[0], 1e-5, $"item {i} pooled");
            TensorAssert.Close(logits[i], model.VqaLogits(alone)[0], 1e-5, $"item {i} logits");
        }
        // Control: with every pixel marked real, the padded image's answer changes.
        var unmasked = model.VqaLogits(batch with { PixelMask = null });
        TensorAssert.Differ(unmasked[1], logits[1], 1e-4, "pixel mask ignored");
    }

    [Test]
    public void Nlvr2ClassifiesTheTwoPooledOutputsWithImageTypesOneAndTwo()
    {
        var config = Small with { ModalityTypeVocabSize = 3 };
        using var model = ViltKeyMapTests.Random(config, new ViltHeads { Nlvr2 = true }, 13);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var texts = new[] { new long[] { 1, 5, 2 } };
        var left = ViltInputs.Collate(texts, new[] { randn(3, 32, 32) });
        var right = ViltInputs.Collate(texts, new[] { randn(3, 48, 32) });
        var logits = model.Nlvr2Logits(left, right);
        Assert.That(logits.shape, Is.EqualTo(new long[] { 1, 2 }));
        var state = model.state_dict();
        var pooled = cat(new[] { model.forward(left, 1).ClsFeats, model.forward(right, 2).ClsFeats }, -1);
        var hidden = nn.functional.linear(pooled, state["nlvr2_classifier.0.weight"], state["nlvr2_classifier.0.bias"]);
        hidden = nn.functional.gelu(nn.functional.layer_norm(hidden, new long[] { 32 }, state["nlvr2_classifier.1.weight"], state["nlvr2_classifier.1.bias"]));
        var expected = nn.functional.linear(hidden, state["nlvr2_classifier.3.weight"], state["nlvr2_classifier.3.bias"]);
        TensorAssert.Close(logits, expected, 1e-5, "nlvr2 logits");
        TensorAssert.Differ(model.forward(right, 1).ClsFeats, model.forward(right, 2).ClsFeats, 1e-4, "image type 1 vs 2");
        Assert.Throws<ArgumentException>(() => ViltKeyMapTests.Random(Small, new ViltHeads { Nlvr2 = true }, 1));
    }

    [Test]
    public void RetrievalMatchingAndMlmHeadsHaveTheirShapes()
    {
        using var model = ViltKeyMapTests.Random(Small, new ViltHeads { Mlm = true, Itm = true, Rank = true }, 14);
        model.InitializeRankFromItm();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var inputs = ViltKeyMapTests.SampleInputs(15);
        Assert.That(model.MlmLogits(inputs).shape, Is.EqualTo(new long[] { 2, 5, 50 }));
        var itm = model.ItmLogits(inputs);
        Assert.That(itm.shape, Is.EqualTo(new long[] { 2, 2 }));
        TensorAssert.Close(model.RankScores(inputs), itm.select(1, 1), 1e-6, "rank_output initialised from itm_score");
        var e = Assert.Throws<InvalidOperationException>(() => model.VqaLogits(inputs));
        Assert.That(e!.Message, Does.Contain("vqa_classifier"));
    }

    [Test]
    public void BadInputsAreClearErrors()
    {
        using var model = ViltKeyMapTests.Random(Small, ViltHeads.None, 16);
        using var scope = NewDisposeScope();
        var longText = ViltInputs.Collate(new[] { Enumerable.Range(1, 13).Select(i => (long)i).ToArray() }, new[] { randn(3, 32, 32) });
        Assert.That(Assert.Throws<ArgumentException>(() => model.forward(longText))!.Message, Does.Contain("max_position_embeddings 12"));
        var gray = new ViltInputs(tensor(new long[,] { { 1, 2 } }), null, randn(1, 1, 32, 32));
        Assert.That(Assert.Throws<ArgumentException>(() => model.forward(gray))!.Message, Does.Contain("[batch, 3, height, width]"));
        var empty = new ViltInputs(tensor(new long[,] { { 1, 2 } }), null, randn(1, 3, 32, 32), zeros(1, 32, 32, dtype: ScalarType.Int64));
        Assert.That(Assert.Throws<ArgumentException>(() => model.forward(empty))!.Message, Does.Contain("no real patch"));
    }
}

public class ViltHuggingFaceParityTests
{
    [Test]
    public void HuggingFaceViltForQuestionAnsweringIsReproduced()
    {
        // transformers' own ViltForQuestionAnswering: HF key layout, interpolated positions, pixel masks (one padded image), VQA head.
        var result = ModelZoo.Models.Parity.ParityCheck.Check(Path.Combine(TestPaths.VendoredData, "hf-fixtures", "hf-vilt"));
        foreach (var output in result.Outputs)
            Assert.That(output.Pass, Is.True, $"{output.Name}: max abs error {output.MaxAbsError:E2} {output.Error}");
        Assert.That(result.Outputs.Select(o => o.Name), Does.Contain("vqa_logits").And.Contain("hidden_states.0").And.Contain("last_hidden_state"));
    }
}

public class ViltConvertCommandTests
{
    [Test]
    public void ModelzooConvertWritesTheHuggingFaceLayoutAndBack()
    {
        var directory = TestPaths.TempDirectory();
        try
        {
            manual_seed(31);
            using var model = ModelZoo.Models.Catalog.ModelCatalog.Default.Create<ViltModel>("vilt-tiny");
            var original = SafetensorsBuilder.Write(Path.Combine(directory, "original.safetensors"), model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));

            var (code, _, error) = CliRunner.Run("convert", original, "--model", "vilt-tiny", "--layout", "huggingface", "--out", Path.Combine(directory, "hf.safetensors"));
            Assert.That(code, Is.EqualTo(0), error);
            string hfPath = Path.Combine(directory, "hf.safetensors");
            using (var reader = Checkpoint.Open(hfPath))
            {
                var names = reader.Entries.Select(e => e.Name).ToList();
                Assert.That(names, Does.Contain("vilt.encoder.layer.1.attention.attention.value.bias").And.Contain("classifier.3.weight")
                    .And.Contain("vilt.embeddings.position_embeddings"));
                Assert.That(names.Where(n => n.StartsWith("transformer.")), Is.Empty);
            }

            (code, _, error) = CliRunner.Run("convert", hfPath, "--model", "vilt-tiny", "--out", Path.Combine(directory, "back.safetensors"));
            Assert.That(code, Is.EqualTo(0), error);
            using var back = Checkpoint.Open(Path.Combine(directory, "back.safetensors"));
            var state = model.state_dict();
            Assert.That(back.Entries.Select(e => e.Name), Is.EquivalentTo(state.Keys));
            foreach (var entry in back.Entries)
            {
                using var value = back.Read(entry.Name);
                Assert.That(value.equal(state[entry.Name]).all().item<bool>(), Is.True, entry.Name);
            }
        }
        finally
        {
            Directory.Delete(directory, true);
        }
    }

    /// <summary>
    /// The original release files are PyTorch Lightning checkpoints (vilt_200k_mlm_itm.ckpt, vilt_vqa.ckpt): a dict with
    /// epoch, global_step, optimizer_states and the module's state_dict in the original layout (qkv fused).
    /// </summary>
    static byte[] LightningCheckpoint(IReadOnlyDictionary<string, Tensor> state)
    {
        var w = new ModelZoo.Tests.Weights.PickleWriter().Proto(2).EmptyDict().Mark();
        w.Str("epoch").Int(9).Str("global_step").Int(100_000).Str("pytorch-lightning_version").Str("1.1.4");
        w.Str("state_dict").OrderedDict().Mark();
        var storages = new Dictionary<string, byte[]>();
        foreach (var (name, tensor) in state)
        {
            string key = storages.Count.ToString();
            storages[key] = tensor.contiguous().bytes.ToArray();
            var shape = tensor.shape;
            var strides = new long[shape.Length];
            for (long i = shape.Length - 1, step = 1; i >= 0; step *= shape[i], i--) strides[i] = step;
            w.Str(name).Tensor(key, ModelZoo.Tests.Weights.TorchSaveBuilder.StorageType(tensor.dtype), tensor.numel(), 0, shape, strides);
        }
        w.SetItems();
        w.Str("optimizer_states").EmptyList().Str("lr_schedulers").EmptyList();
        return ModelZoo.Tests.Weights.TorchSaveBuilder.Zip(w.SetItems().Stop().ToArray(), storages, "vilt_vqa");
    }

    [Test]
    public void TheOriginalLightningCheckpointLoadsAndConvertsToTheHuggingFaceLayout()
    {
        var directory = TestPaths.TempDirectory();
        try { LightningRoundTrip(directory); }
        finally { Directory.Delete(directory, true); }
    }

    static void LightningRoundTrip(string directory)
    {
        manual_seed(41);
        using var model = ModelZoo.Models.Catalog.ModelCatalog.Default.Create<ViltModel>("vilt-tiny");
        using (no_grad())
            foreach (var (_, p) in model.named_parameters()) p.add_(randn_like(p) * 0.05);
        var state = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.That(state.Keys, Does.Contain("transformer.blocks.0.attn.qkv.weight"), "the original layout");
        string ckpt = Path.Combine(directory, "vilt_vqa.ckpt");
        File.WriteAllBytes(ckpt, LightningCheckpoint(state));

        using var loaded = ModelZoo.Models.Catalog.ModelCatalog.Default.Create<ViltModel>("vilt-tiny", new() { WeightsPath = ckpt });
        var inputs = ViltInputs.Collate(new[] { new long[] { 101, 2054, 3609, 102 } }, new[] { randn(new long[] { 3, 64, 96 }, generator: new Generator(5)) });
        using (no_grad())
            TensorAssert.Close(loaded.VqaLogits(inputs), model.VqaLogits(inputs), 0, "the Lightning file gives the same model");

        string hf = Path.Combine(directory, "hf.safetensors");
        var (code, _, error) = CliRunner.Run("convert", ckpt, "--model", "vilt-tiny", "--layout", "huggingface", "--out", hf);
        Assert.That(code, Is.EqualTo(0), error);
        using var fromHf = ModelZoo.Models.Catalog.ModelCatalog.Default.Create<ViltModel>("vilt-tiny", new() { WeightsPath = hf });
        using (no_grad())
            TensorAssert.Close(fromHf.VqaLogits(inputs), model.VqaLogits(inputs), 0, "Lightning .ckpt to Hugging Face safetensors keeps every weight");
    }
}
