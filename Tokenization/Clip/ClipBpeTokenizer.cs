using System.IO.Compression;
using System.Text;
using ModelZoo.Tokenization.Bpe;
using ModelZoo.Tokenization.Text;

namespace ModelZoo.Tokenization.Clip;

/// <summary>
/// CLIP's byte-level BPE (openai/CLIP simple_tokenizer), the same ids as the reference: text clean-up
/// (<see cref="Clean"/>), the CLIP pre-split pattern, byte-level BPE with "&lt;/w&gt;" marking word ends.
/// The vocabulary is built from <c>bpe_simple_vocab_16e6.txt.gz</c> (merges only): the 256 byte characters, the
/// same with "&lt;/w&gt;", one token per merge, then &lt;|startoftext|&gt; and &lt;|endoftext|&gt;. That file is
/// embedded in this assembly (MIT-licensed data from openai/CLIP), so no file is needed.
/// Model input is &lt;|startoftext|&gt; ids &lt;|endoftext|&gt; zero-padded to the context length (77); longer
/// texts are cut with &lt;|endoftext|&gt; kept in the last slot, as <c>clip.tokenize(..., truncate=True)</c>.
/// </summary>
public sealed class ClipBpeTokenizer : TextTokenizer
{
    public const string StartOfText = "<|startoftext|>";
    public const string EndOfText = "<|endoftext|>";
    public const int ContextLength = 77;
    const int MergeCount = 49152 - 256 - 2;
    const string EmbeddedMerges = "ModelZoo.Tokenization.Resources.bpe_simple_vocab_16e6.txt.gz";

    readonly BytePairEncoder _bpe;
    readonly string[] _tokens;
    readonly Dictionary<string, int> _ids;
    readonly int[] _byteIds = new int[256], _endOfWordByteIds = new int[256];

    ClipBpeTokenizer(string[] merges, string source)
    {
        var vocabulary = new List<string>(2 * 256 + merges.Length + 2);
        vocabulary.AddRange(ByteLevel.Table.Select(e => e.Char.ToString()));
        vocabulary.AddRange(ByteLevel.Table.Select(e => e.Char + "</w>"));
        vocabulary.AddRange(merges.Select(m => m.Replace(" ", "")));
        vocabulary.Add(StartOfText);
        vocabulary.Add(EndOfText);
        _tokens = vocabulary.ToArray();
        _ids = new Dictionary<string, int>(_tokens.Length, StringComparer.Ordinal);
        for (int i = 0; i < _tokens.Length; i++) _ids[_tokens[i]] = i;
        int start = _ids[StartOfText], end = _ids[EndOfText];
        SpecialTokens = new SpecialTokenIds(Pad: 0, Start: start, End: end);
        foreach (var (b, c) in ByteLevel.Table)
        {
            _byteIds[b] = _ids[c.ToString()];
            _endOfWordByteIds[b] = _ids[c + "</w>"];
        }
        var pairs = new Dictionary<long, (int, int)>(merges.Length);
        for (int rank = 0; rank < merges.Length; rank++)
        {
            int space = merges[rank].IndexOf(' ');
            string left = merges[rank][..space], right = merges[rank][(space + 1)..];
            if (!_ids.TryGetValue(left, out int l) || !_ids.TryGetValue(right, out int r))
                throw new InvalidDataException($"{source}: merge {rank + 1} '{merges[rank]}' uses a symbol that no earlier merge made");
            pairs[BytePairEncoder.Key(l, r)] = (rank, _ids[left + right]);
        }
        _bpe = new BytePairEncoder(pairs);
    }

    static ClipBpeTokenizer? s_default;

    /// <summary>The tokenizer of every released CLIP model, from the embedded merges file.</summary>
    public static ClipBpeTokenizer Default()
    {
        if (s_default is not null) return s_default;
        using var resource = typeof(ClipBpeTokenizer).Assembly.GetManifestResourceStream(EmbeddedMerges)
            ?? throw new InvalidOperationException($"resource {EmbeddedMerges} is missing from the ModelZoo.Tokenization assembly");
        return s_default = FromMergesStream(resource, "bpe_simple_vocab_16e6.txt.gz (embedded)");
    }

