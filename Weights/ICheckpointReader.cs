using static TorchSharp.torch;

namespace ModelZoo.Weights;

/// <summary>One tensor stored in a checkpoint: its name, stored element type (safetensors spelling) and shape.</summary>
public sealed record TensorEntry(string Name, string Dtype, long[] Shape)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public long ByteLength => ElementCount * StorageDtype.ElementSize(Dtype);
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// A checkpoint opened for streaming: the entries are known from headers alone, and each tensor is read only when
/// asked for, so a checkpoint never sits in memory beside the model.
/// </summary>
public interface ICheckpointReader : IDisposable
{
    /// <summary>The file or directory opened.</summary>
    string Path { get; }
    /// <summary>"safetensors", "safetensors (sharded)", "pytorch zip pickle", ...</summary>
    string Format { get; }
    IReadOnlyList<TensorEntry> Entries { get; }
    /// <summary>File metadata (safetensors __metadata__) and, for pickles, the non-tensor entries found (described, never executed).</summary>
    IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Reads one tensor onto the CPU in its stored dtype. The caller owns (and disposes) the result.</summary>
    Tensor Read(string name);
}
