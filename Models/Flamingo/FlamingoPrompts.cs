using System.Text;
using ModelZoo.Tokenization;

namespace ModelZoo.Models.Flamingo;

/// <summary>
/// OpenFlamingo's interleaved prompt format: "&lt;image&gt;" where an image goes (images in order), "&lt;|endofchunk|&gt;"
/// after the text that belongs to an image. The few-shot prompts follow open_flamingo/eval (get_vqa_prompt,
/// get_caption_prompt): demonstrations joined with no separator, then the query with its answer left open.
/// </summary>
public static class FlamingoPrompts
{
    public const string Image = "<image>";
    public const string EndOfChunk = "<|endofchunk|>";

    /// <summary>"&lt;image&gt;Question:{q} Short answer:{a}&lt;|endofchunk|&gt;", or without answer and end of chunk for the query.</summary>
    public static string Vqa(string question, string? answer = null) =>
        $"{Image}Question:{question} Short answer:{answer ?? ""}{(answer is null ? "" : EndOfChunk)}";

    /// <summary>"&lt;image&gt;Output:{caption}&lt;|endofchunk|&gt;", or "&lt;image&gt;Output:" for the query.</summary>
    public static string Caption(string? caption = null) => $"{Image}Output:{caption ?? ""}{(caption is null ? "" : EndOfChunk)}";

    /// <summary>A k-shot VQA prompt: k answered demonstrations, then the open question (k + 1 images, query image last).</summary>
    public static string FewShotVqa(IEnumerable<(string Question, string Answer)> shots, string question)
    {
        var sb = new StringBuilder();
        foreach (var (q, a) in shots) sb.Append(Vqa(q, a));
        return sb.Append(Vqa(question)).ToString();
    }

    /// <summary>A k-shot captioning prompt: k captioned demonstrations, then "&lt;image&gt;Output:" for the query image.</summary>
    public static string FewShotCaption(IEnumerable<string> captions)
    {
        var sb = new StringBuilder();
        foreach (var c in captions) sb.Append(Caption(c));
        return sb.Append(Caption()).ToString();
    }

    /// <summary>How many "&lt;image&gt;" markers a prompt has (the number of images it needs).</summary>
    public static int CountImages(string prompt)
    {
        int count = 0;
        for (int at = prompt.IndexOf(Image, StringComparison.Ordinal); at >= 0; at = prompt.IndexOf(Image, at + Image.Length, StringComparison.Ordinal)) count++;
        return count;
    }

    /// <summary>
    /// Token ids of an interleaved prompt. The tokenizer must have "&lt;image&gt;" and "&lt;|endofchunk|&gt;" as single
    /// added tokens at the model's ids (GPT-2: the "gpt2-flamingo" tokenizer); anything else is an error naming the ids.
    /// </summary>
    public static long[] Encode(ITextTokenizer tokenizer, FlamingoConfig config, string prompt)
    {
        CheckTokenizer(tokenizer, config);
        var ids = tokenizer.EncodeToIds(prompt).Select(i => (long)i).ToArray();
        int markers = CountImages(prompt), mediaTokens = ids.Count(i => i == config.MediaTokenId);
        if (markers != mediaTokens)
            throw new InvalidDataException($"the prompt has {markers} {Image} markers but tokenizes to {mediaTokens} media tokens (id {config.MediaTokenId})");
        return ids;
    }

    /// <summary>Which tokenizer fits: gpt2-flamingo for a GPT-2 decoder; the decoder's own one (not bundled) otherwise.</summary>
    public static string TokenizerHint(FlamingoConfig config) => config.Gpt2 is not null
        ? " (use the tokenizer with the Flamingo tokens added, e.g. gpt2-flamingo)"
        : $" (this model's decoder is {(config.Mpt is not null ? "MPT: its tokenizer is GPT-NeoX's" : "LLaMA-style: its tokenizer is the LLaMA one")}, which is not bundled:" +
          $" pass the model's tokenizer.json with {EndOfChunk} and {Image} added (id {config.EndOfChunkTokenId}, {config.MediaTokenId}; `generate --vocab FILE`)," +
          " or give the prompt as token ids (`generate --prompt-ids`))";

    public static void CheckTokenizer(ITextTokenizer tokenizer, FlamingoConfig config)
    {
        foreach (var (token, expected) in new[] { (Image, config.MediaTokenId), (EndOfChunk, config.EndOfChunkTokenId) })
        {
            var id = tokenizer.TokenToId(token);
            if (id != expected)
                throw new InvalidDataException($"tokenizer '{tokenizer.Name}' maps {token} to {(id is null ? "nothing" : id.ToString())}, the model expects {expected}" +
                                               TokenizerHint(config));
        }
        int rows = config.LanguageVocab;
        if (tokenizer.VocabularySize > rows)
            throw new InvalidDataException($"tokenizer '{tokenizer.Name}' has {tokenizer.VocabularySize} ids, the model only {rows} embedding rows");
    }
}
