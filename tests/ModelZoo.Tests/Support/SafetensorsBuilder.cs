using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Support;

/// <summary>Writes small safetensors files byte by byte for tests (independent of the library's own writer).</summary>
public static class SafetensorsBuilder
{
    public static byte[] Build(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new Dictionary<string, object>();
        if (metadata is not null) header["__metadata__"] = metadata;
        var data = new MemoryStream();
        foreach (var (name, tensor) in tensors)
        {
            var bytes = tensor.contiguous().cpu().bytes.ToArray();
            header[name] = new
            {
                dtype = ModelZoo.Weights.StorageDtype.FromScalarType(tensor.dtype),
                shape = tensor.shape,
                data_offsets = new[] { data.Length, data.Length + bytes.Length },
            };
            data.Write(bytes);
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        var output = new MemoryStream();
        output.Write(BitConverter.GetBytes((ulong)json.Length));
        output.Write(json);
        output.Write(data.ToArray());
        return output.ToArray();
    }

    public static string Write(string path, IReadOnlyDictionary<string, Tensor> tensors)
    {
        File.WriteAllBytes(path, Build(tensors));
        return path;
    }
}
