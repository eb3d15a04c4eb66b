namespace ModelZoo.Weights;

/// <summary>
/// Writes files through a fresh temporary file in the same directory that is renamed over the target only once it
/// is complete and flushed to disk, so a crash or an error never leaves a half-written file under the final name
/// (and an existing larger file is replaced, never partly overwritten).
/// </summary>
public static class AtomicFile
{
    /// <summary>A new, empty temporary file beside <paramref name="path"/>; the caller writes it and calls <see cref="Commit"/>.</summary>
    public static (string TempPath, FileStream Stream) Create(string path)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        string temp = Path.Combine(directory, "." + Path.GetFileName(path) + ".tmp-" + Guid.NewGuid().ToString("N")[..12]);
        return (temp, new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20));
    }

    /// <summary>Flushes to disk, closes and renames the temporary file over <paramref name="path"/>.</summary>
    public static void Commit(string tempPath, FileStream stream, string path)
    {
        stream.Flush(flushToDisk: true);
        stream.Dispose();
        File.Move(tempPath, path, overwrite: true);
    }

    /// <summary>Deletes a temporary file after a failure (best effort).</summary>
    public static void Abandon(string tempPath, FileStream? stream)
    {
        try { stream?.Dispose(); } catch (IOException) { }
        try { File.Delete(tempPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Writes a whole file atomically.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var (temp, stream) = Create(path);
        try
        {
            write(stream);
            Commit(temp, stream, path);
        }
        catch
        {
            Abandon(temp, stream);
            throw;
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, stream => { using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false), leaveOpen: true); writer.Write(text); });
}
