using System.Globalization;
using System.Numerics;
using System.Text;

namespace ModelZoo.Weights.Pickle;

// The values a pickle can build in this reader. Python's None is C# null; bool, long, BigInteger, double, string
// and byte[] stand for themselves. Nothing here ever runs code named by the pickle.

/// <summary>A reference to a Python global (module + name). Never resolved, imported or called.</summary>
internal sealed record PyGlobal(string Module, string Name)
{
    public string FullName => Module + "." + Name;
    public override string ToString() => FullName;
}

/// <summary>
/// An inert stand-in for an object the pickle would build with a global outside the allow-list (a class instance,
/// the result of calling a function): it records what would have been called and with what, and nothing else.
/// </summary>
internal sealed class PyObject
{
    static long _next;

    public PyObject(PyGlobal callable, object? arguments)
    {
        Callable = callable;
        Arguments = arguments;
        Id = Interlocked.Increment(ref _next);
    }

    public PyGlobal Callable { get; }
    public object? Arguments { get; }
    public object? State { get; set; }
    /// <summary>Items appended to the object (list subclasses pickle their contents this way).</summary>
    public List<object?> Items { get; } = new();
    /// <summary>Items set on the object (dict subclasses such as Lightning's AttributeDict pickle their contents this way).</summary>
    public PyDict? Mapping { get; set; }
    public long Id { get; }

    /// <summary>The class behind copyreg reconstruction (protocol 0/1 objects), else the callable itself.</summary>
    public string TypeName =>
        Callable.FullName is "copyreg._reconstructor" or "copy_reg._reconstructor" && Arguments is PyTuple { Count: > 0 } t && t[0] is PyGlobal cls
            ? cls.FullName
            : Callable.FullName;
}

internal sealed class PyTuple(object?[] items) : IReadOnlyList<object?>
{
    public static readonly PyTuple Empty = new(Array.Empty<object?>());
    readonly object?[] _items = items;
    public object? this[int index] => _items[index];
    public int Count => _items.Length;
    public IEnumerator<object?> GetEnumerator() => ((IEnumerable<object?>)_items).GetEnumerator();
    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => _items.GetEnumerator();
}

internal sealed class PyList
{
    public List<object?> Items { get; } = new();
}

internal sealed class PySet
{
    public List<object?> Items { get; } = new();
}

/// <summary>A dict or OrderedDict: insertion-ordered, keys compared by value for strings, numbers, bytes and tuples.</summary>
internal sealed class PyDict
{
    readonly Dictionary<DictKey, int> _index = new();
    public List<KeyValuePair<object?, object?>> Items { get; } = new();
    /// <summary>State set by BUILD (OrderedDict state_dicts carry `_metadata` this way); kept, never interpreted.</summary>
    public object? State { get; set; }
    /// <summary>The first key that was set more than once, if any (a Python dict keeps the last value).</summary>
    public object? FirstDuplicateKey { get; private set; }
    public bool HasDuplicate { get; private set; }

    public void Set(object? key, object? value)
    {
        var k = DictKey.Of(key);
        if (_index.TryGetValue(k, out int at))
        {
            if (!HasDuplicate) { HasDuplicate = true; FirstDuplicateKey = key; }
            Items[at] = new(Items[at].Key, value);
            return;
        }
        _index[k] = Items.Count;
        Items.Add(new(key, value));
    }

    public bool TryGet(string key, out object? value)
    {
        if (_index.TryGetValue(DictKey.Of(key), out int at)) { value = Items[at].Value; return true; }
        value = null;
        return false;
    }

    public int Count => Items.Count;
}

/// <summary>A storage named by a persistent id: where its bytes live is the container's business (zip entry or legacy offset).</summary>
internal sealed record StorageRef(string Key, string StorageType, string? Dtype, string Location, long ElementCount, long ElementOffset = 0)
{
    public int ElementSize => Dtype is null ? 1 : StorageDtype.ElementSize(Dtype);
}

/// <summary>A tensor as torch._utils._rebuild_tensor_v2 describes it: a strided view of a storage. Its data is read only on demand.</summary>
internal sealed record TensorRef(StorageRef Storage, long Offset, long[] Shape, long[] Stride)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Elements of the storage the view spans from its offset (0 for an empty tensor).</summary>
    public long Extent()
    {
        if (Shape.Any(s => s == 0)) return 0;
        long extent = 1;
        for (int i = 0; i < Shape.Length; i++) extent = checked(extent + checked((Shape[i] - 1) * Stride[i]));
        return extent;
    }

    public bool IsContiguous
    {
        get
        {
            long expected = 1;
            for (int i = Shape.Length - 1; i >= 0; i--)
            {
                if (Shape[i] == 1) continue;
                if (Stride[i] != expected) return false;
                expected *= Shape[i];
            }
            return true;
        }
    }
}

/// <summary>A dictionary key compared by value, as Python compares str, int, float, bool, bytes, None and tuples of them.</summary>
internal readonly record struct DictKey(char Kind, string Text)
{
    const int MaxTupleDepth = 16;
    const int MaxKeyText = 1 << 16;

    public static DictKey Of(object? key) => Of(key, 0);

    static DictKey Of(object? key, int depth) => key switch
    {
        null => new('n', ""),
        string s => new('s', s),
        bool b => new('i', b ? "1" : "0"),
        long l => new('i', l.ToString(CultureInfo.InvariantCulture)),
        BigInteger big => new('i', big.ToString(CultureInfo.InvariantCulture)),
        double d when Math.Abs(d) < 9e15 && d == Math.Floor(d) => new('i', ((long)d).ToString(CultureInfo.InvariantCulture)),
        double d => new('f', d.ToString("R", CultureInfo.InvariantCulture)),
        byte[] bytes => new('b', Convert.ToBase64String(bytes)),
        PyGlobal g => new('g', g.FullName),
        PyObject o => new('o', o.Id.ToString(CultureInfo.InvariantCulture)),
        PyTuple t => new('t', TupleText(t, depth)),
        _ => throw new PickleException($"a {PickleMachine.TypeName(key)} cannot be a dict key"),
    };

    static string TupleText(PyTuple tuple, int depth)
    {
        if (depth >= MaxTupleDepth) throw new PickleException($"a dict key nests tuples deeper than {MaxTupleDepth} levels");
        var sb = new StringBuilder();
        foreach (var item in tuple)
        {
            var k = Of(item, depth + 1);
            sb.Append(k.Kind).Append(k.Text.Length).Append(':').Append(k.Text);
            if (sb.Length > MaxKeyText) throw new PickleException("a dict key is too large");
        }
        return sb.ToString();
    }
}

/// <summary>A malformed or refused pickle; the reader adds the file name. <see cref="Unsupported"/> marks a pickle
/// that may be sound but uses a feature this interpreter does not implement (never a refusal or a bomb).</summary>
internal sealed class PickleException(string message, bool unsupported = false) : Exception(message)
{
    public bool Unsupported { get; } = unsupported;
}
