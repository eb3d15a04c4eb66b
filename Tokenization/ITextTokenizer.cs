namespace ModelZoo.Tokenization;

/// <summary>
/// A text tokenizer as the model families and the CLI use it: raw ids, the model-input form (special tokens,
/// truncation, padding, attention mask, token types), batches to tensors, and decoding.
/// </summary>
public interface ITextTokenizer
{
    /// <summary>The factory name ("bert-wordpiece", "bert-wordpiece-cased", "clip-bpe", "gpt2", "gpt2-flamingo").</summary>
    string Name { get; }

    /// <summary>Number of ids, added tokens included (the embedding rows a model needs).</summary>
    int VocabularySize { get; }

    SpecialTokenIds SpecialTokens { get; }

    /// <summary>The ids of <paramref name="text"/> without special tokens, truncation or padding.</summary>
    IReadOnlyList<int> EncodeToIds(string text);

    /// <summary>The tokens (vocabulary strings) of <paramref name="text"/> without special tokens.</summary>
    IReadOnlyList<string> Tokenize(string text);

    EncodedText Encode(string text, EncodeOptions? options = null);

    /// <summary>A sentence pair (BERT: [CLS] a [SEP] b [SEP] with token types 0/1); tokenizers without pairs throw NotSupportedException.</summary>
    EncodedText EncodePair(string text, string pair, EncodeOptions? options = null);

    EncodedBatch EncodeBatch(IReadOnlyList<string> texts, EncodeOptions? options = null);

    EncodedBatch EncodePairBatch(IReadOnlyList<string> texts, IReadOnlyList<string> pairs, EncodeOptions? options = null);

    /// <summary>Text from ids; with <paramref name="skipSpecialTokens"/> special, added-special and padding tokens are left out.</summary>
    string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false);

    string? IdToToken(int id);

    int? TokenToId(string token);
}

/// <summary>Ids of the special tokens a tokenizer has (null where it has none).</summary>
/// <param name="Pad">The id padding uses (BERT [PAD] = 0; CLIP pads with 0; GPT-2 with its pad or end-of-text token).</param>
/// <param name="Start">[CLS] / &lt;|startoftext|&gt;.</param>
/// <param name="End">[SEP] / &lt;|endoftext|&gt;.</param>
public sealed record SpecialTokenIds(int Pad, int? Unknown = null, int? Start = null, int? End = null, int? Mask = null);

public enum Padding
{
    /// <summary>No padding: rows keep their own lengths (a batch of different lengths cannot become a tensor).</summary>
    None,
    /// <summary>Pad to the longest row of the batch (a single text is not padded).</summary>
    Longest,
    /// <summary>Pad every row to <see cref="EncodeOptions.MaxLength"/>.</summary>
    MaxLength,
}

public enum PaddingSide { Right, Left }

/// <summary>How to turn text into model input.</summary>
public sealed record EncodeOptions
{
    /// <summary>Add the tokenizer's special tokens (BERT [CLS]/[SEP], CLIP start/end of text; GPT-2 has none to add).</summary>
    public bool AddSpecialTokens { get; init; } = true;

    /// <summary>Truncate to this many ids, special tokens included (longest-first for pairs); null: no truncation.</summary>
    public int? MaxLength { get; init; }

    public Padding Padding { get; init; } = Padding.Longest;

    /// <summary>Left padding is for generation (decoder-only models continue from the last position).</summary>
    public PaddingSide PaddingSide { get; init; } = PaddingSide.Right;

    public static EncodeOptions Default { get; } = new();

    /// <summary>The fixed-length model input: special tokens, truncated and padded to <paramref name="maxLength"/>.</summary>
    public static EncodeOptions ModelInput(int maxLength) => new() { MaxLength = maxLength, Padding = Padding.MaxLength };
}

/// <summary>One encoded text: ids, attention mask (1 = real token, 0 = padding) and token type ids, all the same length.</summary>
public sealed record EncodedText(int[] InputIds, int[] AttentionMask, int[] TokenTypeIds)
{
    public int Length => InputIds.Length;

    /// <summary>True when ids were cut to fit <see cref="EncodeOptions.MaxLength"/>.</summary>
    public bool Truncated { get; init; }
}
