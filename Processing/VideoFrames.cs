using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Processing;

/// <summary>How to sample and size frames when decoding a video.</summary>
public sealed record VideoDecodeOptions
{
    /// <summary>Output frame width and height: the video is scaled to cover it and centre-cropped.</summary>
    public int Width { get; init; } = 224;
    public int Height { get; init; } = 224;
    /// <summary>Frames per second to sample (null: every frame of the stream).</summary>
    public double? FramesPerSecond { get; init; } = 10;
    /// <summary>At most this many frames (the clip length).</summary>
    public int MaxFrames { get; init; } = 32;
    public double StartSeconds { get; init; }
    /// <summary>The ffmpeg executable: a path or a name looked up on PATH (default "ffmpeg", or $MODELZOO_FFMPEG).</summary>
    public string? Ffmpeg { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// Video frames as VATT takes them: a float tensor [T, H, W, 3], RGB in [0, 1]. Files are decoded by an installed
/// ffmpeg (run as a separate process, raw RGB frames read from its output); without ffmpeg, decode frames any
/// other way and pass the tensor (<see cref="FromFrames"/> stacks and checks them).
/// </summary>
public static class VideoFrames
{
    /// <summary>Decodes <paramref name="path"/> into [T, H, W, 3] (T ≤ MaxFrames).</summary>
    public static Tensor Decode(string path, VideoDecodeOptions? options = null)
    {
        options ??= new VideoDecodeOptions();
        if (options.Width <= 0 || options.Height <= 0 || options.MaxFrames <= 0)
            throw new ArgumentException($"frame size and count must be positive ({options.Width}x{options.Height}, {options.MaxFrames} frames)");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such video file", path);
        string ffmpeg = options.Ffmpeg ?? Environment.GetEnvironmentVariable("MODELZOO_FFMPEG") ?? "ffmpeg";
        string? executable = FindExecutable(ffmpeg) ?? throw new NotSupportedException(MissingFfmpeg(ffmpeg, path));

        var filters = new List<string>();
        if (options.FramesPerSecond is double fps)
        {
            if (!(fps > 0)) throw new ArgumentException($"frames per second must be positive, got {fps}");
            filters.Add("fps=" + fps.ToString(CultureInfo.InvariantCulture));
        }
        filters.Add($"scale={options.Width}:{options.Height}:force_original_aspect_ratio=increase");
        filters.Add($"crop={options.Width}:{options.Height}");
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
                 {
                     "-nostdin", "-v", "error", "-ss", options.StartSeconds.ToString(CultureInfo.InvariantCulture), "-i", path,
                     "-vf", string.Join(",", filters), "-frames:v", options.MaxFrames.ToString(CultureInfo.InvariantCulture),
                     "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
                 })
            start.ArgumentList.Add(argument);

        using var process = new Process { StartInfo = start };
        try { process.Start(); }
        catch (Win32Exception e) { throw new NotSupportedException(MissingFfmpeg(ffmpeg, path) + $" ({e.Message})", e); }
        process.StandardInput.Close();
        var errorTask = process.StandardError.ReadToEndAsync();
        using var buffer = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(buffer);
        if (!copy.Wait(options.Timeout) || !process.WaitForExit((int)Math.Min(int.MaxValue, options.Timeout.TotalMilliseconds)))
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw new TimeoutException($"{path}: ffmpeg did not finish decoding within {options.Timeout.TotalSeconds:0} s");
        }
        process.WaitForExit();
        string errors = errorTask.Result.Trim();
        if (process.ExitCode != 0)
            throw new InvalidDataException($"{path}: ffmpeg could not decode it (exit code {process.ExitCode}): {FirstLine(errors)}");
        long frameBytes = 3L * options.Width * options.Height;
        long frames = buffer.Length / frameBytes;
        if (frames == 0) throw new InvalidDataException($"{path}: no video frames decoded" + (errors.Length > 0 ? ": " + FirstLine(errors) : ""));
        var bytes = buffer.GetBuffer().AsSpan(0, (int)(frames * frameBytes)).ToArray();
        using var scope = NewDisposeScope();
        return (tensor(bytes).view(frames, options.Height, options.Width, 3).to(ScalarType.Float32) / 255f).MoveToOuterDisposeScope();
    }

    /// <summary>Stacks frames [H, W, 3] (RGB in [0, 1]) into [T, H, W, 3], checking they agree.</summary>
    public static Tensor FromFrames(IReadOnlyList<Tensor> frames)
    {
        if (frames.Count == 0) throw new ArgumentException("no frames given");
        var shape = frames[0].shape;
        for (int i = 0; i < frames.Count; i++)
        {
            if (frames[i].dim() != 3 || frames[i].shape[2] != 3)
                throw new ArgumentException($"frame {i} must be [height, width, 3] RGB, got [{string.Join(", ", frames[i].shape)}]");
            if (!frames[i].shape.SequenceEqual(shape))
                throw new ArgumentException($"frame {i} is [{string.Join(", ", frames[i].shape)}] but frame 0 is [{string.Join(", ", shape)}]");
        }
        return stack(frames.Select(f => f.to(ScalarType.Float32)).ToArray());
    }

    /// <summary>A batch of clips [B, T, H, W, 3] from clips [T, H, W, 3] of equal size.</summary>
    public static Tensor Batch(IReadOnlyList<Tensor> clips)
    {
        if (clips.Count == 0) throw new ArgumentException("no clips given");
        for (int i = 1; i < clips.Count; i++)
            if (!clips[i].shape.SequenceEqual(clips[0].shape))
                throw new ArgumentException($"clip {i} is [{string.Join(", ", clips[i].shape)}] but clip 0 is [{string.Join(", ", clips[0].shape)}]; decode them with the same options");
        return stack(clips.ToArray());
    }

    /// <summary>Whether an ffmpeg executable can be found (a path, or a name on PATH).</summary>
    public static bool IsFfmpegAvailable(string? ffmpeg = null) =>
        FindExecutable(ffmpeg ?? Environment.GetEnvironmentVariable("MODELZOO_FFMPEG") ?? "ffmpeg") is not null;

    static string? FindExecutable(string name)
    {
        if (name.Contains(Path.DirectorySeparatorChar) || name.Contains(Path.AltDirectorySeparatorChar))
            return File.Exists(name) ? name : null;
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, name);
            if (File.Exists(candidate)) return candidate;
            if (OperatingSystem.IsWindows() && File.Exists(candidate + ".exe")) return candidate + ".exe";
        }
        return null;
    }

    static string MissingFfmpeg(string ffmpeg, string path) =>
        $"{path}: decoding video needs ffmpeg, and '{ffmpeg}' was not found (install it, e.g. `apt-get install ffmpeg`, or set MODELZOO_FFMPEG to its path); " +
        "or decode the frames yourself and pass a [frames, height, width, 3] tensor with RGB in [0, 1]";

    static string FirstLine(string text) => text.Split('\n').FirstOrDefault(l => l.Trim().Length > 0)?.Trim() ?? "";
}
