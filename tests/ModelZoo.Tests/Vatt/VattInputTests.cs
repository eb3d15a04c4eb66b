using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using ModelZoo.Models.Vatt;
using ModelZoo.Processing;
using ModelZoo.Tests.Support;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Vatt;

public class VattInputTests
{
    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    static Tensor Sine(int rate, double seconds, double hertz, float amplitude = 0.5f) =>
        (amplitude * (arange((long)(rate * seconds), dtype: ScalarType.Float64) * (2 * Math.PI * hertz / rate)).sin()).to(ScalarType.Float32);

    [Test]
    public void WavRoundTripsAsPcm16AndFloat32()
    {
        var stereo = stack(new[] { Sine(8000, 0.25, 440), Sine(8000, 0.25, 220, 0.25f) });
        string pcm = Path.Combine(_directory, "pcm.wav");
        WavFile.Write(pcm, stereo, 8000);
        using (var read = WavFile.Read(pcm))
        {
            Assert.That((read.Channels, read.Frames, read.SampleRate), Is.EqualTo((2, 2000L, 8000)));
            Assert.That((read.Samples - stereo).abs().max().item<float>(), Is.LessThanOrEqualTo(0.5f / 32768 + 1e-6f));
            Assert.That(read.Seconds, Is.EqualTo(0.25).Within(1e-9));
        }
        string ieee = Path.Combine(_directory, "float.wav");
        WavFile.Write(ieee, stereo[0], 16000, float32: true);
        using (var read = WavFile.Read(ieee))
        {
            Assert.That((read.Channels, read.SampleRate), Is.EqualTo((1, 16000)));
            Assert.That(read.Samples[0].equal(stereo[0]).all().item<bool>(), Is.True);
        }
        Assert.That(Directory.GetFiles(_directory), Has.Length.EqualTo(2), "no temporary files left behind");
    }

    static byte[] Wav(ushort format, ushort channels, int rate, ushort bits, byte[] data, string? extraChunk = null)
    {
        var output = new MemoryStream();
        var writer = new BinaryWriter(output);
        int extra = extraChunk is null ? 0 : 8 + 2;
        writer.Write(Encoding.ASCII.GetBytes("RIFF"));
        writer.Write(4 + 24 + extra + 8 + data.Length);
        writer.Write(Encoding.ASCII.GetBytes("WAVE"));
        if (extraChunk is not null) { writer.Write(Encoding.ASCII.GetBytes(extraChunk)); writer.Write(1); writer.Write((byte)7); writer.Write((byte)0); }
        writer.Write(Encoding.ASCII.GetBytes("fmt "));
        writer.Write(16);
        writer.Write(format);
        writer.Write(channels);
        writer.Write(rate);
        writer.Write(rate * channels * bits / 8);
        writer.Write((ushort)(channels * bits / 8));
        writer.Write(bits);
        writer.Write(Encoding.ASCII.GetBytes("data"));
        writer.Write(data.Length);
        writer.Write(data);
        return output.ToArray();
    }

    [Test]
    public void ReadsEightAndTwentyFourBitPcmAndSkipsUnknownChunks()
    {
        // 24-bit: 0x400000 = +0.5, 0xC00000 = -0.5; an odd-sized LIST chunk before fmt is skipped with its pad byte.
        using var deep = WavFile.Read(Wav(1, 1, 48000, 24, new byte[] { 0, 0, 0x40, 0, 0, 0xC0 }, extraChunk: "LIST"));
        Assert.That(deep.Samples[0].data<float>().ToArray(), Is.EqualTo(new[] { 0.5f, -0.5f }));
        using var shallow = WavFile.Read(Wav(1, 1, 8000, 8, new byte[] { 128, 192, 64 }));
        Assert.That(shallow.Samples[0].data<float>().ToArray(), Is.EqualTo(new[] { 0f, 0.5f, -0.5f }));
    }

    [Test]
    public void BadWavFilesNameTheProblem()
    {
        string notWav = Path.Combine(_directory, "song.wav");
        File.WriteAllText(notWav, "ID3 this is an mp3");
        var e = Assert.Throws<InvalidDataException>(() => WavFile.Read(notWav));
        Assert.That(e!.Message, Does.Contain(notWav).And.Contain("RIFF/WAVE"));

        var truncated = Wav(1, 1, 8000, 16, new byte[400]);
        BinaryPrimitives.WriteInt32LittleEndian(truncated.AsSpan(40), 4000);
        e = Assert.Throws<InvalidDataException>(() => WavFile.Read(truncated, "cut.wav"));
        Assert.That(e!.Message, Does.Contain("cut.wav").And.Contain("truncated"));

        e = Assert.Throws<InvalidDataException>(() => WavFile.Read(Wav(2, 1, 8000, 4, new byte[4]), "adpcm.wav"));
        Assert.That(e!.Message, Does.Contain("adpcm.wav"));
        Assert.Throws<FileNotFoundException>(() => WavFile.Read(Path.Combine(_directory, "missing.wav")));
    }

    [Test]
    public void ResamplingChangesTheRateAndKeepsTheTone()
    {
        using var wave = new AudioWaveform(Sine(8000, 0.5, 100).unsqueeze(0), 8000);
        using var up = wave.Resample(16000);
        Assert.That((up.SampleRate, up.Frames), Is.EqualTo((16000, 8000L)));
        // The 100 Hz tone at 16 kHz: sample 160 is one full period after sample 0.
        Assert.That(up.Samples[0, 160].item<float>(), Is.EqualTo(up.Samples[0, 0].item<float>()).Within(0.02));
    }

