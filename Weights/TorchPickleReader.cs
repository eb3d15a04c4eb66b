using System.Numerics;
using System.Text;
using ModelZoo.Weights.Pickle;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Weights;

/// <summary>
/// Reads checkpoints written by <c>torch.save</c> without running any of their code: the zip format (any top folder
/// name, <c>data.pkl</c> plus one member per storage; .bin/.pt/.pth and Lightning .ckpt) and the legacy format
/// (before PyTorch 1.6: consecutive pickles followed by the raw storages). Opening runs our own pickle interpreter
/// over the small pickle part only, with an allow-list of globals (see <see cref="PickleAllowList"/>), and indexes
/// every tensor (dtype, shape, storage, offset, strides); <see cref="Read"/> then reads one tensor's bytes on demand.
/// <para>Which dict is the state dict: if the root dict holds tensors directly, the root; otherwise the first of
/// <see cref="StateDictKeys"/> whose value is a dict holding tensors (applied again inside it, so
/// {"model": {"state_dict": ...}} works); otherwise the root. Nested dicts (and lists) inside the state dict are
/// flattened to dotted keys ({"encoder": {"w": t}} gives "encoder.w"). Everything outside the state dict (epoch,
/// optimizer states, hyper-parameters) is described in <see cref="Metadata"/> and never interpreted; objects of
/// globals outside the allow-list there stay inert placeholders. Inside the state dict such an object is an error
/// naming the global. Prefixes such as "module." are left to key maps.</para>
/// </summary>
public sealed class TorchPickleReader : ICheckpointReader, ICheckpointDirectReader
{
    public const string ZipFormat = "pytorch zip pickle";
    public const string LegacyFormat = "pytorch legacy pickle";
    public const string TorchScriptFormat = "torchscript archive";

    /// <summary>Keys looked for, in this order, when the root dict holds no tensors itself.</summary>
    public static readonly IReadOnlyList<string> StateDictKeys =
        new[] { "state_dict", "model_state_dict", "model", "module", "net", "network", "weights", "params", "ema" };

    static readonly BigInteger LegacyMagic = BigInteger.Parse("119547037146038801333356");
    const long LegacyProtocolVersion = 1001;
    const int MaxNesting = 32;

