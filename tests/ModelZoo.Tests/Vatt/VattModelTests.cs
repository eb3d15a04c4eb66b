using ModelZoo.Models.Catalog;
using ModelZoo.Models.Vatt;
using ModelZoo.Tests.Support;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Vatt;

public class VattModelTests
{
    static Tensor Frames(int batch, int time = 4, int size = 16) => rand(new long[] { batch, time, size, size, 3 });

    static Tensor Words(int batch, int length, int vocab = 1000) => randint(1, vocab, new long[] { batch, length });

    [TestCase(VattBackbone.ModalitySpecific)]
    [TestCase(VattBackbone.ModalityAgnostic)]
    public void ShapesFollowTheConfig(VattBackbone backbone)
    {
        var config = backbone == VattBackbone.ModalitySpecific ? VattFamily.Tiny : VattFamily.MaTiny;
        using var model = new VattModel(config);
        model.eval();
        using var _ = no_grad();
        var padding = tensor(new long[,] { { 1, 1, 1, 1, 1 }, { 1, 1, 1, 0, 0 } });
        var output = model.forward(Frames(2), randn(2, 330), Words(2, 5), padding);
        int pooledVideo = backbone == VattBackbone.ModalitySpecific ? 64 : 64, pooledText = backbone == VattBackbone.ModalitySpecific ? 32 : 64;
        Assert.That(output.Video!.Pooled.shape, Is.EqualTo(new long[] { 2, pooledVideo }));
        Assert.That(output.Video.Tokens.shape, Is.EqualTo(new long[] { 2, 2 * 2 * 2, pooledVideo }), "4 frames / 2, 16 px / 8 twice");
        Assert.That(output.Video.Grid, Is.EqualTo(new long[] { 2, 2, 2 }));
        Assert.That(output.Audio!.Tokens.shape[1], Is.EqualTo(10), "330 samples: ten 32-sample patches, the rest dropped");
        Assert.That(output.Text!.Pooled.shape, Is.EqualTo(new long[] { 2, pooledText }));
        Assert.That(output.VideoToAudio!.shape, Is.EqualTo(new long[] { 2, 32 }));
        Assert.That(output.AudioToVideo!.shape, Is.EqualTo(new long[] { 2, 32 }));
        Assert.That(output.VideoToText!.shape, Is.EqualTo(new long[] { 2, 16 }));
        Assert.That(output.TextToVideo!.shape, Is.EqualTo(new long[] { 2, 16 }));
    }

    [Test]
    public void TheModalityAgnosticModelSharesOneTransformer()
    {
        using var ms = new VattModel(VattFamily.Tiny);
        using var ma = new VattModel(VattFamily.MaTiny);
        var msKeys = ms.state_dict().Keys.ToList();
        var maKeys = ma.state_dict().Keys.ToList();
        Assert.That(msKeys.Any(k => k.StartsWith("video_encoder.layers.1.")) && msKeys.Any(k => k.StartsWith("text_encoder.layers.1.")), Is.True);
        Assert.That(maKeys.Any(k => k.StartsWith("encoder.layers.1.")), Is.True);
        Assert.That(maKeys.Any(k => k.Contains("video_encoder") || k.Contains("text_encoder")), Is.False);
        Assert.That(maKeys, Does.Contain("video_tokenizer.pre_projection.weight").And.Contain("text_post_projection.dense.weight"));
    }

    [TestCase(0.5, 16, 8)]
    [TestCase(0.25, 8, 6)]
    [TestCase(0.5, 9, 5)]
    public void DropTokenKeepsExactlyTheRequestedShareInTrainingOnly(double rate, int tokens, int kept)
    {
        using var drop = new DropToken(rate);
        var x = arange(3 * tokens * 2, dtype: ScalarType.Float32).view(3, tokens, 2);
        drop.train();
        var (dropped, positions) = drop.Drop(x);
        Assert.That(dropped.shape, Is.EqualTo(new long[] { 3, kept, 2 }));
        Assert.That(drop.Kept(tokens), Is.EqualTo(kept));
        var keptPositions = positions!.data<long>().Select(p => (int)p).ToArray();
        Assert.That(keptPositions, Is.Ordered.Ascending);
        Assert.That(keptPositions.Distinct().Count(), Is.EqualTo(kept));
        for (int b = 0; b < 3; b++)
        {
            // Every kept row is an original row of the same sample, at the reported positions (one subset for the batch).
            var rows = dropped[b, TensorIndex.Colon, 0].data<float>().Select(v => ((int)v - b * tokens * 2) / 2).ToArray();
            Assert.That(rows, Is.EqualTo(keptPositions));
        }
        Assert.That(drop.forward(x).shape[1], Is.EqualTo(kept));
        drop.eval();
        Assert.That(drop.forward(x).equal(x).all().item<bool>(), Is.True);
        Assert.That(drop.Drop(x).Kept, Is.Null);
    }

