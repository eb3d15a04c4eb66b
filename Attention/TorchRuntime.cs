using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Attention;

/// <summary>Parses the device and dtype options used everywhere (--device cpu|cuda[:N], --dtype fp32|bf16|fp16).</summary>
public static class TorchRuntime
{
    public const string CudaHelp =
        "CUDA was requested but is not available. CUDA needs the native package TorchSharp-cuda-linux instead of " +
        "libtorch-cpu-linux-x64 (in this repository: build with -p:ModelZooTorchBackend=cuda; see README, 'Using CUDA') " +
        "and a working NVIDIA driver (check nvidia-smi).";

    /// <summary>"cpu", "cuda" or "cuda:N"; a CUDA device that is not available is an error saying how to get one.</summary>
    public static Device ParseDevice(string? name)
    {
        var text = string.IsNullOrWhiteSpace(name) ? "cpu" : name.Trim().ToLowerInvariant();
        if (text == "cpu") return CPU;
        if (text == "cuda" || text.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!cuda.is_available()) throw new NotSupportedException(CudaHelp);
            int index = 0;
            if (text.Length > 4 && !int.TryParse(text.AsSpan(5), out index))
                throw new ArgumentException($"bad device '{name}': expected cpu, cuda or cuda:N");
            if (index >= cuda.device_count())
                throw new ArgumentException($"device '{name}' does not exist: {cuda.device_count()} CUDA device(s) available");
            return new Device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"unknown device '{name}': expected cpu, cuda or cuda:N");
    }

    /// <summary>fp32|float32, bf16|bfloat16, fp16|float16|half.</summary>
    public static ScalarType ParseDtype(string? name) => (name ?? "fp32").Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" or "float" or "f32" => ScalarType.Float32,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        "fp16" or "float16" or "half" or "f16" => ScalarType.Float16,
        _ => throw new ArgumentException($"unknown dtype '{name}': expected fp32, bf16 or fp16"),
    };

    public static string DtypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "fp32",
        ScalarType.BFloat16 => "bf16",
        ScalarType.Float16 => "fp16",
        ScalarType.Float64 => "fp64",
        _ => dtype.ToString().ToLowerInvariant(),
    };
}