    readonly FileStream _stream;
    readonly Dictionary<string, (TensorEntry Entry, TensorRef Tensor)> _index = new(StringComparer.Ordinal);
    readonly List<TensorEntry> _entries = new();
    readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);
    /// <summary>Storage key → where its bytes are in the file.</summary>
    readonly Dictionary<string, (long Offset, long Length)> _storageData = new(StringComparer.Ordinal);
    bool _bigEndian;

    public string Path { get; }
    public string Format { get; private set; } = ZipFormat;
    public IReadOnlyList<TensorEntry> Entries => _entries;
    public IReadOnlyDictionary<string, string> Metadata => _metadata;
    /// <summary>Dotted path of the dict used as the state dict ("" for the root).</summary>
    public string StateDictPath { get; private set; } = "";

    /// <summary>True when the file starts like a zip archive (torch.save since PyTorch 1.6).</summary>
    public static bool LooksLikeZip(ReadOnlySpan<byte> head) =>
        head.Length >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && (head[2] == 3 && head[3] == 4 || head[2] == 5 && head[3] == 6);

    /// <summary>True when the file starts with a pickle (the legacy torch.save format starts with a pickled magic number).</summary>
    public static bool LooksLikePickle(ReadOnlySpan<byte> head) => head.Length >= 2 && head[0] == 0x80 && head[1] <= 5;

    /// <param name="path">The checkpoint file.</param>
    /// <param name="stateDictPath">Dotted path of the dict to use as the state dict (e.g. "state_dict", "model.ema");
    /// null picks it by the rule in the class summary.</param>
    public TorchPickleReader(string path, string? stateDictPath = null)
    {
        Path = path;
        try
        {
            _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 12, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(path, "cannot open: " + e.Message, inner: e);
        }
        try
        {
            if (_stream.Length == 0) throw new CheckpointException(path, "the file is empty (0 bytes)");
            var head = ZipDirectory.ReadAt(_stream, 0, (int)Math.Min(4, _stream.Length));
            var (root, storages, foreign) = LooksLikeZip(head) ? OpenZip() : OpenLegacy();
            Index(root, stateDictPath);
            if (foreign.Count > 0) _metadata["pickle.foreign_globals"] = string.Join(", ", foreign) + " (never called)";
        }
        catch (Exception e) when (e is not CheckpointException)
        {
            _stream.Dispose();
            throw e is PickleException { Unsupported: true } ? new UnsupportedCheckpointException(path, e.Message, inner: e)
                : e is PickleException or IOException or InvalidDataException or OverflowException or ArgumentException or FormatException
                ? new CheckpointException(path, e.Message, inner: e)
                : e;
        }
        catch
        {
            _stream.Dispose();
            throw;
        }
    }

    // ---- containers -------------------------------------------------------------------------------------------

    (object? Root, Dictionary<string, StorageRef> Storages, IReadOnlyCollection<string> Foreign) OpenZip()
    {
        Format = ZipFormat;
        var members = ZipDirectory.Read(_stream);
        var pickles = members.Values.Where(m => m.Name == "data.pkl" || m.Name.EndsWith("/data.pkl", StringComparison.Ordinal) && m.Name.IndexOf('/') == m.Name.Length - 9).ToList();
        bool torchScript = members.Keys.Any(n => n.EndsWith("constants.pkl", StringComparison.Ordinal) || n.Contains("/code/", StringComparison.Ordinal));
        if (pickles.Count == 0)
            throw torchScript
                ? Unsupported("a TorchScript archive without data.pkl (an old TorchScript layout this reader does not support)")
                : Error("a zip archive without data.pkl: not a torch.save checkpoint");
        if (pickles.Count > 1) throw Error("the zip archive holds several data.pkl records: " + string.Join(", ", pickles.Select(p => p.Name)));
        var pickle = pickles[0];
        string prefix = pickle.Name[..^"data.pkl".Length];
        if (pickle.Method != 0) throw Unsupported($"'{pickle.Name}' is compressed (method {pickle.Method}); torch.save stores its records uncompressed");
        if (members.TryGetValue(prefix + "byteorder", out var byteOrder) && byteOrder.Method == 0 && byteOrder.Size <= 16)
        {
            string order = Encoding.ASCII.GetString(ZipDirectory.ReadAt(_stream, byteOrder.DataOffset, (int)byteOrder.Size)).Trim();
            if (order is not ("little" or "big")) throw Error($"'{byteOrder.Name}' says '{order}', expected little or big");
            _bigEndian = order == "big";
        }

        var storages = new Dictionary<string, StorageRef>(StringComparer.Ordinal);
        var machine = new PickleMachine(new PickleInput(_stream, pickle.DataOffset, pickle.Size), pid =>
        {
            // ('storage', storage_type, key, location, numel)
            if (pid is not PyTuple { Count: 5 } t || t[0] is not string kind || kind != "storage")
                throw new PickleException($"unsupported persistent id {Describe(pid)}", unsupported: true);
            var storage = MakeStorage(t[1], t[2], t[3], t[4]);
            if (storages.TryGetValue(storage.Key, out var known) && known.Dtype != storage.Dtype)
                throw new PickleException($"storage '{storage.Key}' is used as both {known.StorageType} and {storage.StorageType}");
            storages[storage.Key] = storage;
            return storage;
        });
        object? root;
        try
        {
            root = machine.Run();
        }
        catch (PickleException e)
        {
            throw e.Unsupported ? Unsupported($"{pickle.Name}: {e.Message}") : Error($"{pickle.Name}: {e.Message}");
        }
        if (torchScript && root is PyObject) Format = TorchScriptFormat;
        foreach (var storage in storages.Values)
            if (members.TryGetValue(prefix + "data/" + storage.Key, out var member))
            {
                if (member.Method != 0) throw Unsupported($"storage record '{member.Name}' is compressed (method {member.Method})");
                _storageData[storage.Key] = (member.DataOffset, member.Size);
            }
        return (root, storages, machine.ForeignGlobals);
    }

    (object? Root, Dictionary<string, StorageRef> Storages, IReadOnlyCollection<string> Foreign) OpenLegacy()
    {
        Format = LegacyFormat;
        long fileLength = _stream.Length;
        var input = new PickleInput(_stream, 0, fileLength);
        object? Header(string what)
        {
            try
            {
                return new PickleMachine(input, _ => throw new PickleException("a persistent id in the file header")).Run();
            }
            catch (PickleException e)
            {
                throw Error($"not a torch.save checkpoint: the {what} is not a valid pickle ({e.Message})");
            }
        }
        var magic = Header("magic number");
        if (!(magic is BigInteger m && m == LegacyMagic))
            throw Error("a pickle without torch.save's magic number: not a PyTorch checkpoint (plain pickles are not loaded, for safety)");
        if (Header("protocol version") is not long protocol || protocol != LegacyProtocolVersion)
            throw Error("unsupported legacy torch.save protocol version");
        if (Header("system information") is PyDict info && info.TryGet("little_endian", out var little) && little is false) _bigEndian = true;

        // Storages: root key → declared element count and type; views (pre-1.0 files) point into a root storage.
        var storages = new Dictionary<string, StorageRef>(StringComparer.Ordinal);
        var roots = new Dictionary<string, StorageRef>(StringComparer.Ordinal);
        var machine = new PickleMachine(input, pid =>
        {
            // ('storage', storage_type, root_key, location, numel, view_metadata)
            if (pid is not PyTuple { Count: 6 } t || t[0] is not string kind || kind != "storage")
                throw new PickleException($"unsupported persistent id {Describe(pid)}");
            var root = MakeStorage(t[1], t[2], t[3], t[4]);
            if (roots.TryGetValue(root.Key, out var known))
            {
                if (known.Dtype != root.Dtype || known.ElementCount != root.ElementCount)
                    throw new PickleException($"storage '{root.Key}' is declared twice with different types or sizes");
            }
            else roots[root.Key] = root;
            if (t[5] is null) return root;
            if (t[5] is not PyTuple { Count: 3 } view || view[0] is not string viewKey || view[1] is not long offset || view[2] is not long size
                || offset < 0 || size < 0 || offset > root.ElementCount - size)
                throw new PickleException($"bad storage view {Describe(t[5])}");
            var storageView = root with { ElementOffset = offset, ElementCount = size };
            storages[viewKey] = storageView;
            return storageView;
        });
        object? result;
        object? keys;
        try
        {
            result = machine.Run();
            keys = new PickleMachine(input, _ => throw new PickleException("a persistent id in the storage key list")).Run();
        }
        catch (PickleException e)
        {
            throw e.Unsupported ? Unsupported(e.Message) : Error(e.Message);
        }
        if (keys is not PyList keyList || keyList.Items.Any(k => k is not string))
            throw Error("the storage key list after the pickle is not a list of strings");

        // The storages follow, in the order of the key list: an 8-byte element count, then the raw bytes.
        long position = input.Position;
        foreach (string key in keyList.Items.Cast<string>())
        {
            if (!roots.TryGetValue(key, out var root)) throw Error($"storage '{key}' is listed after the pickle but never referenced in it");
            if (_storageData.ContainsKey(key)) throw Error($"storage '{key}' is listed twice");
            if (position > fileLength - 8) throw Error($"the file ends before storage '{key}' (at byte {position}): truncated");
            var countBytes = ZipDirectory.ReadAt(_stream, position, 8);
            ulong count = _bigEndian ? BitConverter.ToUInt64(countBytes.Reverse().ToArray()) : BitConverter.ToUInt64(countBytes);
            if (count != (ulong)root.ElementCount)
                throw Error($"storage '{key}' holds {count} elements in the file but the pickle declares {root.ElementCount}");
            long bytes = checked(root.ElementCount * root.ElementSize);
            if (bytes > fileLength - position - 8) throw Error($"storage '{key}' needs {bytes} bytes at byte {position + 8} but the file ends first: truncated");
            _storageData[key] = (position + 8, bytes);
            position += 8 + bytes;
        }
        if (position != fileLength) throw Error($"{fileLength - position} bytes after the last storage belong to nothing");
        foreach (var (key, root) in roots) storages.TryAdd(key, root);
        return (result, storages, machine.ForeignGlobals);
    }

    static StorageRef MakeStorage(object? type, object? key, object? location, object? numel)
    {
        if (type is not PyGlobal storageType || !PickleAllowList.IsStorageType(storageType))
            throw new PickleException($"a storage whose type is {PickleMachine.TypeName(type)}, not a torch storage type");
        if (key is not string storageKey || storageKey.Length == 0 || storageKey.Length > 256 || storageKey.Contains('/') || storageKey.Contains(".."))
            throw new PickleException($"bad storage key {PickleMachine.TypeName(key)}");
        if (numel is not long count || count < 0) throw new PickleException($"storage '{storageKey}' has a bad size {PickleMachine.TypeName(numel)}");
        return new StorageRef(storageKey, storageType.FullName, PickleAllowList.DtypeOf(storageType), location as string ?? "?", count);
    }

    // ---- choosing and indexing the state dict ------------------------------------------------------------------

    void Index(object? root, string? requested)
    {
        if (Format == TorchScriptFormat && root is PyObject module && requested is null)
        {
            if (!IsScriptClass(module))
                throw Error($"the TorchScript archive's root is an object built by {module.Callable.FullName}, not a scripted module (__torch__.*): " +
                            $"a global outside the allow-list ({PickleAllowList.Description}); refused, nothing was called");
            // torch.jit.save: the root is the scripted module; each module is an object whose state dict holds its
            // attributes (parameters, buffers, submodules, flags). The tensors along the tree are the state dict.
            _metadata["pickle.state_dict"] = $"(the TorchScript module tree of {module.TypeName})";
            int budget = 1_000_000;
            CheckpointException? unsupported = null;
            FlattenScriptModule(module, "", 0, ref budget, ref unsupported);
            // The whole tree is walked first, so a refusal anywhere wins over an unsupported feature (which would let
            // the caller fall back to libtorch's loader).
            if (unsupported is not null) throw unsupported;
            IndexStorages();
            return;
        }
        if (root is not PyDict dict)
            throw Error(root switch
            {
                PyObject o => $"the checkpoint is a pickled {o.TypeName} object, not a dict of tensors " +
                              $"(the global is outside the allow-list and was not called; save model.state_dict() instead)",
                PyGlobal g => $"the checkpoint is the global {g.FullName}, not a dict of tensors (nothing was called)",
                TensorRef => "the checkpoint is a single tensor, not a dict of tensors",
                _ => $"the checkpoint is a {PickleMachine.TypeName(root)}, not a dict of tensors",
            });

        var path = new List<string>();
        if (requested is not null)
        {
            foreach (var part in requested.Split('.', StringSplitOptions.RemoveEmptyEntries))
            {
                if (!dict.TryGet(part, out var inner) || inner is not PyDict next)
                    throw Error($"has no dict '{string.Join('.', path.Append(part))}' to use as the state dict (top-level keys: {KeyList(dict)})");
                DescribeSiblings(dict, part, path);
                path.Add(part);
                dict = next;
            }
        }
        else
        {
            for (int level = 0; level < 4 && !dict.Items.Any(kv => kv.Value is TensorRef); level++)
            {
                var found = StateDictKeys.FirstOrDefault(k => dict.TryGet(k, out var v) && v is PyDict d && ContainsTensor(d));
                if (found is null) break;
                DescribeSiblings(dict, found, path);
                path.Add(found);
                dict.TryGet(found, out var next);
                dict = (PyDict)next!;
            }
        }
        StateDictPath = string.Join('.', path);
        _metadata["pickle.state_dict"] = path.Count == 0 ? "(the root dict)" : StateDictPath;

        Flatten(dict, "", 0, new HashSet<object>(ReferenceEqualityComparer.Instance));
        IndexStorages();
    }

    void IndexStorages()
    {
        // Check every indexed tensor against its storage and the bytes in the file.
        var sharing = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var entry in _entries)
        {
            var tensor = _index[entry.Name].Tensor;
            Validate(entry.Name, tensor);
            if (!sharing.TryGetValue(tensor.Storage.Key, out var names)) sharing[tensor.Storage.Key] = names = new();
            names.Add(entry.Name);
        }
        var shared = sharing.Values.Where(n => n.Count > 1).Select(n => string.Join(" = ", n)).ToList();
        if (shared.Count > 0) _metadata["pickle.shared_storage"] = string.Join("; ", shared);
    }

    void FlattenScriptModule(PyObject module, string prefix, int depth, ref int budget, ref CheckpointException? unsupported)
    {
        // A module shared by two parents is listed under both names, as nn.Module.state_dict() does; the budget stops
        // a hostile tree of shared modules from expanding exponentially.
        if (depth >= MaxNesting) throw Error($"the TorchScript module tree nests deeper than {MaxNesting} levels", prefix.TrimEnd('.'));
        if (--budget < 0) throw Error("the TorchScript module tree expands to more than a million modules", prefix.TrimEnd('.'));
        if (module.State is null) return; // never built: no attributes
        if (module.State is not PyDict attributes)
        {
            unsupported ??= Unsupported($"the scripted module {module.TypeName} has a custom __getstate__ ({PickleMachine.TypeName(module.State)} state), which this reader does not support",
                                        prefix.Length == 0 ? null : prefix.TrimEnd('.'));
            return;
        }
        foreach (var (key, value) in attributes.Items)
        {
            if (key is not string name) continue;
            switch (value)
            {
                case TensorRef:
                    try { Add(prefix + name, value, depth, new HashSet<object>()); }
                    catch (UnsupportedCheckpointException e) { unsupported ??= e; }
                    break;
                case PyObject child when IsScriptClass(child):
                    FlattenScriptModule(child, prefix + name + ".", depth + 1, ref budget, ref unsupported);
                    break;
                case PyObject rebuilt when rebuilt.Callable.FullName.StartsWith("torch._utils._rebuild_", StringComparison.Ordinal):
                    unsupported ??= Unsupported($"a tensor rebuilt by {rebuilt.Callable.FullName} (quantized or sparse), which this reader does not support", prefix + name);
                    break;
                case PyObject other when !IsTorchGlobal(other.Callable):
                    throw Error($"holds an object built by {other.Callable.FullName}, a global outside the allow-list ({PickleAllowList.Description}) " +
                                "that a TorchScript archive never holds; refused, nothing was called", prefix + name);
                case PyGlobal global when !IsTorchGlobal(global):
                    throw Error($"holds the global {global.FullName}, outside the allow-list; refused, nothing was called", prefix + name);
                // Flags, sizes, None, devices and other non-tensor attributes are not weights.
            }
        }
    }

    static bool IsScriptClass(PyObject value) => value.Callable.Module == "__torch__" || value.Callable.Module.StartsWith("__torch__.", StringComparison.Ordinal);

    /// <summary>torch.* globals (torch.device, dtypes) that TorchScript's own pickler writes for attributes; kept inert.</summary>
    static bool IsTorchGlobal(PyGlobal global) => global.Module == "torch" || global.Module.StartsWith("torch.", StringComparison.Ordinal);

    void DescribeSiblings(PyDict dict, string chosen, List<string> path)
    {
        foreach (var (key, value) in dict.Items)
            if (!(key is string s && s == chosen))
                _metadata[string.Join('.', path.Append(KeyText(key)))] = Describe(value);
    }

    void Flatten(PyDict dict, string prefix, int depth, HashSet<object> visited)
    {
        if (dict.HasDuplicate) throw Error("the state dict sets this key twice", prefix + KeyText(dict.FirstDuplicateKey));
        foreach (var (key, value) in dict.Items)
        {
            if (key is not (string or long or bool or BigInteger))
                throw Error($"the state dict has a key of type {PickleMachine.TypeName(key)}", prefix + KeyText(key));
            Add(prefix + KeyText(key), value, depth, visited);
        }
    }

    void Add(string name, object? value, int depth, HashSet<object> visited)
    {
        switch (value)
        {
            case TensorRef tensor:
                if (_index.ContainsKey(name)) throw Error("two entries of the state dict flatten to this name", name);
                var dtype = tensor.Storage.Dtype ?? throw Unsupported($"its storage type {tensor.Storage.StorageType} is not supported (complex, quantized and float8 tensors cannot be read)", name);
                var entry = new TensorEntry(name, dtype, tensor.Shape);
                _index[name] = (entry, tensor);
                _entries.Add(entry);
                break;
            case PyDict or PyList or PyTuple:
                if (depth >= MaxNesting) throw Error($"the state dict nests deeper than {MaxNesting} levels", name);
                if (!visited.Add(value)) throw Error("a container that appears twice in the state dict (a cycle or a shared reference)", name);
                if (value is PyDict inner) Flatten(inner, name + ".", depth + 1, visited);
                else
                {
                    var items = value is PyList list ? (IReadOnlyList<object?>)list.Items : (PyTuple)value;
                    for (int i = 0; i < items.Count; i++) Add(name + "." + i, items[i], depth + 1, visited);
                }
                break;
            case PyObject obj:
                throw Error($"holds an object built by {obj.Callable.FullName}" + (obj.TypeName != obj.Callable.FullName ? $" ({obj.TypeName})" : "") +
                            $", a global outside the allow-list ({PickleAllowList.Description}); refused, nothing was called", name);
            case PyGlobal global:
                throw Error($"holds the global {global.FullName}, outside the allow-list; refused, nothing was called", name);
            case StorageRef:
                throw Error("holds a bare storage, not a tensor", name);
            default:
                _metadata[name] = Describe(value); // None, numbers, strings, sets: kept as non-tensor entries
                break;
        }
    }

    void Validate(string name, TensorRef tensor)
    {
        var storage = tensor.Storage;
        if (!_storageData.TryGetValue(storage.Key, out var data))
            throw Error($"its storage '{storage.Key}' is not in the file", name);
        try
        {
            long extent = tensor.Extent();
            long end = checked(tensor.Offset + extent);
            if (extent > 0 && end > storage.ElementCount)
                throw Error($"shape {Shape(tensor.Shape)} with strides {Shape(tensor.Stride)} at offset {tensor.Offset} reaches element {end} " +
                            $"of a storage of {storage.ElementCount}", name);
            long storageBytes = checked((storage.ElementOffset + storage.ElementCount) * storage.ElementSize);
            if (storageBytes > data.Length)
                throw Error($"its storage '{storage.Key}' declares {storage.ElementOffset + storage.ElementCount} elements of {storage.Dtype} " +
                            $"({storageBytes} bytes) but the file holds {data.Length} bytes for it", name);
            long bytes = checked(tensor.ElementCount * storage.ElementSize);
            if (bytes > _stream.Length)
                throw Error($"shape {Shape(tensor.Shape)} needs {bytes} bytes, more than the whole file ({_stream.Length}); refused", name);
        }
        catch (OverflowException)
        {
            throw Error($"shape {Shape(tensor.Shape)} with strides {Shape(tensor.Stride)} overflows", name);
        }
    }

    static bool ContainsTensor(PyDict dict)
    {
        var pending = new Stack<object?>();
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        pending.Push(dict);
        for (int budget = 100_000; pending.Count > 0 && budget > 0; budget--)
        {
            var value = pending.Pop();
            if (value is TensorRef) return true;
            if (value is null || !seen.Add(value)) continue;
            if (value is PyDict d) foreach (var kv in d.Items) pending.Push(kv.Value);
            else if (value is PyList l) foreach (var item in l.Items) pending.Push(item);
            else if (value is PyTuple t) foreach (var item in t) pending.Push(item);
        }
        return false;
    }

    // ---- reading -------------------------------------------------------------------------------------------

    public Tensor Read(string name)
    {
        if (!_index.TryGetValue(name, out var item)) throw Error("no such tensor in the checkpoint", name);
        var (entry, tensor) = item;
        var type = StorageDtype.ToScalarType(entry.Dtype);
        int elementSize = tensor.Storage.ElementSize;
        long extent = tensor.Extent();
        if (extent == 0) return empty(entry.Shape, type);
        var (offset, _) = _storageData[tensor.Storage.Key];
        long start = offset + (tensor.Storage.ElementOffset + tensor.Offset) * elementSize;
        try
        {
            _stream.Seek(start, SeekOrigin.Begin);
            if (tensor.IsContiguous)
            {
                var result = empty(entry.Shape, type);
                try
                {
                    TensorBytes.ReadFromStream(_stream, result, extent * elementSize, Path, name);
                    if (_bigEndian) TensorBytes.SwapByteOrder(result);
                    return result;
                }
                catch
                {
                    result.Dispose();
                    throw;
                }
            }
            // A strided view (a slice or transpose that was saved as such): read the span it covers, then copy out.
            using var span = empty(new[] { extent }, type);
            TensorBytes.ReadFromStream(_stream, span, extent * elementSize, Path, name);
            if (_bigEndian) TensorBytes.SwapByteOrder(span);
            using var view = span.as_strided(entry.Shape, tensor.Stride, 0);
            // contiguous() of a strided view already copies into a tensor of its own; only a view libtorch deems
            // contiguous (it would share the span's storage) needs a copy.
            return view.is_contiguous() ? view.clone() : view.contiguous();
        }
        catch (Exception e) when (e is not CheckpointException and not OutOfMemoryException)
        {
            throw new CheckpointException(Path, "cannot read: " + e.Message, name, e);
        }
    }

    public bool TryReadInto(string name, Tensor destination)
    {
        if (!_index.TryGetValue(name, out var item)) throw Error("no such tensor in the checkpoint", name);
        var (entry, tensor) = item;
        if (_bigEndian || !tensor.IsContiguous || destination.device_type != DeviceType.CPU || !destination.is_contiguous()
            || destination.dtype != StorageDtype.ToScalarType(entry.Dtype) || !destination.shape.SequenceEqual(entry.Shape))
            return false;
        long extent = tensor.Extent();
        if (extent == 0) return true;
        var (offset, _) = _storageData[tensor.Storage.Key];
        try
        {
            _stream.Seek(offset + (tensor.Storage.ElementOffset + tensor.Offset) * tensor.Storage.ElementSize, SeekOrigin.Begin);
            TensorBytes.ReadFromStream(_stream, destination, extent * tensor.Storage.ElementSize, Path, name);
            return true;
        }
        catch (Exception e) when (e is not CheckpointException and not OutOfMemoryException)
        {
            throw new CheckpointException(Path, "cannot read: " + e.Message, name, e);
        }
    }

    public void Dispose() => _stream.Dispose();

    // ---- descriptions --------------------------------------------------------------------------------------

    CheckpointException Error(string message, string? key = null) => new(Path, message, key);

    /// <summary>A feature this reader does not implement (not a refusal, not corruption).</summary>
    CheckpointException Unsupported(string message, string? key = null) => new UnsupportedCheckpointException(Path, message, key);

    static string Shape(long[] values) => "[" + string.Join(", ", values) + "]";

    static string KeyText(object? key) => key switch
    {
        string s => s,
        bool b => b ? "True" : "False",
        _ => Describe(key),
    };

    static string KeyList(PyDict dict) => string.Join(", ", dict.Items.Take(12).Select(kv => KeyText(kv.Key))) + (dict.Count > 12 ? ", ..." : "");

    /// <summary>A short, bounded description of a value (for reports); walks at most a few levels and items.</summary>
    internal static string Describe(object? value)
    {
        var sb = new StringBuilder();
        Describe(value, sb, 0);
        return sb.Length > 300 ? sb.ToString(0, 297) + "..." : sb.ToString();
    }

    static void Describe(object? value, StringBuilder sb, int depth)
    {
        if (sb.Length > 300) return;
        const int MaxItems = 8;
        void Items<T>(IReadOnlyList<T> items, string open, string close, Action<T> each)
        {
            if (depth >= 4) { sb.Append(open).Append("...").Append(items.Count).Append(" items").Append(close); return; }
            sb.Append(open);
            for (int i = 0; i < Math.Min(items.Count, MaxItems) && sb.Length <= 300; i++)
            {
                if (i > 0) sb.Append(", ");
                each(items[i]);
            }
            if (items.Count > MaxItems) sb.Append($", ... ({items.Count} items)");
            sb.Append(close);
        }
        switch (value)
        {
            case null: sb.Append("None"); break;
            case bool b: sb.Append(b ? "True" : "False"); break;
            case long l: sb.Append(l); break;
            case BigInteger big: sb.Append(big.GetBitLength() > 128 ? $"<int of {big.GetBitLength()} bits>" : big.ToString()); break;
            case double d: sb.Append(d.ToString("R", System.Globalization.CultureInfo.InvariantCulture)); break;
            case string s: sb.Append('\'').Append(s.Length > 80 ? s[..80] + "..." : s).Append('\''); break;
            case byte[] bytes: sb.Append($"<{bytes.Length} bytes>"); break;
            case TensorRef t: sb.Append($"<tensor {t.Storage.Dtype ?? t.Storage.StorageType} {Shape(t.Shape)}>"); break;
            case StorageRef st: sb.Append($"<storage {st.StorageType} of {st.ElementCount}>"); break;
            case PyGlobal g: sb.Append($"<global {g.FullName}>"); break;
            case PyTuple t: Items(t, "(", ")", v => Describe(v, sb, depth + 1)); break;
            case PyList list: Items(list.Items, "[", "]", v => Describe(v, sb, depth + 1)); break;
            case PySet set: Items(set.Items, "{", "}", v => Describe(v, sb, depth + 1)); break;
            case PyDict dict:
                Items(dict.Items, "{", "}", kv => { Describe(kv.Key, sb, depth + 1); sb.Append(": "); Describe(kv.Value, sb, depth + 1); });
                break;
            case PyObject obj:
                sb.Append('<').Append(obj.TypeName).Append(" object, not executed");
                var content = obj.Mapping is not null ? obj.Mapping : obj.State is PyDict or PyTuple ? obj.State
                    : obj.Items.Count > 0 ? new PyTuple(obj.Items.ToArray()) : null;
                if (content is not null && depth < 4) { sb.Append(": "); Describe(content, sb, depth + 1); }
                sb.Append('>');
                break;
            default: sb.Append(value.GetType().Name); break;
        }
    }
}