    /// <summary>A tokenizer from a CLIP merges file (gzip-compressed like the original, or plain text).</summary>
    public static ClipBpeTokenizer FromFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"CLIP BPE merges file not found: {path}", path);
        using var stream = File.OpenRead(path);
        return FromMergesStream(stream, path);
    }

    public static ClipBpeTokenizer FromMergesStream(Stream stream, string source)
    {
        string text;
        try
        {
            var raw = new MemoryStream();
            stream.CopyTo(raw);
            raw.Position = 0;
            bool gzip = raw.Length >= 2 && raw.GetBuffer()[0] == 0x1F && raw.GetBuffer()[1] == 0x8B;
            using Stream input = gzip ? new GZipStream(raw, CompressionMode.Decompress) : raw;
            using var reader = new StreamReader(input, new UTF8Encoding(false, throwOnInvalidBytes: true));
            text = reader.ReadToEnd();
        }
        catch (Exception e) when (e is InvalidDataException or DecoderFallbackException or IOException)
        {
            throw new InvalidDataException($"{source}: cannot read the CLIP merges file ({e.Message})", e);
        }
        // The reference skips the header line and keeps 49152 - 256 - 2 merges.
        var lines = text.Split('\n');
        if (lines.Length < MergeCount + 1)
            throw new InvalidDataException($"{source}: a CLIP merges file has at least {MergeCount + 1} lines, this one {lines.Length}");
        var merges = new string[MergeCount];
        for (int i = 0; i < MergeCount; i++)
        {
            var parts = lines[i + 1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 2) throw new InvalidDataException($"{source}: line {i + 2} is not a merge of two symbols: '{lines[i + 1]}'");
            merges[i] = parts[0] + " " + parts[1];
        }
        return new ClipBpeTokenizer(merges, source);
    }

    public override string Name => "clip-bpe";

    public override int VocabularySize => _tokens.Length;

    public override SpecialTokenIds SpecialTokens { get; }

    protected override int SpecialTokenCount(bool pair) => 2;

    protected override (int[] Ids, int[] TokenTypes) AddSpecialTokens(IReadOnlyList<int> first, IReadOnlyList<int>? second)
    {
        var ids = new int[first.Count + 2];
        ids[0] = SpecialTokens.Start!.Value;
        for (int i = 0; i < first.Count; i++) ids[i + 1] = first[i];
        ids[^1] = SpecialTokens.End!.Value;
        return (ids, new int[ids.Length]);
    }

    /// <summary>
    /// The reference's clean-up: NFC (the fixtures' stand-in for ftfy.fix_text), HTML unescaped twice, stripped,
    /// whitespace runs to one space, lower-cased. Lone surrogates become U+FFFD (the reference cannot encode them).
    /// </summary>
    public static string Clean(string text)
    {
        text = PythonText.Normalize(PythonText.ReplaceLoneSurrogates(text), NormalizationForm.FormC);
        text = PythonText.Strip(HtmlEntities.Unescape(HtmlEntities.Unescape(text)));
        return PythonText.Lower(PythonText.Strip(CollapseWhiteSpace(text)));
    }

    static string CollapseWhiteSpace(string text)
    {
        // White_Space characters are all in the BMP: UTF-16 units suffice.
        var sb = new StringBuilder(text.Length);
        bool inSpace = false;
        foreach (char c in text)
        {
            if (PythonText.IsWhiteSpaceProperty(c))
            {
                if (!inSpace) sb.Append(' ');
                inSpace = true;
            }
            else
            {
                sb.Append(c);
                inSpace = false;
            }
        }
        return sb.ToString();
    }

    public override IReadOnlyList<int> EncodeToIds(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var cleaned = Clean(text);
        var ids = new List<int>();
        foreach (var (offset, length) in ClipPreTokenizer.Split(cleaned))
        {
            var piece = cleaned.Substring(offset, length);
            if (piece is StartOfText or EndOfText) { ids.Add(_ids[piece]); continue; }
            // Byte-level symbols; the last one carries the end-of-word mark.
            var utf8 = Encoding.UTF8.GetBytes(piece);
            var symbols = new int[utf8.Length];
            for (int i = 0; i < utf8.Length; i++) symbols[i] = i == utf8.Length - 1 ? _endOfWordByteIds[utf8[i]] : _byteIds[utf8[i]];
            ids.AddRange(_bpe.Encode(symbols, piece));
        }
        return ids;
    }

    public override IReadOnlyList<string> Tokenize(string text) => EncodeToIds(text).Select(id => _tokens[id]).ToList();

    /// <summary>
    /// The reference's decode: token strings joined, mapped back to bytes, UTF-8 decoded (invalid bytes become
    /// U+FFFD), "&lt;/w&gt;" turned into a space. With <paramref name="skipSpecialTokens"/> the start token is left
    /// out and decoding stops at the first end token (what follows it is padding).
    /// </summary>
    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            if (id < 0 || id >= _tokens.Length) throw new ArgumentOutOfRangeException(nameof(ids), $"id {id} is outside the CLIP vocabulary of {_tokens.Length}");
            if (skipSpecialTokens && id == SpecialTokens.Start) continue;
            if (skipSpecialTokens && id == SpecialTokens.End) break;
            foreach (char c in _tokens[id]) bytes.Add(ByteLevel.Decode(c) ?? (byte)'?');
        }
        return Encoding.UTF8.GetString(bytes.ToArray()).Replace("</w>", " ");
    }

    public override string? IdToToken(int id) => id >= 0 && id < _tokens.Length ? _tokens[id] : null;

    public override int? TokenToId(string token) => _ids.TryGetValue(token, out int id) ? id : null;
}
