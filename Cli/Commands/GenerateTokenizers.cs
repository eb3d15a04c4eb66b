using ModelZoo.Tokenization;

namespace ModelZoo.Cli.Commands;

/// <summary>The tokenizers `modelzoo generate` uses for text prompts ("gpt2", "gpt2-flamingo").</summary>
public static class GenerateTokenizers
{
    public static ITextTokenizer Create(string name, string? vocabPath) =>
        throw new NotSupportedException($"the '{name}' tokenizer is not in this build yet (it comes with the GPT-2 tokenizer work); " +
                                        "give the prompt as token ids with --prompt-ids");
}
