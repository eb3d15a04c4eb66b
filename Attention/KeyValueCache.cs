using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Attention;

/// <summary>Keys and values of earlier positions for one attention layer ([B, L, inner] each), for incremental decoding.</summary>
public sealed class LayerKeyValueCache : IDisposable
{
    public Tensor? Keys { get; private set; }
    public Tensor? Values { get; private set; }
    public long Length => Keys?.shape[1] ?? 0;

    /// <summary>Appends new keys/values and returns everything cached so far. The cache owns its tensors.</summary>
    public (Tensor Keys, Tensor Values) Append(Tensor keys, Tensor values)
    {
        var newKeys = Keys is null ? keys.detach().clone() : cat(new[] { Keys, keys.detach() }, 1);
        var newValues = Values is null ? values.detach().clone() : cat(new[] { Values, values.detach() }, 1);
        Keys?.Dispose();
        Values?.Dispose();
        Keys = newKeys.DetachFromDisposeScope();
        Values = newValues.DetachFromDisposeScope();
        return (Keys, Values);
    }

    /// <summary>Keeps only the batch rows in <paramref name="rows"/> (beam search reorders hypotheses).</summary>
    public void SelectRows(Tensor rows)
    {
        if (Keys is null || Values is null) return;
        var k = Keys.index_select(0, rows).DetachFromDisposeScope();
        var v = Values.index_select(0, rows).DetachFromDisposeScope();
        Keys.Dispose(); Values.Dispose();
        Keys = k; Values = v;
    }

    public void Dispose()
    {
        Keys?.Dispose(); Values?.Dispose();
        Keys = null; Values = null;
    }
}

/// <summary>One <see cref="LayerKeyValueCache"/> per decoder layer.</summary>
public sealed class KeyValueCache : IDisposable
{
    public LayerKeyValueCache[] Layers { get; }
    public KeyValueCache(int layers) => Layers = Enumerable.Range(0, layers).Select(_ => new LayerKeyValueCache()).ToArray();
    public long Length => Layers.Length == 0 ? 0 : Layers[0].Length;
    public void SelectRows(Tensor rows) { foreach (var layer in Layers) layer.SelectRows(rows); }
    public void Dispose() { foreach (var layer in Layers) layer.Dispose(); }
}
