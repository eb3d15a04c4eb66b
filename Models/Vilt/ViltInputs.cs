using ModelZoo.Models.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Vilt;

/// <summary>
/// Inputs of one ViLT forward pass: text ids [B, Lt] with their mask (1 = real token), normalised pixels
/// [B, C, H, W] zero-padded at the bottom/right to the batch's largest image, and the pixel mask [B, H, W]
/// (1 = real pixel; null = every pixel is real, as in Hugging Face).
/// </summary>
public sealed record ViltInputs(Tensor InputIds, Tensor? TextMask, Tensor PixelValues, Tensor? PixelMask = null, Tensor? TokenTypeIds = null)
{
    /// <summary>
    /// Pads texts (with 0) and images (bottom/right, with 0) to the largest in the batch. Each image is [C, H, W],
    /// already resized and normalised; sizes may differ.
    /// </summary>
    public static ViltInputs Collate(IReadOnlyList<long[]> texts, IReadOnlyList<Tensor> images, Device? device = null)
    {
        if (texts.Count == 0 || texts.Count != images.Count)
            throw new ArgumentException($"need one image per text (got {texts.Count} texts, {images.Count} images)");
        var (pixels, pixelMask) = PadImages(images);
        var (ids, mask) = TokenPadding.Pad(texts);
        device ??= CPU;
        return new ViltInputs(ids.to(device), mask.to(device), pixels.to(device), pixelMask.to(device));
    }

    /// <summary>Images [C, H, W] padded to [B, C, Hmax, Wmax] and their pixel mask [B, Hmax, Wmax].</summary>
    public static (Tensor Pixels, Tensor Mask) PadImages(IReadOnlyList<Tensor> images)
    {
        for (int i = 0; i < images.Count; i++)
            if (images[i].dim() != 3 || images[i].shape[0] != images[0].shape[0])
                throw new ArgumentException($"image {i} must be [{images[0].shape[0]}, H, W], got [{string.Join(", ", images[i].shape)}]");
        long channels = images[0].shape[0], height = images.Max(i => i.shape[1]), width = images.Max(i => i.shape[2]);
        var pixels = zeros(images.Count, channels, height, width, dtype: images[0].dtype);
        var mask = zeros(images.Count, height, width, dtype: ScalarType.Int64);
        using (no_grad())
        {
            for (int b = 0; b < images.Count; b++)
            {
                long h = images[b].shape[1], w = images[b].shape[2];
                pixels[b].narrow(1, 0, h).narrow(2, 0, w).copy_(images[b]);
                mask[b].narrow(0, 0, h).narrow(1, 0, w).fill_(1);
            }
        }
        return (pixels, mask);
    }

    /// <summary>The original ViLT's pixel mask: a pixel is real where its channels do not sum to zero (zero padding).</summary>
    public static Tensor PixelMaskFromZeroPadding(Tensor pixels) => pixels.sum(1).ne(0).to(ScalarType.Int64);
}
