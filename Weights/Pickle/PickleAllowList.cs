using System.Numerics;
using System.Text;

namespace ModelZoo.Weights.Pickle;

/// <summary>
/// The globals a checkpoint pickle may use, each interpreted by our own code: the tensor-rebuild functions,
/// storage types (data, never called), OrderedDict and the plain containers. Nothing else is ever called.
/// </summary>
internal static class PickleAllowList
{
    public const string Description =
        "torch._utils._rebuild_tensor_v2/_rebuild_tensor/_rebuild_parameter, torch._tensor._rebuild_from_type_v2, torch.*Storage, " +
        "collections.OrderedDict and the plain containers";

    static readonly Dictionary<string, string> StorageDtypes = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = "F32", ["DoubleStorage"] = "F64", ["HalfStorage"] = "F16", ["BFloat16Storage"] = "BF16",
        ["LongStorage"] = "I64", ["IntStorage"] = "I32", ["ShortStorage"] = "I16", ["CharStorage"] = "I8",
        ["ByteStorage"] = "U8", ["BoolStorage"] = "BOOL", ["UntypedStorage"] = "U8",
    };

    static readonly HashSet<string> Callables = new(StringComparer.Ordinal)
    {
        "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2",
        "collections.OrderedDict", "builtins.dict", "builtins.list", "builtins.tuple", "builtins.set", "builtins.frozenset",
        "torch.Size", "_codecs.encode", "builtins.bytearray", "builtins.bytes",
        // TorchScript archives wrap typed lists and dicts in these; each returns its first argument.
        "torch.jit._pickle.build_intlist", "torch.jit._pickle.build_tensorlist", "torch.jit._pickle.build_doublelist",
        "torch.jit._pickle.build_boollist", "torch.jit._pickle.restore_type_tag",
    };

    /// <summary>Globals that appear as plain data (a tensor's type, a dtype) and are never called.</summary>
    static readonly HashSet<string> DataGlobals = new(StringComparer.Ordinal)
    {
        "torch.Tensor", "torch.nn.parameter.Parameter", "torch.float32", "torch.float16", "torch.bfloat16", "torch.float64",
        "torch.int64", "torch.int32", "torch.int16", "torch.int8", "torch.uint8", "torch.bool", "torch.float", "torch.half",
        "torch.double", "torch.long", "torch.int",
    };

    /// <summary>Storage types: torch.FloatStorage, torch.cuda.HalfStorage, ... (also those whose dtype we cannot read).</summary>
    public static bool IsStorageType(PyGlobal g) => g.Module is "torch" or "torch.cuda" && g.Name.EndsWith("Storage", StringComparison.Ordinal);

    /// <summary>The safetensors dtype of a storage type; null for storage types we cannot read (complex, quantized, float8).</summary>
    public static string? DtypeOf(PyGlobal storageType) => StorageDtypes.GetValueOrDefault(storageType.Name);

    public static bool IsKnown(PyGlobal g) => IsStorageType(g) || Callables.Contains(g.FullName) || DataGlobals.Contains(g.FullName);

    public static bool IsCallable(PyGlobal g) => Callables.Contains(g.FullName);

    public static object? Call(PyGlobal g, PyTuple args, PickleMachine machine, long at)
    {
        switch (g.FullName)
        {
            case "torch._utils._rebuild_tensor_v2":
            case "torch._utils._rebuild_tensor":
                return RebuildTensor(g, args);
            case "torch._utils._rebuild_parameter":
            case "torch._utils._rebuild_parameter_with_state":
                Require(g, args, 1);
                return args[0] is TensorRef data ? data : throw Bad(g, "data", args[0]);
            case "torch._tensor._rebuild_from_type_v2":
                {
                    // (func, new_type, args, state): a tensor (or Parameter) with Python attributes.
                    Require(g, args, 3);
                    if (args[0] is not PyGlobal func || !IsCallable(func)) throw Bad(g, "func", args[0]);
                    if (args[2] is not PyTuple inner) throw Bad(g, "args", args[2]);
                    if (args[1] is PyGlobal type && type.FullName is not ("torch.Tensor" or "torch.nn.parameter.Parameter"))
                        return new PyObject(type, args); // a tensor subclass: kept inert
                    return machine.CallAllowed(func, inner, at);
                }
            case "collections.OrderedDict":
            case "builtins.dict":
                {
                    var dict = new PyDict();
                    if (args.Count > 0 && args[0] is not null)
                        foreach (var pair in Iterate(g, args[0]))
                        {
                            var kv = Iterate(g, pair).ToList();
                            if (kv.Count != 2) throw new PickleException($"{g.FullName}() given an item that is not a (key, value) pair");
                            dict.Set(kv[0], kv[1]);
                        }
                    return dict;
                }
            case "builtins.list":
                {
                    var list = new PyList();
                    if (args.Count > 0) list.Items.AddRange(Iterate(g, args[0]));
                    return list;
                }
            case "builtins.tuple":
            case "torch.Size":
                return args.Count > 0 ? new PyTuple(Iterate(g, args[0]).ToArray()) : PyTuple.Empty;
            case "builtins.set":
            case "builtins.frozenset":
                {
                    var set = new PySet();
                    if (args.Count > 0) set.Items.AddRange(Iterate(g, args[0]));
                    return set;
                }
            case "_codecs.encode":
                {
                    // Protocol 2 spells bytes as _codecs.encode(text, "latin1").
                    Require(g, args, 1);
                    if (args[0] is not string text) throw Bad(g, "obj", args[0]);
                    string encoding = args.Count > 1 && args[1] is string e ? e.ToLowerInvariant() : "utf-8";
                    return encoding is "latin1" or "latin-1" or "iso-8859-1" ? Encoding.Latin1.GetBytes(text) : Encoding.UTF8.GetBytes(text);
                }
            case "torch.jit._pickle.build_intlist":
            case "torch.jit._pickle.build_tensorlist":
            case "torch.jit._pickle.build_doublelist":
            case "torch.jit._pickle.build_boollist":
            case "torch.jit._pickle.restore_type_tag":
                Require(g, args, 1);
                return args[0];
            case "builtins.bytearray":
            case "builtins.bytes":
                return args.Count == 0 ? Array.Empty<byte>() : args[0] is byte[] bytes ? bytes : throw Bad(g, "source", args[0]);
            default:
                throw new PickleException($"{g.FullName} is not callable here");
        }
    }

    static IEnumerable<object?> Iterate(PyGlobal g, object? value) => value switch
    {
        PyList list => list.Items,
        PyTuple tuple => tuple,
        PySet set => set.Items,
        PyDict dict => dict.Items.Select(kv => kv.Key),
        _ => throw Bad(g, "iterable", value),
    };

    static void Require(PyGlobal g, PyTuple args, int count)
    {
        if (args.Count < count) throw new PickleException($"{g.FullName} called with {args.Count} arguments, needs {count}");
    }

    static PickleException Bad(PyGlobal g, string argument, object? value) =>
        new($"argument '{argument}' of {g.FullName} is a {PickleMachine.TypeName(value)}" +
            (value is PyObject or PyGlobal ? " (outside the allow-list; nothing was called)" : ""));

    const int MaxDims = 64;

    static TensorRef RebuildTensor(PyGlobal g, PyTuple args)
    {
        Require(g, args, 4);
        if (args[0] is not StorageRef storage) throw Bad(g, "storage", args[0]);
        long offset = AsInt(g, "storage_offset", args[1]);
        var shape = Ints(g, "size", args[2]);
        var stride = Ints(g, "stride", args[3]);
        if (shape.Length != stride.Length)
            throw new PickleException($"{g.FullName}: size has {shape.Length} dimensions but stride has {stride.Length}");
        long elements = 1;
        foreach (var s in shape)
            if (s != 0 && elements > long.MaxValue / s) throw new PickleException($"{g.FullName}: size [{string.Join(", ", shape)}] is too large");
            else elements *= s;
        return new TensorRef(storage, offset, shape, stride);
    }

    static long[] Ints(PyGlobal g, string argument, object? value)
    {
        if (value is not PyTuple tuple) throw Bad(g, argument, value);
        if (tuple.Count > MaxDims) throw new PickleException($"{g.FullName}: {argument} has {tuple.Count} dimensions (more than {MaxDims})");
        return tuple.Select(v => AsInt(g, argument, v)).ToArray();
    }

    static long AsInt(PyGlobal g, string argument, object? value) => value switch
    {
        long l when l >= 0 => l,
        long l => throw new PickleException($"{g.FullName}: {argument} holds the negative value {l}"),
        BigInteger => throw new PickleException($"{g.FullName}: {argument} holds a value too large for 64 bits"),
        _ => throw Bad(g, argument, value),
    };
}
