using System.Diagnostics;
using ModelZoo.Evaluation.Data;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Vatt;
using ModelZoo.Processing;
using ModelZoo.Tests.Support;
using ModelZoo.Training;
using ModelZoo.Training.Tasks;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Pretraining;

public class VattPretrainingTests
{
    string _dir = "";
    int _threads;

    [SetUp]
    public void SetUp()
    {
        _dir = TestPaths.TempDirectory();
        _threads = get_num_threads();
        set_num_threads(1);
    }

    [TearDown]
    public void TearDown()
    {
        set_num_threads(_threads);
        Directory.Delete(_dir, true);
    }

    static VattModel Create(string preset, long seed) => new VattTaskModels().CreateModel(new TaskModelRequest
    {
        Model = preset, Preset = ModelCatalog.Default.Get(preset), Seed = seed,
    });

    [TestCase("vatt-tiny")]
    [TestCase("vatt-ma-tiny")]
    public void NceAndMilNceFallOnSyntheticAlignedClips(string preset)
    {
        string train = SyntheticData.Clips(_dir, "train", concepts: 8, clipsPerConcept: 2, seed: 1);
        string val = SyntheticData.Clips(_dir, "val", concepts: 8, clipsPerConcept: 1, seed: 1);
        var clips = VattManifest.Read(train);
        using var model = Create(preset, seed: 2);
        var vocabulary = VattWordVocabulary.Build(clips.SelectMany(c => c.Captions), model.Config.TxtVocabSize);
        var task = new VattContrastivePretraining(model, vocabulary, clips, VattManifest.Read(val));
        Assert.That(task.Shape, Is.EqualTo(new VattClipShape { Frames = 8, Height = 32, Width = 32, AudioSamples = 2048 }), "the preset's own input size");
        var result = new Trainer(new TrainerOptions
        {
            LearningRate = 1e-3, BatchSize = 8, MaxSteps = 40, WarmupSteps = 2, Decay = DecayKind.Constant, Seed = 3, Progress = false, EvalEvery = 20,
        }).Fit(task);

        Assert.That(task.Terms.Count, Is.EqualTo(40));
        double First(Func<(int, double?, double?), double?> term) => task.Terms.Take(5).Average(t => term(t)!.Value);
        double Last(Func<(int, double?, double?), double?> term) => task.Terms.TakeLast(5).Average(t => term(t)!.Value);
        double nce0 = First(t => t.Item2), nce1 = Last(t => t.Item2), mil0 = First(t => t.Item3), mil1 = Last(t => t.Item3);
        TestContext.Out.WriteLine($"{preset}: NCE {nce0:0.000} -> {nce1:0.000}, MIL-NCE {mil0:0.000} -> {mil1:0.000}");
        Assert.That(nce1, Is.LessThan(nce0 - 0.3), "video-audio NCE");
        Assert.That(mil1, Is.LessThan(mil0 - 0.3), "video-text MIL-NCE");
        for (int i = 0; i < 40; i++)
            Assert.That(result.Losses[i], Is.EqualTo((task.Terms[i].VideoAudio!.Value + task.Terms[i].VideoText!.Value) / 2).Within(1e-5), "the loss averages the two terms");

        Assert.That(result.Evaluations.Select(e => e.Step), Is.EqualTo(new[] { 20, 40 }));
        var metrics = result.Evaluations[^1].Metrics;
        foreach (var key in new[] { "video_to_audio_r1", "audio_to_video_r5", "video_to_text_r1", "text_to_video_r10", "val_nce", "val_mil_nce", "r_mean" })
            Assert.That(metrics.ContainsKey(key), key);
        Assert.That(metrics["r_mean"], Is.InRange(0, 1));
        Assert.That(metrics["val_nce"], Is.GreaterThan(0).And.LessThan(20));
    }

    [Test]
    public void AResumedRunReproducesTheUninterruptedLossesBitForBit()
    {
        // DropToken and dropout (torch generator), caption subsets (2 of 3 for the first concept: SeededRandom), a lone
        // last clip per epoch (7 clips in batches of 3) and reshuffling.
        var clips = VattManifest.Read(SyntheticData.Clips(_dir, "train", concepts: 7, clipsPerConcept: 1, seed: 6));
        var options = new TrainerOptions
        {
            LearningRate = 1e-3, BatchSize = 3, MaxSteps = 8, WarmupSteps = 2, Seed = 8, Progress = false, CheckpointEvery = 3, KeepCheckpoints = 5,
        };
        VattContrastivePretraining Task(VattModel model) =>
            new(model, VattWordVocabulary.Build(clips.SelectMany(c => c.Captions), 1000), clips, clips.Take(3).ToList(), new VattPretrainingOptions { MaxCaptionsPerClip = 2 });
        string full = Path.Combine(_dir, "full");
        List<double> uninterrupted;
        using (var model = Create("vatt-ma-tiny", seed: 1))
            uninterrupted = new Trainer(options with { OutputDirectory = full }).Fit(Task(model)).Losses.ToList();
        using var fresh = Create("vatt-ma-tiny", seed: 2);
        var resumed = new Trainer(options with { OutputDirectory = Path.Combine(_dir, "resumed") }).Fit(Task(fresh), Path.Combine(full, "checkpoints", "step-00000003"));
        for (int i = 0; i < 8; i++)
            Assert.That(BitConverter.DoubleToInt64Bits(resumed.Losses[i]), Is.EqualTo(BitConverter.DoubleToInt64Bits(uninterrupted[i])), $"loss of step {i + 1}");
    }

