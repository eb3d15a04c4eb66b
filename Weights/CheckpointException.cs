namespace ModelZoo.Weights;

/// <summary>A checkpoint file that cannot be read or does not fit the model. The message names the file and, where known, the key.</summary>
public class CheckpointException : Exception
{
    public string? FilePath { get; }
    public string? Key { get; }

    public CheckpointException(string? filePath, string message, string? key = null, Exception? inner = null)
        : base(Compose(filePath, key, message), inner)
    {
        FilePath = filePath;
        Key = key;
    }

    static string Compose(string? file, string? key, string message) =>
        (file is null ? "" : file + ": ") + (key is null ? "" : $"tensor '{key}': ") + message;
}

/// <summary>
/// A checkpoint that may well be sound but uses something this library's own readers do not support (a newer pickle
/// protocol, compressed records, an old TorchScript layout). Only this kind of failure lets a TorchScript archive
/// fall back to libtorch's loader; refusals (globals outside the allow-list), bombs and corruption never do.
/// </summary>
public sealed class UnsupportedCheckpointException : CheckpointException
{
    public UnsupportedCheckpointException(string? filePath, string message, string? key = null, Exception? inner = null)
        : base(filePath, message, key, inner) { }
}
