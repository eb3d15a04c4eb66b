using System.Text.RegularExpressions;
using ModelZoo.Evaluation.Data;
using ModelZoo.Models.Vatt;
using ModelZoo.Processing;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Training.Tasks;

/// <summary>
/// The size every clip is brought to before it reaches VATT: <see cref="Frames"/> frames of
/// <see cref="Height"/> x <see cref="Width"/> (sampled at <see cref="FramesPerSecond"/> from video files) and
/// <see cref="AudioSamples"/> mono samples at <see cref="SampleRate"/> Hz.
/// </summary>
public sealed record VattClipShape
{
    public int Frames { get; init; } = 32;
    public int Height { get; init; } = 224;
    public int Width { get; init; } = 224;
    public double FramesPerSecond { get; init; } = 10;
    public int SampleRate { get; init; } = 48000;
    public int AudioSamples { get; init; } = 153600;

    /// <summary>
    /// The input a preset was built for, read from its position buckets and patch sizes (VATT's pre-training input:
    /// 32 frames of 224 x 224 at 10 fps and 3.2 s of 48 kHz audio for the published sizes).
    /// </summary>
    public static VattClipShape For(VattConfig config) => new()
    {
        Frames = config.MaxVidTemporalBuckets * config.VidTemporalPatchSize,
        Height = config.MaxVidSpatialBuckets * config.VidSpatialPatchSize,
        Width = config.MaxVidSpatialBuckets * config.VidSpatialPatchSize,
        AudioSamples = config.MaxAudTemporalBuckets * config.AudTemporalPatchSize,
    };

    public void Validate(VattConfig config)
    {
        if (Frames <= 0 || Height <= 0 || Width <= 0 || AudioSamples <= 0 || SampleRate <= 0 || !(FramesPerSecond > 0))
            throw new ArgumentException($"VATT clip shape must be positive: {Frames} frames of {Height}x{Width} at {FramesPerSecond} fps, {AudioSamples} samples at {SampleRate} Hz");
        if (Frames % config.VidTemporalPatchSize != 0 || Height % config.VidSpatialPatchSize != 0 || Width % config.VidSpatialPatchSize != 0)
            throw new ArgumentException($"VATT clip shape: {Frames} frames of {Height}x{Width} do not divide into the model's " +
                                        $"{config.VidTemporalPatchSize}x{config.VidSpatialPatchSize}x{config.VidSpatialPatchSize} voxels");
        if (AudioSamples < config.AudTemporalPatchSize)
            throw new ArgumentException($"VATT clip shape: {AudioSamples} audio samples are fewer than one patch of {config.AudTemporalPatchSize}");
    }
}

/// <summary>
/// Word ids for VATT's word table: [PAD] = 0 (VATT's padding id), [UNK] = 1, then words. Text is lower-cased and
/// split into runs of letters, digits and apostrophes (MIL-NCE / VATT drop punctuation the same way). Built from the
/// training captions (most frequent first, ties in ordinal order) when no word list is given; saved as words.txt,
/// one word per line, the line number being the id.
/// </summary>
public sealed partial class VattWordVocabulary
{
    public const string FileName = "words.txt";
    public const int PadId = 0, UnknownId = 1;

    readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    readonly List<string> _words = new();

    VattWordVocabulary(IEnumerable<string> words)
    {
        foreach (var word in words)
        {
            if (_ids.ContainsKey(word)) continue;
            _ids[word] = _words.Count;
            _words.Add(word);
        }
    }

    public int Count => _words.Count;
    public IReadOnlyList<string> Words => _words;

    /// <summary>The words of <paramref name="texts"/> by frequency, at most <paramref name="maxSize"/> ids in all (the model's txt_vocab_size).</summary>
    public static VattWordVocabulary Build(IEnumerable<string> texts, int maxSize)
    {
        if (maxSize < 3) throw new ArgumentException($"a VATT vocabulary needs room for [PAD], [UNK] and words; the table has {maxSize} rows");
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var text in texts)
            foreach (var word in Split(text))
                counts[word] = counts.GetValueOrDefault(word) + 1;
        var words = counts.OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key).Take(maxSize - 2);
        return new VattWordVocabulary(new[] { "[PAD]", "[UNK]" }.Concat(words));
    }

    public static VattWordVocabulary Load(string path, int maxSize)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: word list not found", path);
        var words = File.ReadAllLines(path);
        if (words.Length < 2 || words[0] != "[PAD]" || words[1] != "[UNK]")
            throw new InvalidDataException($"{path}: a VATT word list starts with [PAD] and [UNK] (ids 0 and 1), one word per line");
        if (words.Length > maxSize) throw new InvalidDataException($"{path}: {words.Length} words but the model's word table has {maxSize} rows");
        return new VattWordVocabulary(words);
    }

    public void Save(string path) => Weights.AtomicFile.WriteAllText(path, string.Join("\n", _words) + "\n");

    /// <summary>The ids of the first <paramref name="maxWords"/> words (unknown words are [UNK]).</summary>
    public List<int> Encode(string text, int maxWords) => Split(text).Take(maxWords).Select(w => _ids.GetValueOrDefault(w, UnknownId)).ToList();

    static IEnumerable<string> Split(string text) => WordPattern().Matches(text.ToLowerInvariant()).Select(m => m.Value);

    [GeneratedRegex("[\\p{L}\\p{N}']+")]
    private static partial Regex WordPattern();
}