    [Test]
    public void OneModalityManifestsTrainTheirTermAlone()
    {
        string textOnly = SyntheticData.Clips(_dir, "text", concepts: 3, clipsPerConcept: 1, seed: 4, audio: false);
        string audioOnly = SyntheticData.Clips(_dir, "audio", concepts: 3, clipsPerConcept: 1, seed: 4, captions: false);
        using var model = Create("vatt-tiny", seed: 5);
        var options = new TrainerOptions { LearningRate = 1e-3, BatchSize = 3, MaxSteps = 1, Progress = false };

        var text = VattManifest.Read(textOnly);
        var textTask = new VattContrastivePretraining(model, VattWordVocabulary.Build(text.SelectMany(c => c.Captions), 1000), text, text);
        new Trainer(options).Fit(textTask);
        Assert.That(textTask.Terms[0].VideoAudio, Is.Null);
        Assert.That(textTask.Terms[0].VideoText, Is.Not.Null);

        var audio = VattManifest.Read(audioOnly);
        var audioTask = new VattContrastivePretraining(model, VattWordVocabulary.Build(Array.Empty<string>(), 1000), audio, audio);
        var result = new Trainer(options).Fit(audioTask);
        Assert.That(audioTask.Terms[0].VideoText, Is.Null);
        Assert.That(result.Evaluations[^1].Metrics.Keys, Does.Contain("video_to_audio_r1").And.Not.Contain("video_to_text_r1"));

        var e = Assert.Throws<InvalidDataException>(() => new VattContrastivePretraining(model, textTask.Vocabulary, text, audio));
        Assert.That(e!.Message, Does.Contain("same modalities"));
    }

    [Test]
    public void ManifestErrorsNameTheLine()
    {
        string path = Path.Combine(_dir, "bad.jsonl");
        void Expect(string content, params string[] parts)
        {
            File.WriteAllText(path, content);
            var e = Assert.Throws<InvalidDataException>(() => VattManifest.Read(path));
            foreach (var part in parts) Assert.That(e!.Message, Does.Contain(part));
        }
        Expect("{\"frames\": \"a.safetensors\", \"audio\": \"a.wav\"}\n{oops\n", "bad.jsonl:2", "JSON");
        Expect("{\"frames\": \"a.safetensors\", \"video\": \"a.mp4\", \"audio\": \"a.wav\"}\n", "bad.jsonl:1", "exactly one");
        Expect("{\"frames\": \"a.safetensors\", \"audio\": \"a.wav\"}\n\n{\"frames\": \"b.safetensors\", \"captions\": [\"x\"]}\n", "bad.jsonl:3", "same modalities");
        Expect("{\"frames\": \"a.safetensors\", \"audios\": \"a.wav\"}\n", "bad.jsonl:1", "unknown key \"audios\"");
        Expect("{\"frames\": \"a.safetensors\"}\n", "neither \"audio\" nor \"captions\"");
        Expect("{\"frames\": \"a.safetensors\", \"captions\": [\"x\", 3]}\n", "bad.jsonl:1", "captions[1]");
        Expect("\n\n", "no clips");

        File.WriteAllText(path, "{\"id\": 7, \"frames\": \"clips/a.safetensors\", \"audio\": \"a.wav\", \"captions\": \"one caption\", \"start\": 1.5}\n");
        var clip = VattManifest.Read(path).Single();
        Assert.That(clip.Frames, Is.EqualTo(Path.Combine(_dir, "clips", "a.safetensors")), "paths are relative to the manifest");
        Assert.That(clip.Id, Is.EqualTo("7"));
        Assert.That(clip.Captions, Is.EqualTo(new[] { "one caption" }));
        Assert.That(clip.Start, Is.EqualTo(1.5));

        // A missing frames file is named when the clip is read.
        var reader = new VattClipReader(new VattClipShape { Frames = 2, Height = 8, Width = 8, AudioSamples = 32 });
        var missing = Assert.Throws<FileNotFoundException>(() => reader.Frames(clip));
        Assert.That(missing!.Message, Does.Contain("bad.jsonl:1").And.Contain("a.safetensors"));
    }

