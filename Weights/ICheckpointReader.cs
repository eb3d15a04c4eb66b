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

/// <summary>
/// A reader that can fill an existing tensor directly (the model's own parameter), so loading needs no temporary copy
/// of the tensor: peak memory stays at the model's size.
/// </summary>
public interface ICheckpointDirectReader
{
    /// <summary>Reads the tensor straight into <paramref name="destination"/> when it is a contiguous CPU tensor of the
    /// stored dtype and shape; false (nothing read) when that is not possible, and the caller uses Read.</summary>
    bool TryReadInto(string name, Tensor destination);
}
