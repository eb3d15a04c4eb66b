using System.Text;
using System.Text.Json;
using ModelZoo.Evaluation.Data;
using ModelZoo.Weights;
using static TorchSharp.torch;

namespace ModelZoo.Training.Checkpoints;

/// <summary>
/// Writes named tensors as one .safetensors file (header, then the raw little-endian data in header order),
/// atomically. Training checkpoints and fine-tuned models use it; the library's readers load the result.
/// </summary>
public static class SafetensorsFile
{
    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var header = new Dictionary<string, object>(StringComparer.Ordinal);
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (name, tensor) in list)
        {
            if (header.ContainsKey(name)) throw new ArgumentException($"tensor '{name}' is written twice");
            long bytes = tensor.numel() * tensor.ElementSize;
            header[name] = new { dtype = StorageDtype.FromScalarType(tensor.dtype), shape = tensor.shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
        int padding = (8 - json.Length % 8) % 8;
        AtomicFile.Write(path, stream =>
        {
            stream.Write(BitConverter.GetBytes((ulong)(json.Length + padding)));
            stream.Write(json);
            for (int i = 0; i < padding; i++) stream.WriteByte((byte)' ');
            foreach (var (_, tensor) in list) TensorBytes.WriteToStream(stream, tensor);
        });
    }

    /// <summary>Every tensor of a file, read onto the CPU in its stored dtype (the caller disposes them).</summary>
    public static Dictionary<string, Tensor> ReadAll(string path)
    {
        using var reader = new SafetensorsReader(path);
        return reader.Entries.ToDictionary(e => e.Name, e => reader.Read(e.Name), StringComparer.Ordinal);
    }
}
