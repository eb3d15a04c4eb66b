using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace ModelZoo.Weights;

public sealed record SafetensorsWriteOptions
{
    /// <summary>String pairs stored in the header's __metadata__ (plus "format": "pt" unless given).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
    /// <summary>Split into shards of at most this many bytes each (a tensor larger than that gets a shard of its own),
    /// named model-00001-of-0000N.safetensors, with model.safetensors.index.json as Hugging Face writes it. Null: one file.</summary>
    public long? MaxShardBytes { get; init; }
    /// <summary>Floating tensors are converted to this dtype ("F32", "F16", "BF16"); integer and bool tensors are kept. Null: keep.</summary>
    public string? Dtype { get; init; }
    /// <summary>When set, written as config.json beside the checkpoint.</summary>
    public string? ConfigJson { get; init; }
}

/// <summary>What was written.</summary>
public sealed record SavedCheckpoint(string Path, IReadOnlyList<string> Files, int Tensors, long TensorBytes, string? IndexPath, string? ConfigPath);

/// <summary>
/// Writes safetensors files: the header is computed from names, dtypes and shapes alone, then each tensor is
/// materialised, converted, written and freed in turn, so writing never holds more than one tensor beyond its
/// source. Every file goes to a temporary name and is renamed when complete; a sharded set renames its shards first
/// and its index last, and removes shards and indexes of an earlier save under the same name that the new set does
/// not use (as Hugging Face's save_pretrained does).
/// </summary>
public static partial class SafetensorsWriter
{
    const int HeaderAlignment = 8;

    public static SavedCheckpoint Write(string path, IReadOnlyDictionary<string, Tensor> tensors, SafetensorsWriteOptions? options = null) =>
        Write(path, tensors.Select(kv => new MappedTensor(kv.Key, StorageDtype.FromScalarType(kv.Value.dtype), kv.Value.shape, new[] { kv.Key },
            () => kv.Value.detach().cpu())).ToList(), options);

    /// <param name="path">The output file (e.g. out/model.safetensors), or an existing directory (model.safetensors inside it).
    /// With sharding, shard names derive from it (out/model-00001-of-00002.safetensors, out/model.safetensors.index.json).</param>
    public static SavedCheckpoint Write(string path, IReadOnlyList<MappedTensor> tensors, SafetensorsWriteOptions? options = null)
    {
        options ??= new SafetensorsWriteOptions();
        if (Directory.Exists(path) || path.EndsWith('/') || path.EndsWith(Path.DirectorySeparatorChar)) path = Path.Combine(path, "model.safetensors");
        path = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(path)!;
        string stem = Path.GetFileName(path).EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)
            ? Path.GetFileName(path)[..^".safetensors".Length]
            : Path.GetFileName(path);
        if (options.Dtype is not null && !(StorageDtype.IsKnown(options.Dtype) && StorageDtype.IsFloating(options.Dtype)))
            throw new ArgumentException($"cannot write dtype '{options.Dtype}' (use F32, F16 or BF16)");
        if (options.MaxShardBytes is < 1) throw new ArgumentException("the shard size must be positive");

        var planned = Plan(tensors, options.Dtype);
        var shards = Split(planned, options.MaxShardBytes);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
        if (options.Metadata is not null) foreach (var (k, v) in options.Metadata) metadata[k] = v;