/// <summary>
/// Reads a manifest clip at a <see cref="VattClipShape"/>: frames from a safetensors file (a tensor "frames", or
/// the file's only tensor, [T, H, W, 3] float RGB in [0, 1] or uint8) or a video file through ffmpeg; audio from a
/// WAV file (averaged to mono, resampled, offset by the clip's start). Frames are resized to cover the frame size
/// and centre-cropped; a clip with fewer frames is looped, a longer one cut; audio is cut or zero-padded.
/// </summary>
public sealed class VattClipReader
{
    public VattClipShape Shape { get; }
    /// <summary>The ffmpeg to decode video files with (null: "ffmpeg" on PATH or $MODELZOO_FFMPEG).</summary>
    public string? Ffmpeg { get; init; }

    public VattClipReader(VattClipShape shape) => Shape = shape;

    /// <summary>[T, H, W, 3] float32.</summary>
    public Tensor Frames(VattClipEntry clip)
    {
        using var scope = NewDisposeScope();
        Tensor frames;
        if (clip.Frames is string file)
        {
            frames = ReadFrameFile(file, clip.Source);
        }
        else
        {
            try
            {
                frames = VideoFrames.Decode(clip.Video!, new VideoDecodeOptions
                {
                    Width = Shape.Width, Height = Shape.Height, FramesPerSecond = Shape.FramesPerSecond, MaxFrames = Shape.Frames,
                    StartSeconds = clip.Start, Ffmpeg = Ffmpeg,
                });
            }
            catch (Exception e) when (e is InvalidDataException or IOException)
            {
                throw new InvalidDataException($"{clip.Source}: {e.Message}", e);
            }
            if (frames.shape[0] == 0) throw new InvalidDataException($"{clip.Source}: {clip.Video}: no frames decoded from {clip.Start} s on");
        }
        return Fit(frames).MoveToOuterDisposeScope();
    }

    /// <summary>[S] float32.</summary>
    public Tensor Audio(VattClipEntry clip)
    {
        if (clip.Audio is null) throw new InvalidOperationException($"{clip.Source}: the clip has no audio");
        using var scope = NewDisposeScope();
        using var wave = WavFile.Read(clip.Audio);
        var mono = wave.Mono();
        if (wave.SampleRate != Shape.SampleRate)
            mono = new AudioWaveform(mono.unsqueeze(0), wave.SampleRate).Resample(Shape.SampleRate).Samples.squeeze(0);
        long offset = (long)Math.Round(clip.Start * Shape.SampleRate);
        long available = Math.Max(0, mono.shape[0] - offset);
        long take = Math.Min(available, Shape.AudioSamples);
        var samples = zeros(Shape.AudioSamples);
        if (take > 0) samples.narrow(0, 0, take).copy_(mono.narrow(0, offset, take));
        return samples.MoveToOuterDisposeScope();
    }

    static Tensor ReadFrameFile(string path, string source)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{source}: frames file {path} not found", path);
        using var reader = new Weights.SafetensorsReader(path);
        var entry = reader.Entries.FirstOrDefault(e => e.Name == "frames") ?? (reader.Entries.Count == 1 ? reader.Entries[0]
            : throw new InvalidDataException($"{path}: no tensor named \"frames\" among {reader.Entries.Count} ({string.Join(", ", reader.Entries.Take(5).Select(e => e.Name))})"));
        var frames = reader.Read(entry.Name);
        if (frames.dim() != 4 || frames.shape[3] != 3 || frames.shape[0] == 0)
            throw new InvalidDataException($"{path}: \"{entry.Name}\" is {entry.ShapeText}; frames are [T, H, W, 3] RGB with T ≥ 1");
        return frames.dtype == ScalarType.Byte ? frames.to(ScalarType.Float32) / 255f : frames.to(ScalarType.Float32);
    }

    /// <summary>[t, h, w, 3] → [T, H, W, 3]: loop or cut in time, resize to cover and centre-crop in space.</summary>
    Tensor Fit(Tensor frames)
    {
        long t = frames.shape[0], h = frames.shape[1], w = frames.shape[2];
        if (t != Shape.Frames)
            frames = frames.index_select(0, arange(Shape.Frames, dtype: ScalarType.Int64).remainder(t));
        if (h == Shape.Height && w == Shape.Width) return frames.contiguous();
        double scale = Math.Max((double)Shape.Height / h, (double)Shape.Width / w);
        long height = Math.Max(Shape.Height, (long)Math.Round(h * scale)), width = Math.Max(Shape.Width, (long)Math.Round(w * scale));
        var resized = nn.functional.interpolate(frames.permute(0, 3, 1, 2), new[] { height, width }, mode: InterpolationMode.Bilinear, align_corners: false);
        long top = (height - Shape.Height) / 2, left = (width - Shape.Width) / 2;
        return resized.narrow(2, top, Shape.Height).narrow(3, left, Shape.Width).permute(0, 2, 3, 1).clamp(0, 1).contiguous();
    }
}
