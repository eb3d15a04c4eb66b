using TorchSharp;

namespace ModelZoo.Weights;

/// <summary>Element types as checkpoint files name them (safetensors spellings), with their TorchSharp equivalents.</summary>
public static class StorageDtype
{
    static readonly Dictionary<string, (torch.ScalarType Type, int Size)> Known = new(StringComparer.Ordinal)
    {
        ["F64"] = (torch.ScalarType.Float64, 8),
        ["F32"] = (torch.ScalarType.Float32, 4),
        ["F16"] = (torch.ScalarType.Float16, 2),
        ["BF16"] = (torch.ScalarType.BFloat16, 2),
        ["I64"] = (torch.ScalarType.Int64, 8),
        ["I32"] = (torch.ScalarType.Int32, 4),
        ["I16"] = (torch.ScalarType.Int16, 2),
        ["I8"] = (torch.ScalarType.Int8, 1),
        ["U8"] = (torch.ScalarType.Byte, 1),
        ["BOOL"] = (torch.ScalarType.Bool, 1),
    };

    public static bool IsKnown(string name) => Known.ContainsKey(name);

    public static torch.ScalarType ToScalarType(string name) =>
        Known.TryGetValue(name, out var t) ? t.Type : throw new ArgumentException($"unknown dtype '{name}' (known: {string.Join(", ", Known.Keys)})");

    public static int ElementSize(string name) =>
        Known.TryGetValue(name, out var t) ? t.Size : throw new ArgumentException($"unknown dtype '{name}'");

    public static string FromScalarType(torch.ScalarType type)
    {
        foreach (var (name, info) in Known)
            if (info.Type == type) return name;
        throw new ArgumentException($"dtype {type} has no checkpoint spelling");
    }

    public static bool IsFloating(string name) => name is "F64" or "F32" or "F16" or "BF16";
}
