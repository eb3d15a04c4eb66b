using ModelZoo.Evaluation.Data;
using ModelZoo.Processing;
using ModelZoo.Tests.Support;
using ModelZoo.Training.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Pretraining;

/// <summary>Aligned synthetic data written by the tests themselves: image-caption pairs and video/audio/caption clips.</summary>
static class SyntheticData
{
    static readonly string[] Colours = { "red", "green", "blue", "yellow" };
    static readonly string[] Things = { "circle", "square", "star", "cross" };

    /// <summary>
    /// <paramref name="images"/> images of 3 x 32 x 32 pixels, each a fixed random pattern with
    /// two captions naming its colour and thing ("a red star", "the star is red").
    /// </summary>
    public static List<CaptionItem> CaptionedImages(int images, long seed)
    {
        var generator = new Generator((ulong)seed);
        return Enumerable.Range(0, images).Select(i =>
        {
            string colour = Colours[i % Colours.Length], thing = Things[i / Colours.Length % Things.Length];
            var pixels = rand(new long[] { 3, 32, 32 }, generator: generator);
            return new CaptionItem(VisualInput.FromPixels(pixels), new[] { $"a {colour} {thing}", $"the {thing} is {colour}" });
        }).ToList();
    }

    static readonly string[] Words =
    {
        "dog", "barks", "loudly", "guitar", "strums", "softly", "car", "engine", "roars", "rain", "falls", "gently",
        "bird", "sings", "early", "door", "slams", "shut", "baby", "laughs", "happily", "drum", "beats", "fast",
    };

    /// <summary>
    /// A VATT manifest of <paramref name="concepts"/> x <paramref name="clipsPerConcept"/> clips in
    /// <paramref name="directory"/>: per concept a fixed random video ([4, 16, 16, 3]: the reader loops it to the clip
    /// length and resizes it) and waveform (24 kHz: the reader resamples it), each clip adding its own noise; frames
    /// as float32 or uint8 safetensors; two captions per clip (three for the first concept) from the concept's words.
    /// </summary>
    public static string Clips(string directory, string name, int concepts, int clipsPerConcept, long seed, bool audio = true, bool captions = true)
    {
        Directory.CreateDirectory(directory);
        var generator = new Generator((ulong)seed);
        var entries = new List<VattClipEntry>();
        for (int c = 0; c < concepts; c++)
        {
            var frames = rand(new long[] { 4, 16, 16, 3 }, generator: generator);
            var wave = randn(new long[] { 1024 }, generator: generator) * 0.3;
            string a = Words[3 * c % Words.Length], b = Words[(3 * c + 1) % Words.Length], d = Words[(3 * c + 2) % Words.Length];
            for (int k = 0; k < clipsPerConcept; k++)
            {
                string id = $"{name}-{c}-{k}";
                var noisyFrames = (frames + 0.05 * randn(frames.shape, generator: generator)).clamp(0, 1);
                string framesPath = Path.Combine(directory, id + ".safetensors");
                SafetensorsBuilder.Write(framesPath, new Dictionary<string, Tensor>
                {
                    ["frames"] = k % 2 == 0 ? noisyFrames : (noisyFrames * 255).round().to(ScalarType.Byte),
                });
                string? wavPath = null;
                if (audio)
                {
                    wavPath = Path.Combine(directory, id + ".wav");
                    WavFile.Write(wavPath, (wave + 0.02 * randn(wave.shape, generator: generator)).clamp(-1, 1), 24000);
                }
                var texts = !captions ? new List<string>() : c == 0
                    ? new List<string> { $"a {a} {b}", $"{d}, {a}!", $"{b} {d} {a}" }
                    : new List<string> { $"a {a} {b}", $"{d}, {a}!" };
                entries.Add(new VattClipEntry(id, id, null, framesPath, wavPath, texts, 0));
            }
        }
        string manifest = Path.Combine(directory, name + ".jsonl");
        VattManifest.Write(manifest, entries);
        return manifest;
    }
}
