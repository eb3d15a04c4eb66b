using static TorchSharp.torch;

namespace ModelZoo.Weights;

/// <summary>Moves raw bytes between streams and the memory of contiguous CPU tensors, in chunks (no 2 GB limit).</summary>
public static class TensorBytes
{
    const long ChunkBytes = 1 << 24;

    /// <summary>Fills a contiguous CPU tensor with exactly <paramref name="length"/> bytes from the stream's current position.</summary>
    public static void ReadFromStream(Stream stream, Tensor destination, long length, string? file = null, string? key = null)
    {
        long size = destination.numel() * destination.ElementSize;
        if (size != length) throw new CheckpointException(file, $"expected {size} bytes, the entry has {length}", key);
        if (!destination.is_contiguous() || destination.device_type != TorchSharp.DeviceType.CPU)
            throw new ArgumentException("destination must be a contiguous CPU tensor");
        long done = 0;
        try
        {
            foreach (var slice in Slices(destination))
            {
                using (slice)
                {
                    stream.ReadExactly(slice.bytes);
                    done += slice.numel() * slice.ElementSize;
                }
            }
        }
        catch (EndOfStreamException)
        {
            throw new CheckpointException(file, $"the file ended after {done} of {length} bytes of this tensor", key);
        }
    }

    /// <summary>Writes the bytes of a tensor (moved to the CPU and made contiguous first) to the stream.</summary>
    public static void WriteToStream(Stream stream, Tensor source)
    {
        using var contiguous = source.cpu().contiguous();
        foreach (var slice in Slices(contiguous))
            using (slice) stream.Write(slice.bytes);
    }

    /// <summary>Reverses the bytes of every element of a contiguous CPU tensor in place (big-endian files).</summary>
    public static void SwapByteOrder(Tensor tensor)
    {
        int size = (int)tensor.ElementSize;
        if (size == 1) return;
        if (!tensor.is_contiguous() || tensor.device_type != TorchSharp.DeviceType.CPU)
            throw new ArgumentException("the tensor must be a contiguous CPU tensor");
        foreach (var slice in Slices(tensor))
            using (slice)
            {
                var bytes = slice.bytes;
                for (int i = 0; i + size <= bytes.Length; i += size) bytes.Slice(i, size).Reverse();
            }
    }

    /// <summary>1-D views of at most 16 MB over a contiguous tensor.</summary>
    static IEnumerable<Tensor> Slices(Tensor tensor)
    {
        long count = tensor.numel();
        if (count == 0) yield break;
        long perSlice = Math.Max(1, ChunkBytes / tensor.ElementSize);
        using var flat = tensor.view(-1);
        for (long start = 0; start < count; start += perSlice)
            yield return flat.narrow(0, start, Math.Min(perSlice, count - start));
    }
}