    [Test]
    public void TheReaderBringsEveryClipToTheShape()
    {
        var shape = new VattClipShape { Frames = 6, Height = 8, Width = 12, SampleRate = 1000, AudioSamples = 500 };
        var reader = new VattClipReader(shape);
        // 4 frames of 16 x 16, uint8: looped in time (0, 1, 2, 3, 0, 1), scaled to cover 8 x 12 and centre-cropped.
        var frames = arange(4 * 16 * 16 * 3).remainder(256).to(ScalarType.Byte).view(4, 16, 16, 3);
        string framesPath = SafetensorsBuilder.Write(Path.Combine(_dir, "f.safetensors"), new Dictionary<string, Tensor> { ["frames"] = frames });
        // 0.6 s of stereo at 2 kHz: mono, resampled to 1 kHz (600 samples), started at 0.2 s (400 left), zero-padded to 500.
        var left = linspace(-0.5, 0.5, 1200);
        WavFile.Write(Path.Combine(_dir, "a.wav"), stack(new[] { left, -left * 0.5 }), 2000, float32: true);
        var clip = new VattClipEntry("test", null, null, framesPath, Path.Combine(_dir, "a.wav"), Array.Empty<string>(), 0.2);

        var read = reader.Frames(clip);
        Assert.That(read.shape, Is.EqualTo(new long[] { 6, 8, 12, 3 }));
        Assert.That(read.dtype, Is.EqualTo(ScalarType.Float32));
        Assert.That((read[4] - read[0]).abs().max().item<float>(), Is.EqualTo(0f), "frame 4 is frame 0 again");
        var expected = nn.functional.interpolate((frames.to(ScalarType.Float32) / 255).permute(0, 3, 1, 2), new long[] { 12, 12 }, mode: InterpolationMode.Bilinear, align_corners: false)
            .narrow(2, 2, 8).permute(0, 2, 3, 1);
        Assert.That((read.narrow(0, 0, 4) - expected).abs().max().item<float>(), Is.LessThan(1e-6f));

        var audio = reader.Audio(clip);
        Assert.That(audio.shape, Is.EqualTo(new long[] { 500 }));
        Assert.That(audio.narrow(0, 400, 100).abs().max().item<float>(), Is.EqualTo(0f), "padded with silence");
        Assert.That(audio[0].item<float>(), Is.EqualTo(0.25f * (-0.5f + 400.5f / 1199f)).Within(0.01f), "mono of L and -L/2 from 0.2 s");

        // The same folder through a video file, when ffmpeg is installed; a clear error otherwise.
        string video = Path.Combine(_dir, "v.mkv");
        var videoClip = clip with { Frames = null, Video = video, Start = 0 };
        if (!VideoFrames.IsFfmpegAvailable())
        {
            File.WriteAllBytes(video, new byte[16]);
            var e = Assert.Throws<NotSupportedException>(() => reader.Frames(videoClip));
            Assert.That(e!.Message, Does.Contain("ffmpeg"));
            return;
        }
        var make = Process.Start(new ProcessStartInfo("ffmpeg")
        {
            ArgumentList = { "-nostdin", "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=40x20:r=10:d=0.4", "-c:v", "ffv1", video },
            RedirectStandardError = true,
        })!;
        make.WaitForExit();
        Assert.That(make.ExitCode, Is.EqualTo(0), make.StandardError.ReadToEnd());
        var decoded = reader.Frames(videoClip);
        Assert.That(decoded.shape, Is.EqualTo(new long[] { 6, 8, 12, 3 }), "4 frames at 10 fps, looped to 6");
        Assert.That(decoded[5, 4, 6, 0].item<float>(), Is.GreaterThan(0.8f));
        var broken = Assert.Throws<NotSupportedException>(() => new VattClipReader(shape) { Ffmpeg = "/nonexistent/ffmpeg" }.Frames(videoClip));
        Assert.That(broken!.Message, Does.Contain(video));
    }

    [Test]
    public void TheWordListKeepsPaddingAndUnknownIdsAndRoundTrips()
    {
        var vocabulary = VattWordVocabulary.Build(new[] { "A dog barks.", "the dog, the cat", "Café's ok" }, maxSize: 6);
        Assert.That(vocabulary.Words, Is.EqualTo(new[] { "[PAD]", "[UNK]", "dog", "the", "a", "barks" }), "most frequent first, ties in ordinal order, capped");
        Assert.That(vocabulary.Encode("The dog meows, the END", maxWords: 4), Is.EqualTo(new[] { 3, 2, 1, 3 }));
        string path = Path.Combine(_dir, VattWordVocabulary.FileName);
        vocabulary.Save(path);
        Assert.That(VattWordVocabulary.Load(path, 6).Words, Is.EqualTo(vocabulary.Words));
        var e = Assert.Throws<InvalidDataException>(() => VattWordVocabulary.Load(path, 5));
        Assert.That(e!.Message, Does.Contain("5 rows"));
        File.WriteAllText(path, "dog\ncat\n");
        Assert.Throws<InvalidDataException>(() => VattWordVocabulary.Load(path, 100));
    }
}
