using ModelZoo.Processing.Images;
using SkiaSharp;

namespace ModelZoo.Tests.Processing;

/// <summary>Images the tests make themselves: smooth gradients, noise and sharp edges; encoders for each format.</summary>
public static class TestImages
{
    /// <summary>A photo-like test image: gradients, a disc with hard edges, thin stripes and seeded noise (+-noise).</summary>
    public static RgbImage Synthetic(int width, int height, int seed = 1, int noise = 12)
    {
        var random = new Random(seed);
        var pixels = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        {
            double u = (double)x / width, v = (double)y / height;
            double r = 255 * u, g = 255 * v, b = 128 + 100 * Math.Sin(12 * u + 7 * v);
            double dx = u - 0.6, dy = v - 0.4;
            if (dx * dx + dy * dy < 0.04) (r, g, b) = (240, 30, 40);                    // a red disc
            if (x % 16 < 2 && y > height / 2) (r, g, b) = (20, 20, 20);                 // thin dark stripes
            int n = random.Next(-noise, noise + 1);
            int i = (y * width + x) * 3;
            pixels[i] = Clamp(r + n);
            pixels[i + 1] = Clamp(g + n);
            pixels[i + 2] = Clamp(b + n);
        }
        return new RgbImage(width, height, pixels);
    }

    /// <summary>Four solid quadrants: top-left red, top-right green, bottom-left blue, bottom-right white.</summary>
    public static RgbImage Quadrants(int width, int height)
    {
        var pixels = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        {
            var c = (x < width / 2, y < height / 2) switch
            {
                (true, true) => (255, 0, 0),
                (false, true) => (0, 255, 0),
                (true, false) => (0, 0, 255),
                _ => (255, 255, 255),
            };
            int i = (y * width + x) * 3;
            (pixels[i], pixels[i + 1], pixels[i + 2]) = ((byte)c.Item1, (byte)c.Item2, (byte)c.Item3);
        }
        return new RgbImage(width, height, pixels);
    }

    public static RgbImage Constant(int width, int height, byte r, byte g, byte b)
    {
        var pixels = new byte[width * height * 3];
        for (int i = 0; i < pixels.Length; i += 3) (pixels[i], pixels[i + 1], pixels[i + 2]) = (r, g, b);
        return new RgbImage(width, height, pixels);
    }

    public static byte[] Encode(RgbImage image, SKEncodedImageFormat format, int quality = 95)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var rgba = bitmap.Bytes;
        for (int i = 0, j = 0; i < image.Pixels.Length; i += 3, j += 4)
            (rgba[j], rgba[j + 1], rgba[j + 2], rgba[j + 3]) = (image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2], 255);
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var data = bitmap.Encode(format, quality) ?? throw new InvalidOperationException($"Skia cannot encode {format}");
        return data.ToArray();
    }

    /// <summary>A 24-bit BMP (Skia decodes BMP but does not write it): bottom-up BGR rows padded to 4 bytes.</summary>
    public static byte[] EncodeBmp(RgbImage image)
    {
        int rowSize = (image.Width * 3 + 3) / 4 * 4, dataSize = rowSize * image.Height;
        using var stream = new MemoryStream();
        using var w = new BinaryWriter(stream);
        w.Write((byte)'B'); w.Write((byte)'M'); w.Write(54 + dataSize); w.Write(0); w.Write(54);
        w.Write(40); w.Write(image.Width); w.Write(image.Height); w.Write((short)1); w.Write((short)24);
        w.Write(0); w.Write(dataSize); w.Write(2835); w.Write(2835); w.Write(0); w.Write(0);
        for (int y = image.Height - 1; y >= 0; y--)
        {
            for (int x = 0; x < image.Width; x++)
            {
                var (r, g, b) = image[x, y];
                w.Write(b); w.Write(g); w.Write(r);
            }
            for (int p = image.Width * 3; p < rowSize; p++) w.Write((byte)0);
        }
        w.Flush();
        return stream.ToArray();
    }

    /// <summary>A JPEG with an EXIF APP1 segment holding only the orientation tag (0x0112).</summary>
    public static byte[] JpegWithOrientation(RgbImage image, int orientation)
    {
        var jpeg = Encode(image, SKEncodedImageFormat.Jpeg, 100);
        // TIFF header (little endian), IFD0 with one SHORT entry, no next IFD.
        byte[] tiff =
        [
            (byte)'I', (byte)'I', 42, 0, 8, 0, 0, 0,
            1, 0,
            0x12, 0x01, 3, 0, 1, 0, 0, 0, (byte)orientation, 0, 0, 0,
            0, 0, 0, 0,
        ];
        byte[] exif = [.. "Exif\0\0"u8.ToArray(), .. tiff];
        int length = exif.Length + 2;
        byte[] app1 = [0xFF, 0xE1, (byte)(length >> 8), (byte)length, .. exif];
        return [jpeg[0], jpeg[1], .. app1, .. jpeg[2..]];
    }

    /// <summary>
    /// A PNG written byte by byte (no Skia): 8-bit samples, <paramref name="colorType"/> 0 gray, 2 RGB, 4 gray+alpha,
    /// 6 RGBA, rows of width × channels samples, filter 0.
    /// </summary>
    public static byte[] Png(int width, int height, int colorType, byte[] samples)
    {
        int channels = colorType switch { 0 => 1, 2 => 3, 4 => 2, 6 => 4, _ => throw new ArgumentException($"colour type {colorType}") };
        if (samples.Length != width * height * channels) throw new ArgumentException("sample count");
        using var raw = new MemoryStream();
        for (int y = 0; y < height; y++)
        {
            raw.WriteByte(0);
            raw.Write(samples, y * width * channels, width * channels);
        }
        using var compressed = new MemoryStream();
        using (var zlib = new System.IO.Compression.ZLibStream(compressed, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true))
            zlib.Write(raw.ToArray());
        var header = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header, width);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8;
        header[9] = (byte)colorType;
        using var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        WriteChunk(png, "IHDR", header);
        WriteChunk(png, "IDAT", compressed.ToArray());
        WriteChunk(png, "IEND", []);
        return png.ToArray();
    }

    static void WriteChunk(Stream stream, string type, byte[] data)
    {
        Span<byte> four = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(four, data.Length);
        stream.Write(four);
        byte[] typed = [.. System.Text.Encoding.ASCII.GetBytes(type), .. data];
        stream.Write(typed);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(four, Crc32(typed));
        stream.Write(four);
    }

    static uint Crc32(byte[] bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>A one-component (grayscale) JPEG of <paramref name="gray"/> [height, width] samples.</summary>
    public static byte[] GrayJpeg(int width, int height, byte[] gray, int quality = 100)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
        System.Runtime.InteropServices.Marshal.Copy(gray, 0, bitmap.GetPixels(), gray.Length);
        using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, quality) ?? throw new InvalidOperationException("Skia cannot encode a gray JPEG");
        return data.ToArray();
    }

    /// <summary>The component count in a JPEG's start-of-frame segment (1: grayscale, 3: colour).</summary>
    public static int JpegComponents(byte[] jpeg)
    {
        for (int i = 2; i + 9 < jpeg.Length;)
        {
            if (jpeg[i] != 0xFF) throw new InvalidDataException($"no JPEG marker at {i}");
            byte marker = jpeg[i + 1];
            int length = (jpeg[i + 2] << 8) | jpeg[i + 3];
            if (marker is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC) return jpeg[i + 9];
            i += 2 + length;
        }
        throw new InvalidDataException("no start-of-frame segment");
    }

    static byte Clamp(double v) => (byte)Math.Clamp((int)Math.Round(v), 0, 255);
}
