using SkiaSharp;

namespace ModelZoo.Training.Demo;

/// <summary>
/// Draws learning curves with SkiaSharp: one panel per run, the training loss per step (light) and its moving
/// average (dark) on the left axis, and an evaluation metric in [0, 1] (dots) on the right axis. Written atomically.
/// </summary>
public static class LearningCurve
{
    public sealed record Series(string Title, IReadOnlyList<double> Losses, IReadOnlyList<(int Step, double Value)> Metric, string MetricName);

    const int PanelWidth = 520, PanelHeight = 320, Margin = 56;

    public static void Write(string path, IReadOnlyList<Series> runs)
    {
        int width = PanelWidth * runs.Count;
        using var surface = SKSurface.Create(new SKImageInfo(width, PanelHeight));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        for (int i = 0; i < runs.Count; i++)
        {
            canvas.Save();
            canvas.Translate(i * PanelWidth, 0);
            DrawPanel(canvas, runs[i]);
            canvas.Restore();
        }
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        Weights.AtomicFile.Write(path, stream => png.SaveTo(stream));
    }

    static void DrawPanel(SKCanvas canvas, Series run)
    {
        var plot = new SKRect(Margin, 44, PanelWidth - Margin, PanelHeight - 40);
        using var axis = new SKPaint { Color = SKColors.Gray, StrokeWidth = 1, IsAntialias = true, Style = SKPaintStyle.Stroke };
        using var font = new SKFont(SKTypeface.Default, 12);
        using var titleFont = new SKFont(SKTypeface.Default, 15);
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var grey = new SKPaint { Color = SKColors.DimGray, IsAntialias = true };
        using var lossText = new SKPaint { Color = new SKColor(30, 60, 160), IsAntialias = true };
        canvas.DrawRect(plot, axis);
        canvas.DrawText(run.Title, plot.Left, 18, SKTextAlign.Left, titleFont, text);

        int steps = Math.Max(1, run.Losses.Count);
        double maxLoss = run.Losses.Count == 0 ? 1 : run.Losses.Max() * 1.05;
        if (!(maxLoss > 0)) maxLoss = 1;
        float X(double step) => plot.Left + (float)(step / steps) * plot.Width;
        float YLoss(double loss) => plot.Bottom - (float)(Math.Clamp(loss / maxLoss, 0, 1)) * plot.Height;
        float YMetric(double value) => plot.Bottom - (float)Math.Clamp(value, 0, 1) * plot.Height;

        using var raw = new SKPaint { Color = new SKColor(70, 110, 200, 70), StrokeWidth = 1, IsAntialias = true, Style = SKPaintStyle.Stroke };
        using var smooth = new SKPaint { Color = new SKColor(30, 60, 160), StrokeWidth = 2, IsAntialias = true, Style = SKPaintStyle.Stroke };
        using var metric = new SKPaint { Color = new SKColor(210, 90, 20), IsAntialias = true, Style = SKPaintStyle.Fill };
        using var metricLine = new SKPaint { Color = new SKColor(210, 90, 20), StrokeWidth = 1.5f, IsAntialias = true, Style = SKPaintStyle.Stroke };

        DrawLine(canvas, run.Losses.Select((l, i) => new SKPoint(X(i + 1), YLoss(l))).ToList(), raw);
        int window = Math.Max(1, run.Losses.Count / 25);
        var averaged = new List<SKPoint>();
        double sum = 0;
        for (int i = 0; i < run.Losses.Count; i++)
        {
            sum += run.Losses[i];
            if (i >= window) sum -= run.Losses[i - window];
            averaged.Add(new SKPoint(X(i + 1), YLoss(sum / Math.Min(i + 1, window))));
        }
        DrawLine(canvas, averaged, smooth);
        var points = run.Metric.Select(m => new SKPoint(X(m.Step), YMetric(m.Value))).ToList();
        DrawLine(canvas, points, metricLine);
        foreach (var p in points) canvas.DrawCircle(p, 3.5f, metric);

        // Axes: step below, loss left, metric right.
        for (int t = 0; t <= 4; t++)
        {
            float y = plot.Bottom - t * plot.Height / 4;
            canvas.DrawText((maxLoss * t / 4).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture), plot.Left - 6, y + 4, SKTextAlign.Right, font, lossText);
            canvas.DrawText((t / 4.0).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture), plot.Right + 6, y + 4, SKTextAlign.Left, font, metric);
            float x = plot.Left + t * plot.Width / 4;
            canvas.DrawText(((int)Math.Round((double)steps * t / 4)).ToString(System.Globalization.CultureInfo.InvariantCulture), x, plot.Bottom + 16, SKTextAlign.Center, font, grey);
        }
        canvas.DrawText("step", plot.MidX, plot.Bottom + 32, SKTextAlign.Center, font, grey);
        canvas.DrawText("training loss", plot.Left, plot.Top - 6, SKTextAlign.Left, font, lossText);
        canvas.DrawText(run.MetricName + " (held out)", plot.Right, plot.Top - 6, SKTextAlign.Right, font, metric);
    }

    static void DrawLine(SKCanvas canvas, IReadOnlyList<SKPoint> points, SKPaint paint)
    {
        if (points.Count < 2) return;
        using var path = new SKPath();
        path.MoveTo(points[0]);
        foreach (var p in points.Skip(1)) path.LineTo(p);
        canvas.DrawPath(path, paint);
    }
}