    [Test]
    public void DropTokenSharesOneSubsetAcrossTheBatchAndRedrawsItEachCall()
    {
        using var drop = new DropToken(0.5);
        drop.train();
        manual_seed(1);
        var x = arange(64, dtype: ScalarType.Float32).view(1, 64, 1).expand(16, 64, 1).contiguous();
        var kept = drop.forward(x);
        var rows = Enumerable.Range(0, 16).Select(b => string.Join(",", kept[b].data<float>().ToArray())).Distinct().Count();
        Assert.That(rows, Is.EqualTo(1), "the reference tiles one shuffled order over the batch");
        var subsets = Enumerable.Range(0, 5).Select(_ => string.Join(",", drop.Drop(x).Kept!.data<long>().ToArray())).Distinct().Count();
        Assert.That(subsets, Is.GreaterThan(1), "a new subset each call");
    }

    [Test]
    public void TheModelDropsVideoAndAudioTokensOnlyInTraining()
    {
        using var model = new VattModel(VattFamily.Tiny);
        var frames = Frames(2, time: 8, size: 32); // 4 x 4 x 4 = 64 tokens
        var waveform = randn(2, 32 * 40);
        var words = Words(2, 6);
        model.train();
        var training = model.forward(frames, waveform, words);
        Assert.That(training.Video!.Tokens.shape[1], Is.EqualTo(32));
        Assert.That(training.Video.Kept!.shape, Is.EqualTo(new long[] { 32 }));
        Assert.That(training.Audio!.Tokens.shape[1], Is.EqualTo(20));
        Assert.That(training.Text!.Tokens.shape[1], Is.EqualTo(6), "text is never dropped");
        Assert.That(training.Text.Kept, Is.Null);
        model.eval();
        using var _ = no_grad();
        var evaluation = model.forward(frames, waveform, words);
        Assert.That(evaluation.Video!.Tokens.shape[1], Is.EqualTo(64));
        Assert.That(evaluation.Video.Kept, Is.Null);
        Assert.That(evaluation.Audio!.Tokens.shape[1], Is.EqualTo(40));
    }

    [Test]
    public void PaddedWordsDoNotChangeTheTextFeature()
    {
        using var model = new VattModel(VattFamily.Tiny);
        model.eval();
        using var _ = no_grad();
        var words = Words(1, 6);
        var padding = tensor(new long[,] { { 1, 1, 1, 1, 0, 0 } });
        var changed = words.clone();
        changed[0, 5].fill_(7);
        var a = model.EncodeText(words, padding).Pooled;
        var b = model.EncodeText(changed, padding).Pooled;
        Assert.That((a - b).abs().max().item<float>(), Is.LessThan(1e-6f));
        var unmasked = model.EncodeText(changed, ones_like(padding)).Pooled;
        Assert.That((a - unmasked).abs().max().item<float>(), Is.GreaterThan(1e-4f));
        // Without a mask, id 0 is padding (as the reference builds its mask from the ids).
        var zeroPadded = words.clone();
        zeroPadded[0, 4].fill_(0);
        zeroPadded[0, 5].fill_(0);
        var implicitMask = model.EncodeText(zeroPadded).Pooled;
        Assert.That((a - implicitMask).abs().max().item<float>(), Is.LessThan(1e-6f));
    }

    [Test]
    public void BadInputsGiveClearErrors()
    {
        using var model = new VattModel(VattFamily.Tiny);
        model.eval();
        using var _ = no_grad();
        var e = Assert.Throws<ArgumentException>(() => model.EncodeVideo(rand(new long[] { 1, 5, 16, 16, 3 })));
        Assert.That(e!.Message, Does.Contain("5 frames").And.Contain("multiple of 2"));
        e = Assert.Throws<ArgumentException>(() => model.EncodeVideo(rand(1, 3, 16, 16)));
        Assert.That(e!.Message, Does.Contain("[batch, time, height, width, 3]"));
        e = Assert.Throws<ArgumentException>(() => model.EncodeAudio(randn(1, 20)));
        Assert.That(e!.Message, Does.Contain("fewer than one patch of 32"));
        e = Assert.Throws<ArgumentException>(() => model.EncodeText(tensor(new long[,] { { 3, 1000 } })));
        Assert.That(e!.Message, Does.Contain("[0, 1000)"));
    }

    [Test]
    public void TheWordTableIsFrozenAndTakesAUserMatrix()
    {
        using var model = new VattModel(VattFamily.Tiny);
        Assert.That(model.TextTokenizer.WordTable.requires_grad, Is.False);
        var matrix = randn(1000, 16);
        model.LoadWordEmbeddings(matrix);
        Assert.That(model.TextTokenizer.WordTable.equal(matrix).all().item<bool>(), Is.True);
        var e = Assert.Throws<ArgumentException>(() => model.LoadWordEmbeddings(randn(1000, 300)));
        Assert.That(e!.Message, Does.Contain("[1000, 16]"));
        using var trainable = new VattModel(VattFamily.Tiny with { TxtEmbeddingTrainable = true });
        Assert.That(trainable.TextTokenizer.WordTable.requires_grad, Is.True);
    }