    [Test]
    public void AWavFileFeedsTheAudioTower()
    {
        string path = Path.Combine(_directory, "clip.wav");
        WavFile.Write(path, stack(new[] { Sine(16000, 0.1, 300), Sine(16000, 0.1, 500) }), 16000);
        using var wave = WavFile.Read(path);
        var mono = wave.Mono();
        Assert.That(mono.shape, Is.EqualTo(new long[] { 1600 }));
        using var model = new VattModel(VattFamily.Tiny);
        model.eval();
        using var _ = no_grad();
        var output = model.EncodeAudio(mono.unsqueeze(0).narrow(1, 0, 32 * 50));
        Assert.That(output.Tokens.shape, Is.EqualTo(new long[] { 1, 50, 64 }));
    }

    [Test]
    public void WithoutFfmpegDecodingSaysWhatToDo()
    {
        string video = Path.Combine(_directory, "clip.mp4");
        File.WriteAllBytes(video, new byte[16]);
        var e = Assert.Throws<NotSupportedException>(() => VideoFrames.Decode(video, new VideoDecodeOptions { Ffmpeg = "/nonexistent/bin/ffmpeg" }));
        Assert.That(e!.Message, Does.Contain(video).And.Contain("ffmpeg").And.Contain("[frames, height, width, 3]"));
        Assert.That(VideoFrames.IsFfmpegAvailable("/nonexistent/bin/ffmpeg"), Is.False);
        Assert.Throws<FileNotFoundException>(() => VideoFrames.Decode(Path.Combine(_directory, "missing.mp4")));
    }

    [Test]
    public void FrameTensorsFeedTheVideoTower()
    {
        var frames = Enumerable.Range(0, 4).Select(i => full(new long[] { 16, 16, 3 }, i / 4f)).ToList();
        var clip = VideoFrames.FromFrames(frames);
        Assert.That(clip.shape, Is.EqualTo(new long[] { 4, 16, 16, 3 }));
        var batch = VideoFrames.Batch(new[] { clip, clip.flip(0) });
        using var model = new VattModel(VattFamily.Tiny);
        model.eval();
        using var _ = no_grad();
        var output = model.EncodeVideo(batch);
        Assert.That(output.Tokens.shape, Is.EqualTo(new long[] { 2, 8, 64 }));
        Assert.That((output.Pooled[0] - output.Pooled[1]).abs().max().item<float>(), Is.GreaterThan(0f), "frame order matters");
        var e = Assert.Throws<ArgumentException>(() => VideoFrames.FromFrames(new[] { zeros(16, 16, 3), zeros(8, 16, 3) }));
        Assert.That(e!.Message, Does.Contain("frame 1"));
    }

    [Test]
    public void DecodesAVideoWithFfmpegWhenInstalled()
    {
        string video = Path.Combine(_directory, "test.mkv");
        if (!VideoFrames.IsFfmpegAvailable())
        {
            // No ffmpeg on this machine: the real lookup must say so clearly.
            File.WriteAllBytes(video, new byte[16]);
            var e = Assert.Throws<NotSupportedException>(() => VideoFrames.Decode(video));
            Assert.That(e!.Message, Does.Contain("ffmpeg").And.Contain("was not found"));
            return;
        }
        // A synthetic clip: 12 frames of 64x48 at 12 fps, the first half red and the second half blue.
        var make = Process.Start(new ProcessStartInfo("ffmpeg")
        {
            ArgumentList =
            {
                "-nostdin", "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=64x48:r=12:d=0.5", "-f", "lavfi", "-i", "color=c=blue:s=64x48:r=12:d=0.5",
                "-filter_complex", "[0:v][1:v]concat=n=2:v=1", "-c:v", "ffv1", video,
            },
            RedirectStandardError = true,
        })!;
        make.WaitForExit();
        Assert.That(make.ExitCode, Is.EqualTo(0), make.StandardError.ReadToEnd());

        using var frames = VideoFrames.Decode(video, new VideoDecodeOptions { Width = 32, Height = 16, FramesPerSecond = null, MaxFrames = 8 });
        Assert.That(frames.shape, Is.EqualTo(new long[] { 8, 16, 32, 3 }));
        Assert.That(frames[0, 8, 16, 0].item<float>(), Is.GreaterThan(0.8f), "frame 0 is red");
        Assert.That(frames[0, 8, 16, 2].item<float>(), Is.LessThan(0.2f));
        Assert.That(frames[7, 8, 16, 2].item<float>(), Is.GreaterThan(0.8f), "frame 7 is blue");
        using var all = VideoFrames.Decode(video, new VideoDecodeOptions { Width = 16, Height = 16, FramesPerSecond = 6, MaxFrames = 100 });
        Assert.That(all.shape[0], Is.EqualTo(6), "1 s at 6 fps");

        string broken = Path.Combine(_directory, "broken.mp4");
        File.WriteAllText(broken, "not a video");
        var error = Assert.Throws<InvalidDataException>(() => VideoFrames.Decode(broken));
        Assert.That(error!.Message, Does.Contain(broken).And.Contain("ffmpeg could not decode"));
    }
}
