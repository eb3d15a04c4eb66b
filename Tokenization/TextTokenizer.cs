namespace ModelZoo.Tokenization;

/// <summary>
/// What every tokenizer shares on top of its own text-to-ids step: special tokens, truncation (longest-first for
/// pairs), padding on either side, attention masks, token types and batching.
/// </summary>
public abstract class TextTokenizer : ITextTokenizer
{
    public abstract string Name { get; }
    public abstract int VocabularySize { get; }
    public abstract SpecialTokenIds SpecialTokens { get; }
    public abstract IReadOnlyList<int> EncodeToIds(string text);
    public abstract IReadOnlyList<string> Tokenize(string text);
    public abstract string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false);
    public abstract string? IdToToken(int id);
    public abstract int? TokenToId(string token);

    /// <summary>Whether <see cref="EncodePair"/> is meaningful for this tokenizer.</summary>
    protected virtual bool SupportsPairs => false;

    /// <summary>How many special tokens <see cref="AddSpecialTokens"/> adds to a single text or a pair.</summary>
    protected virtual int SpecialTokenCount(bool pair) => 0;

    /// <summary>Adds the special tokens around one text or a pair; returns ids and token types.</summary>
    protected virtual (int[] Ids, int[] TokenTypes) AddSpecialTokens(IReadOnlyList<int> first, IReadOnlyList<int>? second) =>
        Concatenate(first, second);

    /// <summary>First then second, token type 0 for the first and 1 for the second.</summary>
    protected static (int[] Ids, int[] TokenTypes) Concatenate(IReadOnlyList<int> first, IReadOnlyList<int>? second)
    {
        var ids = first.Concat(second ?? []).ToArray();
        var types = new int[ids.Length];
        for (int i = first.Count; i < ids.Length; i++) types[i] = 1;
        return (ids, types);
    }

    public EncodedText Encode(string text, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        options ??= EncodeOptions.Default;
        var row = Assemble(EncodeToIds(text), null, options);
        return options.Padding == Padding.MaxLength ? Pad(row, options.MaxLength ?? row.Length, options) : row;
    }

    public EncodedText EncodePair(string text, string pair, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(pair);
        if (!SupportsPairs) throw new NotSupportedException($"the {Name} tokenizer encodes single texts; sentence pairs are a BERT feature");
        options ??= EncodeOptions.Default;
        var row = Assemble(EncodeToIds(text), EncodeToIds(pair), options);
        return options.Padding == Padding.MaxLength ? Pad(row, options.MaxLength ?? row.Length, options) : row;
    }

    public EncodedBatch EncodeBatch(IReadOnlyList<string> texts, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        options ??= EncodeOptions.Default;
        var rows = texts.Select(t => Assemble(EncodeToIds(t ?? throw new ArgumentException("a text of the batch is null")), null, options)).ToList();
        return PadBatch(rows, options);
    }

    public EncodedBatch EncodePairBatch(IReadOnlyList<string> texts, IReadOnlyList<string> pairs, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(pairs);
        if (!SupportsPairs) throw new NotSupportedException($"the {Name} tokenizer encodes single texts; sentence pairs are a BERT feature");
        if (texts.Count != pairs.Count) throw new ArgumentException($"{texts.Count} texts but {pairs.Count} pairs");
        options ??= EncodeOptions.Default;
        var rows = texts.Select((t, i) => Assemble(EncodeToIds(t), EncodeToIds(pairs[i]), options)).ToList();
        return PadBatch(rows, options);
    }

    EncodedText Assemble(IReadOnlyList<int> first, IReadOnlyList<int>? second, EncodeOptions options)
    {
        bool truncated = false;
        if (options.MaxLength is int maxLength)
        {
            int specials = options.AddSpecialTokens ? SpecialTokenCount(second is not null) : 0;
            int budget = maxLength - specials;
            if (budget < 0) throw new ArgumentException($"max length {maxLength} leaves no room for the {specials} special tokens of {Name}");
            if (second is null)
            {
                if (first.Count > budget) { first = first.Take(budget).ToArray(); truncated = true; }
            }
            else if (first.Count + second.Count > budget)
            {
                // Longest-first: drop the last token of the longer sequence (the second on a tie), as BERT's reference does.
                int a = first.Count, b = second.Count;
                while (a + b > budget)
                {
                    if (a > b) a--;
                    else b--;
                }
                first = first.Take(a).ToArray();
                second = second.Take(b).ToArray();
                truncated = true;
            }
        }

        var (ids, types) = options.AddSpecialTokens ? AddSpecialTokens(first, second) : Concatenate(first, second);
        var mask = new int[ids.Length];
        Array.Fill(mask, 1);
        return new EncodedText(ids, mask, types) { Truncated = truncated };
    }

    EncodedBatch PadBatch(List<EncodedText> rows, EncodeOptions options)
    {
        int? target = options.Padding switch
        {
            Padding.MaxLength => options.MaxLength ?? (rows.Count == 0 ? 0 : rows.Max(r => r.Length)),
            Padding.Longest => rows.Count == 0 ? 0 : rows.Max(r => r.Length),
            _ => null,
        };
        return new EncodedBatch(target is int length ? rows.Select(r => Pad(r, length, options)).ToList() : rows);
    }

    EncodedText Pad(EncodedText row, int length, EncodeOptions options)
    {
        int extra = length - row.Length;
        if (extra <= 0) return row;
        int pad = SpecialTokens.Pad;
        int offset = options.PaddingSide == PaddingSide.Left ? extra : 0;
        var ids = new int[length];
        var mask = new int[length];
        var types = new int[length];
        Array.Fill(ids, pad);
        row.InputIds.CopyTo(ids, offset);
        row.AttentionMask.CopyTo(mask, offset);
        row.TokenTypeIds.CopyTo(types, offset);
        return new EncodedText(ids, mask, types) { Truncated = row.Truncated };
    }
}
