using ModelZoo.Tokenization.Bert;
using ModelZoo.Tokenization.Clip;
using ModelZoo.Tokenization.Gpt2;

namespace ModelZoo.Tokenization;

/// <summary>Tokenizers by name, as presets and the CLI name them.</summary>
public static class TokenizerFactory
{
    public static IReadOnlyList<string> Names { get; } = ["bert-wordpiece", "bert-wordpiece-cased", "clip-bpe", "gpt2", "gpt2-flamingo"];

    /// <summary>
    /// The tokenizer called <paramref name="name"/>. <paramref name="vocabPath"/> replaces the built-in vocabulary:
    /// a vocab.txt for BERT (required for the cased one), a merges file for CLIP, and for GPT-2 a tokenizer.json,
    /// a vocab.json with merges.txt beside it, or a folder holding either.
    /// </summary>
    public static ITextTokenizer Create(string name, string? vocabPath = null) => name switch
    {
        "bert-wordpiece" => vocabPath is null ? BertWordPieceTokenizer.BaseUncased() : BertWordPieceTokenizer.FromVocabFile(vocabPath),
        "bert-wordpiece-cased" => BertWordPieceTokenizer.FromVocabFile(vocabPath
            ?? throw new ArgumentException("bert-wordpiece-cased needs a vocabulary file (the vocab.txt of bert-base-cased)"), lowerCase: false),
        "clip-bpe" => vocabPath is null ? ClipBpeTokenizer.Default() : ClipBpeTokenizer.FromFile(vocabPath),
        "gpt2" => vocabPath is null ? Gpt2Tokenizer.Default() : Gpt2FromPath(vocabPath, [], null, "gpt2"),
        "gpt2-flamingo" => vocabPath is null
            ? Gpt2Tokenizer.Flamingo()
            : Gpt2FromPath(vocabPath, Gpt2Tokenizer.FlamingoSpecialTokens.Append(Gpt2Tokenizer.FlamingoPadToken).Select(t => new Gpt2Tokenizer.AddedToken(t)).ToList(),
                Gpt2Tokenizer.FlamingoPadToken, "gpt2-flamingo"),
        _ => throw new ArgumentException($"unknown tokenizer '{name}'; known: {string.Join(", ", Names)}"),
    };

    static Gpt2Tokenizer Gpt2FromPath(string path, IReadOnlyList<Gpt2Tokenizer.AddedToken> added, string? pad, string name)
    {
        if (Directory.Exists(path))
        {
            var json = Path.Combine(path, "tokenizer.json");
            if (File.Exists(json)) return Gpt2Tokenizer.FromTokenizerJson(json, added, pad, name);
            var vocab = Path.Combine(path, "vocab.json");
            if (File.Exists(vocab)) return Gpt2Tokenizer.FromFiles(vocab, Path.Combine(path, "merges.txt"), added, pad, name);
            throw new FileNotFoundException($"{path} holds neither tokenizer.json nor vocab.json + merges.txt");
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer file not found: {path}", path);
        if (Path.GetFileName(path).Equals("vocab.json", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".vocab.json", StringComparison.OrdinalIgnoreCase))
        {
            var merges = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "merges.txt");
            return Gpt2Tokenizer.FromFiles(path, merges, added, pad, name);
        }
        return Gpt2Tokenizer.FromTokenizerJson(path, added, pad, name);
    }
}
