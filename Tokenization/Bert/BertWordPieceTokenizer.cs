using System.IO.Compression;
using System.Text;
using ModelZoo.Tokenization.Text;

namespace ModelZoo.Tokenization.Bert;

/// <summary>
/// BERT WordPiece tokenization (uncased: bert-base-uncased, LXMERT, ViLBERT, VisualBERT, ViLT; cased: UNITER), the
/// same tokens and ids as the reference BertTokenizer: <see cref="BertBasicTokenizer"/>, then greedy longest-match
/// WordPiece with "##" continuations; a word of more than 100 code points, or one with a piece outside the
/// vocabulary, becomes [UNK]. Model input is [CLS] a [SEP] (b [SEP]) with token types 0 (1).
/// </summary>
public sealed class BertWordPieceTokenizer : TextTokenizer
{
    public const int MaxInputCharsPerWord = 100;
    const string EmbeddedUncasedVocabulary = "ModelZoo.Tokenization.Resources.bert-base-uncased-vocab.txt.gz";

    readonly BertBasicTokenizer _basic;
    readonly int _unknownId;

    public BertWordPieceTokenizer(WordPieceVocabulary vocabulary, bool lowerCase = true, string? name = null)
    {
        Vocabulary = vocabulary;
        Name = name ?? (lowerCase ? "bert-wordpiece" : "bert-wordpiece-cased");
        _basic = new BertBasicTokenizer(lowerCase, BertBasicTokenizer.DefaultNeverSplit);
        int Required(string token) => vocabulary.Id(token)
            ?? throw new InvalidDataException($"{vocabulary.Source}: the BERT vocabulary has no {token} token");
        _unknownId = Required("[UNK]");
        SpecialTokens = new SpecialTokenIds(Pad: Required("[PAD]"), Unknown: _unknownId, Start: Required("[CLS]"), End: Required("[SEP]"),
            Mask: vocabulary.Id("[MASK]"));
    }

    /// <summary>A tokenizer over a vocab.txt; <paramref name="lowerCase"/> false for cased vocabularies (bert-base-cased).</summary>
    public static BertWordPieceTokenizer FromVocabFile(string path, bool lowerCase = true) =>
        new(WordPieceVocabulary.Load(path), lowerCase);

    /// <summary>bert-base-uncased with its vocabulary embedded in this assembly (no file needed).</summary>
    public static BertWordPieceTokenizer BaseUncased() => new(LoadEmbeddedUncasedVocabulary(), lowerCase: true);

    static WordPieceVocabulary? s_uncased;

    static WordPieceVocabulary LoadEmbeddedUncasedVocabulary()
    {
        if (s_uncased is not null) return s_uncased;
        using var resource = typeof(BertWordPieceTokenizer).Assembly.GetManifestResourceStream(EmbeddedUncasedVocabulary)
            ?? throw new InvalidOperationException($"resource {EmbeddedUncasedVocabulary} is missing from the ModelZoo.Tokenization assembly");
        using var gzip = new GZipStream(resource, CompressionMode.Decompress);
        return s_uncased = WordPieceVocabulary.Load(gzip, "bert-base-uncased vocab.txt (embedded)");
    }

    public WordPieceVocabulary Vocabulary { get; }

    public bool LowerCase => _basic.LowerCase;

    public override string Name { get; }

    public override int VocabularySize => Vocabulary.Count;

    public override SpecialTokenIds SpecialTokens { get; }

    protected override bool SupportsPairs => true;

    protected override int SpecialTokenCount(bool pair) => pair ? 3 : 2;

    protected override (int[] Ids, int[] TokenTypes) AddSpecialTokens(IReadOnlyList<int> first, IReadOnlyList<int>? second)
    {
        int cls = SpecialTokens.Start!.Value, sep = SpecialTokens.End!.Value;
        var ids = new List<int>(first.Count + (second?.Count ?? 0) + 3) { cls };
        ids.AddRange(first);
        ids.Add(sep);
        int firstLength = ids.Count;
        if (second is not null)
        {
            ids.AddRange(second);
            ids.Add(sep);
        }
        var types = new int[ids.Count];
        for (int i = firstLength; i < types.Length; i++) types[i] = 1;
        return (ids.ToArray(), types);
    }

    public override IReadOnlyList<string> Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var output = new List<string>();
        foreach (var word in _basic.Tokenize(text)) WordPiece(word, output);
        return output;
    }

    public override IReadOnlyList<int> EncodeToIds(string text)
    {
        var tokens = Tokenize(text);
        var ids = new int[tokens.Count];
        for (int i = 0; i < ids.Length; i++) ids[i] = Vocabulary.TryGetId(tokens[i], out int id) ? id : _unknownId;
        return ids;
    }

    void WordPiece(string word, List<string> output)
    {
        var chars = PythonText.CodePoints(word);
        if (chars.Length > MaxInputCharsPerWord) { output.Add("[UNK]"); return; }
        int first = output.Count;
        int start = 0;
        var sb = new StringBuilder();
        while (start < chars.Length)
        {
            string? piece = null;
            int end = chars.Length;
            for (; end > start; end--)
            {
                sb.Clear();
                if (start > 0) sb.Append("##");
                for (int i = start; i < end; i++) PythonText.AppendCodePoint(sb, chars[i]);
                var candidate = sb.ToString();
                if (Vocabulary.Contains(candidate)) { piece = candidate; break; }
            }
            if (piece is null)
            {
                output.RemoveRange(first, output.Count - first);
                output.Add("[UNK]");
                return;
            }
            output.Add(piece);
            start = end;
        }
    }

    /// <summary>Tokens joined by spaces with "##" continuations glued back (the reference's convert_tokens_to_string).</summary>
    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var special = new HashSet<int> { SpecialTokens.Pad, SpecialTokens.Start!.Value, SpecialTokens.End!.Value };
        if (SpecialTokens.Mask is int mask) special.Add(mask);
        var tokens = new List<string>();
        foreach (int id in ids)
        {
            if (skipSpecialTokens && special.Contains(id)) continue;
            tokens.Add(Vocabulary.Token(id) ?? throw new ArgumentOutOfRangeException(nameof(ids), $"id {id} is outside the {Name} vocabulary of {VocabularySize}"));
        }
        return string.Join(" ", tokens).Replace(" ##", "").Trim();
    }

    public override string? IdToToken(int id) => Vocabulary.Token(id);

    public override int? TokenToId(string token) => Vocabulary.Id(token);
}
