using System.Text;
using System.Text.Json;

namespace ModelZoo.Evaluation.Data;

/// <summary>
/// Streams the items of one JSON array (a property of the root object, or the root array itself) without
/// loading the file: VQA annotation files and Karpathy caption files run to hundreds of megabytes. Each item is
/// parsed into its own small <see cref="JsonDocument"/>, handed to the caller, and disposed when the caller moves on.
/// </summary>
public static class JsonArrayStream
{
    /// <summary>
    /// The items of <c>root[property]</c> (or of the root array when <paramref name="property"/> is null), in order.
    /// Each element is valid only until the next item is requested.
    /// </summary>
    public static IEnumerable<JsonElement> Items(string path, string? property)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        var parser = new Parser(path, property);
        var buffer = new byte[1 << 16];
        int length = 0;
        long fileOffset = 0;
        bool final = false;
        while (true)
        {
            if (!final && length < buffer.Length)
            {
                int read = stream.Read(buffer, length, buffer.Length - length);
                if (read == 0) final = true;
                length += read;
            }
            var items = parser.Step(buffer.AsSpan(0, length), final, fileOffset, out int consumed);
            foreach (var bytes in items)
            {
                using var document = JsonDocument.Parse(bytes);
                yield return document.RootElement;
            }
            if (parser.Done) yield break;
            if (consumed > 0)
            {
                Buffer.BlockCopy(buffer, consumed, buffer, 0, length - consumed);
                length -= consumed;
                fileOffset += consumed;
            }
            else if (final)
            {
                throw new InvalidDataException(property is null
                    ? $"{path}: the file ends before its top-level array is closed (truncated?)"
                    : $"{path}: the file ends before the \"{property}\" array is complete (truncated?), or it has no \"{property}\" array");
            }
            else if (length == buffer.Length)
            {
                Array.Resize(ref buffer, buffer.Length * 2); // one item larger than the buffer
            }
        }
    }

    sealed class Parser(string path, string? property)
    {
        enum Phase { SeekProperty, ExpectArray, InArray, Done }

        Phase _phase = property is null ? Phase.ExpectArray : Phase.SeekProperty;
        JsonReaderState _state = new(new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = false });
        readonly byte[]? _name = property is null ? null : Encoding.UTF8.GetBytes(property);

        public bool Done => _phase == Phase.Done;

        /// <summary>Reads complete tokens; returns the complete items and how many bytes were consumed for good.</summary>
        public List<byte[]> Step(ReadOnlySpan<byte> data, bool final, long fileOffset, out int consumed)
        {
            var items = new List<byte[]>();
            var reader = new Utf8JsonReader(data, final, _state);
            consumed = 0;
            try
            {
                while (_phase != Phase.Done)
                {
                    if (!reader.Read()) break;
                    switch (_phase)
                    {
                        case Phase.SeekProperty:
                            if (reader.CurrentDepth == 0 && reader.TokenType == JsonTokenType.EndObject)
                                throw new InvalidDataException($"{path}: no \"{property}\" array in the top-level object");
                            if (reader.CurrentDepth == 0 && reader.TokenType != JsonTokenType.StartObject)
                                throw new InvalidDataException($"{path}: expected a JSON object with a \"{property}\" array at the top level");
                            if (reader.CurrentDepth == 1 && reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals(_name))
                                _phase = Phase.ExpectArray;
                            else if (reader.CurrentDepth == 1 && reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray && !reader.TrySkip())
                                goto needMore; // another property's value, not complete in this block
                            break;
                        case Phase.ExpectArray:
                            if (reader.TokenType != JsonTokenType.StartArray)
                                throw new InvalidDataException(property is null
                                    ? $"{path}: expected a JSON array at the top level, found {reader.TokenType}"
                                    : $"{path}: \"{property}\" must be an array, found {reader.TokenType}");
                            _phase = Phase.InArray;
                            break;
                        case Phase.InArray:
                            if (reader.TokenType == JsonTokenType.EndArray)
                            {
                                _phase = Phase.Done;
                                break;
                            }
                            int start = (int)reader.TokenStartIndex;
                            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray && !reader.TrySkip()) goto needMore;
                            items.Add(data[start..(int)reader.BytesConsumed].ToArray());
                            break;
                    }
                    // Everything up to here is complete: a later block resumes after it.
                    consumed = (int)reader.BytesConsumed;
                    _state = reader.CurrentState;
                    continue;
                needMore:
                    break;
                }
            }
            catch (JsonException e)
            {
                string hint = final && _phase != Phase.Done ? " (the file may be truncated)" : "";
                throw new InvalidDataException($"{path}: not valid JSON near byte {fileOffset + reader.BytesConsumed}{hint}: {e.Message}", e);
            }
            return items;
        }
    }
}
