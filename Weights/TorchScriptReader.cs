using System.IO.Compression;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Weights;

/// <summary>
/// Reads the weights of a TorchScript archive (the format of openai/CLIP's release files: a zip with code/,
/// constants.pkl and data.pkl) through libtorch's own loader, as a checkpoint of its state_dict. The archive is
/// loaded whole (TorchScript cannot be streamed); its tensors are copied out and the script module freed.
/// </summary>
public sealed class TorchScriptReader : ICheckpointReader
{
    /// <summary>How to get a safetensors file when an archive cannot be read here.</summary>
    public const string ConversionHelp =
        "convert it once with Python: `import torch; from safetensors.torch import save_file; " +
        "sd = torch.jit.load(PATH, map_location='cpu').state_dict(); " +
        "save_file({k: v.contiguous() for k, v in sd.items()}, 'model.safetensors')` and pass model.safetensors";

    readonly Dictionary<string, Tensor> _tensors;

    public string Path { get; }
    public string Format => "TorchScript archive";
    public IReadOnlyList<TensorEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; } = new Dictionary<string, string>();

    TorchScriptReader(string path, Dictionary<string, Tensor> tensors)
    {
        Path = path;
        _tensors = tensors;
        Entries = tensors.Select(kv => new TensorEntry(kv.Key, StorageDtype.FromScalarType(kv.Value.dtype), kv.Value.shape)).ToList();
    }

    public static TorchScriptReader Open(string path)
    {
        jit.ScriptModule module;
        try
        {
            module = jit.load(path, DeviceType.CPU);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new CheckpointException(path, $"is a TorchScript archive that libtorch could not load ({e.Message.Split('\n')[0].Trim()}); {ConversionHelp}", inner: e);
        }
        using (module)
        {
            var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            using (no_grad())
            {
                foreach (var (name, parameter) in module.named_parameters()) tensors[name] = parameter.detach().clone().DetachFromDisposeScope();
                foreach (var (name, buffer) in module.named_buffers()) tensors[name] = buffer.detach().clone().DetachFromDisposeScope();
            }
            return new TorchScriptReader(path, tensors);
        }
    }

    public Tensor Read(string name) =>
        _tensors.TryGetValue(name, out var tensor) ? tensor.clone() : throw new CheckpointException(Path, "no such tensor", name);

    public void Dispose()
    {
        foreach (var tensor in _tensors.Values) tensor.Dispose();
        _tensors.Clear();
    }

    /// <summary>A zip whose entries include ARCHIVE/constants.pkl or ARCHIVE/code/: TorchScript, not a torch.save pickle.</summary>
    public static bool IsArchive(string path, byte[] head)
    {
        if (head.Length < 4 || head[0] != (byte)'P' || head[1] != (byte)'K') return false;
        try
        {
            using var zip = ZipFile.OpenRead(path);
            return zip.Entries.Any(e => e.FullName.EndsWith("/constants.pkl", StringComparison.Ordinal) || e.FullName.Contains("/code/", StringComparison.Ordinal));
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