    /// <summary>Eight "concepts", each a fixed video, waveform and two captions; samples are the concept plus noise.</summary>
    sealed class AlignedData
    {
        readonly Tensor _frames, _waves, _captions;
        readonly Generator _generator = new(7);

        public AlignedData(int concepts)
        {
            _frames = rand(new long[] { concepts, 4, 16, 16, 3 }, generator: _generator);
            _waves = randn(new long[] { concepts, 320 }, generator: _generator);
            _captions = randint(1, 1000, new long[] { concepts, 2, 5 }, generator: _generator);
        }

        public (Tensor Frames, Tensor Waves, Tensor Captions) Batch()
        {
            var order = randperm(_frames.shape[0], generator: _generator);
            var frames = (_frames.index_select(0, order) + 0.05 * randn(_frames.shape, generator: _generator)).clamp(0, 1);
            var waves = _waves.index_select(0, order) + 0.05 * randn(_waves.shape, generator: _generator);
            return (frames, waves, _captions.index_select(0, order).view(-1, 5));
        }
    }

    [TestCase(VattBackbone.ModalitySpecific)]
    [TestCase(VattBackbone.ModalityAgnostic)]
    public void NceAndMilNceFallWhenATinyModelTrainsOnAlignedPairs(VattBackbone backbone)
    {
        manual_seed(3);
        using var model = new VattModel(backbone == VattBackbone.ModalitySpecific ? VattFamily.Tiny : VattFamily.MaTiny);
        model.train();
        var data = new AlignedData(8);
        using var optimizer = optim.Adam(model.parameters().Where(p => p.requires_grad), lr: 1e-3);
        var va = new List<double>();
        var vt = new List<double>();
        for (int step = 0; step < 40; step++)
        {
            using var scope = NewDisposeScope();
            var (frames, waves, captions) = data.Batch();
            optimizer.zero_grad();
            var loss = model.Loss(model.forward(frames, waves, captions), captionsPerClip: 2);
            loss.Total.backward();
            optimizer.step();
            va.Add(loss.VideoAudio!.item<float>());
            vt.Add(loss.VideoText!.item<float>());
        }
        double First(List<double> l) => l.Take(5).Average();
        double Last(List<double> l) => l.Skip(l.Count - 5).Average();
        TestContext.Out.WriteLine($"{backbone}: NCE {First(va):0.000} -> {Last(va):0.000}, MIL-NCE {First(vt):0.000} -> {Last(vt):0.000}");
        Assert.That(Last(va), Is.LessThan(First(va) - 0.3), "video-audio NCE");
        Assert.That(Last(vt), Is.LessThan(First(vt) - 0.3), "video-text MIL-NCE");
    }

    [Test]
    public void ASavedModelLoadsBackThroughTheCatalogWithIdenticalOutputs()
    {
        string directory = ModelZoo.Tests.Support.TestPaths.TempDirectory();
        try
        {
            manual_seed(21);
            using var model = new VattModel(VattFamily.MaTiny);
            model.train();
            model.forward(Frames(4), randn(4, 320), Words(4, 5)); // moves the BatchNorm running statistics off their defaults
            model.eval();
            string path = ModelZoo.Tests.Support.SafetensorsBuilder.Write(Path.Combine(directory, "vatt.safetensors"),
                model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));
            ModelZoo.Weights.LoadReport? report = null;
            using var loaded = ModelCatalog.Default.Create<VattModel>("vatt-ma-tiny", new ModelCreateOptions { WeightsPath = path, OnLoadReport = r => report = r });
            Assert.That(report!.IsComplete, Is.True, report.ToText());
            using var _ = no_grad();
            var frames = Frames(2);
            var waves = randn(2, 320);
            var words = Words(2, 5);
            var a = model.forward(frames, waves, words);
            var b = loaded.forward(frames, waves, words);
            Assert.That((a.VideoToText! - b.VideoToText!).abs().max().item<float>(), Is.EqualTo(0f));
            Assert.That((a.AudioToVideo! - b.AudioToVideo!).abs().max().item<float>(), Is.EqualTo(0f));
            Assert.That((a.TextToVideo! - b.TextToVideo!).abs().max().item<float>(), Is.EqualTo(0f));
        }
        finally { Directory.Delete(directory, true); }
    }

    [Test]
    public void RepeatedInferenceDoesNotGrowMemory()
    {
        using var model = new VattModel(VattFamily.Tiny);
        model.eval();
        var frames = Frames(2);
        var waves = randn(2, 320);
        var words = Words(2, 5);
        void Pass()
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            model.forward(frames, waves, words);
        }
        MemoryGrowth.AssertSteady(Pass);
    }
}
