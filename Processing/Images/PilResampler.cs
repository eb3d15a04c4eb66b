namespace ModelZoo.Processing.Images;

/// <summary>
/// PIL's <c>Image.resize</c> resampling (libImaging/Resample.c, ImagingResample) for 8-bit RGB: a separable filter
/// whose support grows with the downscale factor (so downscaling averages instead of aliasing), coefficients
/// normalised and turned into 22-bit fixed point, a horizontal pass and then a vertical pass, each rounded to 8 bits.
/// This is what CLIP's and ViLT's preprocessing (torchvision Resize / PIL resize with BICUBIC) compute, to the bit.
/// </summary>
public static class PilResampler
{
    public enum Filter { Bilinear, Bicubic }

    const int PrecisionBits = 32 - 8 - 2;

    public static RgbImage Resize(RgbImage image, int width, int height, Filter filter = Filter.Bicubic)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"cannot resize to {width}x{height}");
        if (width == image.Width && height == image.Height) return new RgbImage(width, height, (byte[])image.Pixels.Clone());
        var (kernel, support) = filter switch
        {
            Filter.Bilinear => ((Func<double, double>)Bilinear, 1.0),
            _ => (Bicubic, 2.0),
        };

        var vertical = Coefficients(image.Height, height, kernel, support);
        // Only the rows the vertical pass reads go through the horizontal pass.
        int firstRow = vertical.Bounds[0];
        int lastRow = vertical.Bounds[(height - 1) * 2] + vertical.Bounds[(height - 1) * 2 + 1];

        byte[] rows = image.Pixels;
        int rowsWidth = image.Width, rowOffset = 0;
        if (width != image.Width)
        {
            var horizontal = Coefficients(image.Width, width, kernel, support);
            rows = Horizontal(image.Pixels, image.Width, firstRow, lastRow - firstRow, width, horizontal);
            rowsWidth = width;
            rowOffset = firstRow;
        }
        // Same height: the vertical filter would be the identity and PIL skips it (the horizontal pass read every row).
        if (height == image.Height) return new RgbImage(width, height, rows);
        return new RgbImage(width, height, Vertical(rows, rowsWidth, rowOffset, height, vertical));
    }

    static double Bicubic(double x)
    {
        const double a = -0.5;
        if (x < 0) x = -x;
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    }

    static double Bilinear(double x)
    {
        if (x < 0) x = -x;
        return x < 1 ? 1 - x : 0;
    }

    sealed record Kernel(int Size, int[] Bounds, int[] Weights);

    // precompute_coeffs + normalize_coeffs_8bpc over the whole input (box 0..inSize).
    static Kernel Coefficients(int inSize, int outSize, Func<double, double> filter, double filterSupport)
    {
        double scale = (double)inSize / outSize, filterScale = Math.Max(scale, 1.0);
        double support = filterSupport * filterScale;
        int size = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var weights = new int[outSize * size];
        var k = new double[size];
        double inverseScale = 1.0 / filterScale;
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = (xx + 0.5) * scale;
            int xmin = Math.Max((int)(center - support + 0.5), 0);
            int xmax = Math.Min((int)(center + support + 0.5), inSize) - xmin;
            double sum = 0;
            for (int x = 0; x < xmax; x++)
            {
                k[x] = filter((x + xmin - center + 0.5) * inverseScale);
                sum += k[x];
            }
            for (int x = 0; x < xmax; x++)
            {
                double w = sum != 0 ? k[x] / sum : k[x];
                weights[xx * size + x] = w < 0 ? (int)(-0.5 + w * (1 << PrecisionBits)) : (int)(0.5 + w * (1 << PrecisionBits));
            }
            bounds[xx * 2] = xmin;
            bounds[xx * 2 + 1] = xmax;
        }
        return new Kernel(size, bounds, weights);
    }

    static byte[] Horizontal(byte[] input, int inWidth, int firstRow, int rowCount, int outWidth, Kernel kernel)
    {
        var output = new byte[outWidth * rowCount * 3];
        Parallel.For(0, rowCount, y =>
        {
            int inRow = (firstRow + y) * inWidth * 3, outRow = y * outWidth * 3;
            for (int xx = 0; xx < outWidth; xx++)
            {
                int xmin = kernel.Bounds[xx * 2], xmax = kernel.Bounds[xx * 2 + 1], k = xx * kernel.Size;
                int r = 1 << (PrecisionBits - 1), g = r, b = r;
                for (int x = 0; x < xmax; x++)
                {
                    int w = kernel.Weights[k + x], p = inRow + (x + xmin) * 3;
                    r += input[p] * w;
                    g += input[p + 1] * w;
                    b += input[p + 2] * w;
                }
                output[outRow + xx * 3] = Clip8(r);
                output[outRow + xx * 3 + 1] = Clip8(g);
                output[outRow + xx * 3 + 2] = Clip8(b);
            }
        });
        return output;
    }

    static byte[] Vertical(byte[] input, int width, int rowOffset, int outHeight, Kernel kernel)
    {
        var output = new byte[width * outHeight * 3];
        Parallel.For(0, outHeight, yy =>
        {
            int ymin = kernel.Bounds[yy * 2] - rowOffset, ymax = kernel.Bounds[yy * 2 + 1], k = yy * kernel.Size;
            for (int i = 0; i < width * 3; i++)
            {
                int sum = 1 << (PrecisionBits - 1);
                for (int y = 0; y < ymax; y++) sum += input[(y + ymin) * width * 3 + i] * kernel.Weights[k + y];
                output[yy * width * 3 + i] = Clip8(sum);
            }
        });
        return output;
    }

    static byte Clip8(int value)
    {
        int shifted = value >> PrecisionBits;
        return shifted < 0 ? (byte)0 : shifted > 255 ? (byte)255 : (byte)shifted;
    }
}
