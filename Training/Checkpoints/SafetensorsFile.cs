using ModelZoo.Weights;
using static TorchSharp.torch;

namespace ModelZoo.Training.Checkpoints;

/// <summary>Named tensors to and from one .safetensors file (through the library's atomic writer and streaming reader).</summary>
public static class SafetensorsFile
{
    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        SafetensorsWriter.Write(path, tensors.ToDictionary(t => t.Name, t => t.Tensor, StringComparer.Ordinal), new SafetensorsWriteOptions { Metadata = metadata });

    /// <summary>Every tensor of a file, read onto the CPU in its stored dtype (the caller disposes them).</summary>
    public static Dictionary<string, Tensor> ReadAll(string path)
    {
        using var reader = new SafetensorsReader(path);
        return reader.Entries.ToDictionary(e => e.Name, e => reader.Read(e.Name), StringComparer.Ordinal);
    }
}
