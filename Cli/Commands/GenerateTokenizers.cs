using ModelZoo.Tokenization;

namespace ModelZoo.Cli.Commands;

/// <summary>The tokenizers `modelzoo generate` uses for text prompts ("gpt2", "gpt2-flamingo"; --vocab swaps in user files).</summary>
public static class GenerateTokenizers
{
    public static ITextTokenizer Create(string name, string? vocabPath) => TokenizerFactory.Create(name, vocabPath);
}
