using SkiaSharp;

namespace ModelZoo.Processing.Images;

/// <summary>
/// Decodes JPEG, PNG, WebP, BMP and GIF (first frame) with SkiaSharp into 8-bit RGB: the EXIF orientation is
/// applied, alpha is dropped without blending (as PIL's convert("RGB")), and no colour profile is applied (PIL
/// ignores embedded ICC profiles too). A file that cannot be decoded is an <see cref="InvalidDataException"/>
/// naming it.
/// </summary>
public static class ImageDecoder
{
    /// <summary>PIL refuses images above twice its 89,478,485-pixel bomb limit; so does this decoder.</summary>
    public const long MaxPixels = 2L * 89_478_485;

    public static RgbImage Load(string path, bool applyExifOrientation = true)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"image file not found: {path}", path);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw new IOException($"{path}: cannot read the image file ({e.Message})", e);
        }
        return Decode(bytes, path, applyExifOrientation);
    }

    /// <summary>Decodes an encoded image; <paramref name="name"/> names it in errors.</summary>
    public static RgbImage Decode(byte[] encoded, string name = "(image bytes)", bool applyExifOrientation = true)
    {
        if (encoded.Length == 0) throw new InvalidDataException($"{name}: the image file is empty");
        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data)
            ?? throw new InvalidDataException($"{name}: not an image SkiaSharp can decode (JPEG, PNG, WebP, BMP, GIF), or the file is corrupt");
        var size = codec.Info;
        if (size.Width <= 0 || size.Height <= 0) throw new InvalidDataException($"{name}: the image has no pixels ({size.Width}x{size.Height})");
        if ((long)size.Width * size.Height > MaxPixels)
            throw new InvalidDataException($"{name}: {size.Width}x{size.Height} is more than {MaxPixels:N0} pixels (a decompression bomb?)");

        var info = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[info.BytesSize];
        var result = codec.GetPixels(info, rgba);
        if (result != SKCodecResult.Success)
            throw new InvalidDataException(result == SKCodecResult.IncompleteInput
                ? $"{name}: the image file is truncated"
                : $"{name}: cannot decode the image ({result})");

        var rgb = new byte[size.Width * size.Height * 3];
        for (int i = 0, j = 0; i < rgb.Length; i += 3, j += 4)
        {
            rgb[i] = rgba[j];
            rgb[i + 1] = rgba[j + 1];
            rgb[i + 2] = rgba[j + 2];
        }
        var image = new RgbImage(size.Width, size.Height, rgb);
        return applyExifOrientation ? image.Orient((int)codec.EncodedOrigin) : image;
    }
}