        var names = shards.Count == 1
            ? new List<string> { stem + ".safetensors" }
            : Enumerable.Range(1, shards.Count).Select(i => $"{stem}-{i:00000}-of-{shards.Count:00000}.safetensors").ToList();
        var temps = new List<(string Temp, string Final)>();
        try
        {
            for (int i = 0; i < shards.Count; i++)
                temps.Add((WriteFile(Path.Combine(directory, names[i]), shards[i], metadata), Path.Combine(directory, names[i])));
            string? indexTemp = null;
            string indexPath = Path.Combine(directory, stem + ".safetensors.index.json");
            if (shards.Count > 1)
            {
                var (temp, stream) = AtomicFile.Create(indexPath);
                indexTemp = temp;
                using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
                {
                    json.WriteStartObject();
                    json.WriteStartObject("metadata");
                    json.WriteNumber("total_size", planned.Sum(p => p.Bytes));
                    json.WriteEndObject();
                    json.WriteStartObject("weight_map");
                    foreach (var (name, file) in shards.SelectMany((shard, i) => shard.Select(p => (p.Tensor.Name, names[i]))).OrderBy(x => x.Item1, StringComparer.Ordinal))
                        json.WriteString(name, file);
                    json.WriteEndObject();
                    json.WriteEndObject();
                }
                stream.Write("\n"u8);
                stream.Flush(flushToDisk: true);
                stream.Dispose();
                temps.Add((temp, indexPath));
            }
            string? configPath = null;
            if (options.ConfigJson is not null)
            {
                configPath = Path.Combine(directory, "config.json");
                var (temp, stream) = AtomicFile.Create(configPath);
                stream.Write(Encoding.UTF8.GetBytes(options.ConfigJson.TrimEnd() + "\n"));
                stream.Flush(flushToDisk: true);
                stream.Dispose();
                temps.Add((temp, configPath));
            }
            // Everything is complete on disk: rename (shards, then the index, then config.json) and clear stale files.
            foreach (var (temp, final) in temps) File.Move(temp, final, overwrite: true);
            temps.Clear();
            RemoveStale(directory, stem, names, keepIndex: shards.Count > 1);
            return new SavedCheckpoint(shards.Count > 1 ? indexPath : Path.Combine(directory, names[0]),
                names.Select(n => Path.Combine(directory, n)).ToList(), planned.Count, planned.Sum(p => p.Bytes),
                shards.Count > 1 ? indexPath : null, configPath);
        }
        finally
        {
            foreach (var (temp, _) in temps) AtomicFile.Abandon(temp, null);
        }
    }

    sealed record Planned(MappedTensor Tensor, string Dtype, long Bytes);

    static List<Planned> Plan(IReadOnlyList<MappedTensor> tensors, string? dtype)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<Planned>(tensors.Count);
        foreach (var t in tensors)
        {
            if (t.Name.Length == 0 || t.Name == "__metadata__") throw new ArgumentException($"'{t.Name}' cannot be a tensor name");
            if (!seen.Add(t.Name)) throw new ArgumentException($"the tensor name '{t.Name}' occurs twice");
            string target = dtype is not null && StorageDtype.IsFloating(t.Dtype) ? dtype : t.Dtype;
            result.Add(new Planned(t, target, checked(t.ElementCount * StorageDtype.ElementSize(target))));
        }
        return result;
    }

    static List<List<Planned>> Split(List<Planned> planned, long? maxBytes)
    {
        var shards = new List<List<Planned>> { new() };
        long size = 0;
        foreach (var p in planned)
        {
            if (maxBytes is long max && shards[^1].Count > 0 && size + p.Bytes > max)
            {
                shards.Add(new());
                size = 0;
            }
            shards[^1].Add(p);
            size += p.Bytes;
        }
        return shards;
    }

    /// <summary>Writes one file to a temporary name; returns that name (renamed by the caller once every file is done).</summary>
    static string WriteFile(string path, List<Planned> tensors, Dictionary<string, string> metadata)
    {
        var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            foreach (var (k, v) in metadata) json.WriteString(k, v);
            json.WriteEndObject();
            long offset = 0;
            foreach (var p in tensors)
            {
                json.WriteStartObject(p.Tensor.Name);
                json.WriteString("dtype", p.Dtype);
                json.WriteStartArray("shape");
                foreach (var d in p.Tensor.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + p.Bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += p.Bytes;
            }
            json.WriteEndObject();
        }
        // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
        while ((header.Length + 8) % HeaderAlignment != 0) header.WriteByte((byte)' ');

        var (temp, stream) = AtomicFile.Create(path);
        try
        {
            stream.Write(BitConverter.GetBytes((ulong)header.Length));
            header.Position = 0;
            header.CopyTo(stream);
            foreach (var p in tensors)
            {
                using var scope = NewDisposeScope();
                var value = p.Tensor.Materialize();
                if (!value.shape.SequenceEqual(p.Tensor.Shape))
                    throw new InvalidOperationException($"tensor '{p.Tensor.Name}' has shape [{string.Join(", ", value.shape)}], planned {p.Tensor.ShapeText}");
                var type = StorageDtype.ToScalarType(p.Dtype);
                if (value.dtype != type) value = value.to(type);
                long before = stream.Position;
                TensorBytes.WriteToStream(stream, value);
                if (stream.Position - before != p.Bytes)
                    throw new InvalidOperationException($"tensor '{p.Tensor.Name}' wrote {stream.Position - before} bytes, planned {p.Bytes}");
            }
            stream.Flush(flushToDisk: true);
            stream.Dispose();
            return temp;
        }
        catch
        {
            AtomicFile.Abandon(temp, stream);
            throw;
        }
    }

    [GeneratedRegex(@"^(?<stem>.+)-(?<i>\d{5})-of-(?<n>\d{5})\.safetensors$", RegexOptions.CultureInvariant)]
    private static partial Regex ShardName();

    static void RemoveStale(string directory, string stem, List<string> written, bool keepIndex)
    {
        foreach (var file in Directory.EnumerateFiles(directory, stem + "-*-of-*.safetensors"))
        {
            var m = ShardName().Match(Path.GetFileName(file));
            if (m.Success && m.Groups["stem"].Value == stem && !written.Contains(Path.GetFileName(file))) File.Delete(file);
        }
        string index = Path.Combine(directory, stem + ".safetensors.index.json");
        if (!keepIndex && File.Exists(index)) File.Delete(index);
        string single = Path.Combine(directory, stem + ".safetensors");
        if (keepIndex && File.Exists(single)) File.Delete(single);
    }
}
