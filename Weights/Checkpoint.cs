namespace ModelZoo.Weights;

/// <summary>Opens any supported checkpoint (file or Hugging Face style directory) for streaming.</summary>
public static class Checkpoint
{
    /// <summary>File names looked for in a directory, in order of preference.</summary>
    public static readonly string[] DirectoryCandidates =
    {
        "model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json", "pytorch_model.bin",
    };

    /// <summary>Readers for formats beyond the built-in ones (safetensors, torch.save pickles, shard indexes) register here.</summary>
    public static readonly List<Func<string, byte[], ICheckpointReader?>> FormatProbes = new();

    /// <summary>Opens a checkpoint; for a PyTorch pickle, <paramref name="stateDictPath"/> names the dict to use as the
    /// state dict (dotted, e.g. "state_dict" or "model.ema"; "" for the root) instead of the automatic choice.</summary>
    public static ICheckpointReader Open(string path, string? stateDictPath)
    {
        if (stateDictPath is null) return Open(path);
        return Open(path, (file, head) => TorchPickleReader.LooksLikeZip(head) || TorchPickleReader.LooksLikePickle(head)
            ? new TorchPickleReader(file, stateDictPath)
            : throw new CheckpointException(file, "choosing a state dict applies only to PyTorch pickles (torch.save files)"));
    }

    public static ICheckpointReader Open(string path) => Open(path, OpenFile);

    static ICheckpointReader Open(string path, Func<string, byte[], ICheckpointReader> openFile)
    {
        if (Directory.Exists(path)) path = FindInDirectory(path);
        if (!File.Exists(path)) throw new CheckpointException(path, "no such file or directory");
        byte[] head = ReadHead(path, 16);
        if (head.Length == 0) throw new CheckpointException(path, "the file is empty (0 bytes)");
        return openFile(path, head);
    }

    static ICheckpointReader OpenFile(string path, byte[] head)
    {
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            return new ShardedCheckpointReader(path);
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) || LooksLikeSafetensors(head))
            return new SafetensorsReader(path);
        if (TorchScriptReader.IsArchive(path, head)) return OpenTorchScript(path);
        if (head[0] == (byte)'{')
            return new ShardedCheckpointReader(path);
        if (TorchPickleReader.LooksLikeZip(head) || TorchPickleReader.LooksLikePickle(head))
            return new TorchPickleReader(path);
        foreach (var probe in FormatProbes)
            if (probe(path, head) is ICheckpointReader reader) return reader;
        throw new CheckpointException(path, "not a recognised checkpoint (expected safetensors, a PyTorch .bin/.pt/.pth/.ckpt written by torch.save, or an .index.json)");
    }

    /// <summary>
    /// TorchScript archives (openai/CLIP's release files): our allow-listed, streaming pickle reader first; libtorch's
    /// own loader (torch.jit.load, which compiles the archive's code/) only when the pickle reader reports a feature it
    /// does not support (<see cref="UnsupportedCheckpointException"/>). A refused global, a bomb or a corrupt archive
    /// is an error and never reaches libtorch.
    /// </summary>
    static ICheckpointReader OpenTorchScript(string path)
    {
        try
        {
            return new TorchPickleReader(path);
        }
        catch (UnsupportedCheckpointException pickleError)
        {
            try
            {
                return TorchScriptReader.Open(path);
            }
            catch (CheckpointException)
            {
                throw new CheckpointException(path, $"is a TorchScript archive this library cannot read ({pickleError.Message}); {TorchScriptReader.ConversionHelp}", inner: pickleError);
            }
        }
    }

    /// <summary>The checkpoint file a directory stands for: the first of <see cref="DirectoryCandidates"/>, else its only
    /// *.index.json, else its only checkpoint-like file.</summary>
    public static string FindInDirectory(string directory)
    {
        foreach (var name in DirectoryCandidates)
        {
            var candidate = Path.Combine(directory, name);
            if (File.Exists(candidate)) return candidate;
        }
        var indexes = Directory.EnumerateFiles(directory, "*.index.json").OrderBy(f => f, StringComparer.Ordinal).ToList();
        if (indexes.Count == 1) return indexes[0];
        if (indexes.Count > 1)
            throw new CheckpointException(directory, "the directory holds several shard indexes: " + string.Join(", ", indexes.Select(Path.GetFileName)));
        var any = Directory.EnumerateFiles(directory)
            .Where(f => f.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".bin", StringComparison.OrdinalIgnoreCase)
                        || f.EndsWith(".pt", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".pth", StringComparison.OrdinalIgnoreCase)
                        || f.EndsWith(".ckpt", StringComparison.OrdinalIgnoreCase))
            .OrderBy(f => f, StringComparer.Ordinal).ToList();
        if (any.Count == 1) return any[0];
        throw new CheckpointException(directory, any.Count == 0
            ? "the directory holds no checkpoint (looked for " + string.Join(", ", DirectoryCandidates) + ", *.index.json and *.safetensors/*.bin/*.pt/*.pth/*.ckpt)"
            : "the directory holds several checkpoints and no index: " + string.Join(", ", any.Select(Path.GetFileName)));
    }

    static byte[] ReadHead(string path, int count)
    {
        try
        {
            using var stream = File.OpenRead(path);
            var buffer = new byte[Math.Min(count, stream.Length)];
            stream.ReadExactly(buffer);
            return buffer;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(path, "cannot read: " + e.Message, inner: e);
        }
    }

    /// <summary>8-byte little-endian length followed by '{'.</summary>
    static bool LooksLikeSafetensors(byte[] head) => head.Length >= 9 && head[8] == (byte)'{' && BitConverter.ToUInt64(head, 0) < (1UL << 40);
}
