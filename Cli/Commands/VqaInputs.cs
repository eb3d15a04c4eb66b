using ModelZoo.Models.OneStream;
using static TorchSharp.torch;

namespace ModelZoo.Cli.Commands;

/// <summary>Turns the files `modelzoo vqa` is given into model inputs: an image for ViLT, detector regions for the region models.</summary>
static class VqaInputs
{
    /// <summary>ViLT's image processing: decode, resize (shorter side 384, longer at most 640, multiples of 32), normalise (mean/std 0.5) → [3, H, W].</summary>
    public static Tensor LoadImage(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such image", path);
        throw new NotSupportedException("reading image files needs the image processing of the Processing library, which this build does not have yet");
    }

    /// <summary>One image's region features, pixel boxes and size from a bottom-up-attention TSV or a UNITER .npz.</summary>
    public static RegionFeatures LoadRegions(string path, string imageId)
    {
        if (!File.Exists(path) && !Directory.Exists(path)) throw new FileNotFoundException($"{path}: no such feature file", path);
        throw new NotSupportedException("reading region feature files needs the feature readers of the Processing library, which this build does not have yet");
    }
}
