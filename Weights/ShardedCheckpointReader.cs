using System.Text.Json;
using static TorchSharp.torch;

namespace ModelZoo.Weights;

/// <summary>
/// A checkpoint split into shards with a Hugging Face index (<c>model.safetensors.index.json</c>,
/// <c>pytorch_model.bin.index.json</c>): {"metadata": {...}, "weight_map": {"tensor name": "shard file", ...}}.
/// Every shard named by the index is opened (headers only) and checked against it: each listed tensor must be in
/// its shard, no shard may hold a tensor the index does not list or another shard also holds.
/// </summary>
public sealed class ShardedCheckpointReader : ICheckpointReader, ICheckpointDirectReader
{
    /// <summary>Index files larger than this are refused (real ones are well under a megabyte).</summary>
    public const long MaxIndexBytes = 64 << 20;

    readonly Dictionary<string, ICheckpointReader> _shards = new(StringComparer.Ordinal);
    readonly Dictionary<string, ICheckpointReader> _owner = new(StringComparer.Ordinal);
    readonly List<TensorEntry> _entries = new();
    readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);

    public string Path { get; }
    public string Format { get; }
    public IReadOnlyList<TensorEntry> Entries => _entries;
    public IReadOnlyDictionary<string, string> Metadata => _metadata;
    /// <summary>The shard files, in the order the index first names them.</summary>
    public IReadOnlyList<string> ShardPaths => _shards.Values.Select(s => s.Path).ToList();

    public ShardedCheckpointReader(string indexPath)
    {
        Path = indexPath;
        try
        {
            var weightMap = ParseIndex(indexPath);
            string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
            foreach (var (tensor, shard) in weightMap)
            {
                if (!_shards.TryGetValue(shard, out var reader))
                {
                    if (shard.Length == 0 || shard.Contains('/') || shard.Contains('\\') || shard is "." or ".." || System.IO.Path.IsPathRooted(shard))
                        throw new CheckpointException(indexPath, $"names the shard '{shard}', which is not a plain file name beside the index", tensor);
                    string shardPath = System.IO.Path.Combine(directory, shard);
                    if (!File.Exists(shardPath))
                        throw new CheckpointException(indexPath, $"names the shard '{shard}', which does not exist in {directory}", tensor);
                    if (shard.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
                        throw new CheckpointException(indexPath, $"names the shard '{shard}', which is another index", tensor);
                    reader = Checkpoint.Open(shardPath);
                    _shards[shard] = reader;
                }
                _owner[tensor] = reader;
            }
            if (_shards.Count == 0) throw new CheckpointException(indexPath, "the index's weight_map is empty");

            foreach (var (shard, reader) in _shards)
                foreach (var entry in reader.Entries)
                {
                    if (!_owner.TryGetValue(entry.Name, out var owner))
                        throw new CheckpointException(reader.Path, "holds this tensor but the index does not list it", entry.Name);
                    if (!ReferenceEquals(owner, reader))
                        throw new CheckpointException(reader.Path, $"holds this tensor but the index assigns it to {System.IO.Path.GetFileName(owner.Path)}", entry.Name);
                }
            var byName = _shards.Values.SelectMany(r => r.Entries).ToDictionary(e => e.Name, StringComparer.Ordinal);
            foreach (var (tensor, reader) in _owner)
            {
                if (!byName.TryGetValue(tensor, out var entry))
                    throw new CheckpointException(indexPath, $"lists this tensor in {System.IO.Path.GetFileName(reader.Path)}, which does not hold it", tensor);
                _entries.Add(entry);
            }
            var formats = _shards.Values.Select(r => r.Format).Distinct().ToList();
            Format = (formats.Count == 1 ? formats[0] : string.Join(" + ", formats)) + " (sharded)";
            _metadata["shards"] = _shards.Count.ToString();
            foreach (var reader in _shards.Values)
                foreach (var (key, value) in reader.Metadata)
                    _metadata.TryAdd(key, value);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    Dictionary<string, string> ParseIndex(string indexPath)
    {
        long length;
        try
        {
            length = new FileInfo(indexPath).Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(indexPath, "cannot read: " + e.Message, inner: e);
        }
        if (length == 0) throw new CheckpointException(indexPath, "the index file is empty (0 bytes)");
        if (length > MaxIndexBytes) throw new CheckpointException(indexPath, $"the index file is {length} bytes, more than the {MaxIndexBytes}-byte limit");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(indexPath), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            throw new CheckpointException(indexPath, "the index is not valid JSON: " + e.Message, inner: e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(indexPath, "cannot read: " + e.Message, inner: e);
        }
        using (document)
        {
            try
            {
                return ReadWeightMap(indexPath, document.RootElement);
            }
            catch (InvalidOperationException e)
            {
                throw new CheckpointException(indexPath, "the index is not valid UTF-8 JSON: " + e.Message, inner: e);
            }
        }
    }

    Dictionary<string, string> ReadWeightMap(string indexPath, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new CheckpointException(indexPath, "the index has no \"weight_map\" object");
        if (root.TryGetProperty("metadata", out var metadata) && metadata.ValueKind == JsonValueKind.Object)
            foreach (var property in metadata.EnumerateObject())
                _metadata[property.Name] = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString()! : property.Value.GetRawText();
        var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in map.EnumerateObject())
        {
            if (property.Value.ValueKind != JsonValueKind.String)
                throw new CheckpointException(indexPath, "the weight_map value is not a file name", property.Name);
            if (!weightMap.TryAdd(property.Name, property.Value.GetString()!))
                throw new CheckpointException(indexPath, "the weight_map lists this tensor twice", property.Name);
        }
        return weightMap;
    }

    public Tensor Read(string name) =>
        _owner.TryGetValue(name, out var reader) ? reader.Read(name) : throw new CheckpointException(Path, "no such tensor in the checkpoint", name);

    public bool TryReadInto(string name, Tensor destination) =>
        _owner.TryGetValue(name, out var reader)
            ? reader is ICheckpointDirectReader direct && direct.TryReadInto(name, destination)
            : throw new CheckpointException(Path, "no such tensor in the checkpoint", name);

    public void Dispose()
    {
        foreach (var reader in _shards.Values) reader.Dispose();
        _shards.Clear();
    }
}
