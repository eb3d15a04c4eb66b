using ModelZoo.Processing.Images;
using static TorchSharp.torch;

namespace ModelZoo.Cli.Commands;

/// <summary>
/// Images for `modelzoo generate`: decoded and put through CLIP's preprocessing (PIL-exact bicubic resize of the
/// shorter side, centre crop, CLIP mean/std) at the model's image size, as OpenFlamingo's open_clip transform does.
/// </summary>
public static class GenerateImages
{
    /// <summary>[3, size, size] float32; unreadable files are errors naming the file.</summary>
    public static Tensor Load(string path, int size) => new ClipImageProcessor(size).Process(ImageDecoder.Load(path));
}
