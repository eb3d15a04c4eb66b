using System.Text.Json;
using ModelZoo.Tests.Support;

namespace ModelZoo.Tests.Tokenization;

/// <summary>The golden tokenizer cases of ../shared/fixtures (bert-wordpiece, clip-bpe).</summary>
public static class TokenizerFixtures
{
    public sealed record BertCase(int Index, string Text, string[] Tokens, int[] Ids, int[] InputIds20, int[] InputMask20, int[] SegmentIds20)
    {
        public override string ToString() => $"#{Index} {JsonSerializer.Serialize(Text.Length > 40 ? Text[..40] + "..." : Text)}";
    }

    public sealed record ClipCase(int Index, string Text, int[] BpeIds, string[] BpeTokens, string Decoded, int[] Tokenize77, bool Truncated)
    {
        public override string ToString() => $"#{Index} {JsonSerializer.Serialize(Text.Length > 40 ? Text[..40] + "..." : Text)}";
    }

    public static string BertVocabPath => TestPaths.Vocab("bert-base-uncased-vocab.txt");

    public static string ClipMergesPath => TestPaths.Vocab("bpe_simple_vocab_16e6.txt.gz");

    static readonly Lazy<BertCase[]> Bert = new(() =>
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixture("bert-wordpiece"), "cases.json")));
        return json.RootElement.EnumerateArray().Select((c, i) =>
        {
            var features = c.GetProperty("lxrt_features_max_seq_length_20");
            return new BertCase(i, c.GetProperty("text").GetString()!, Strings(c.GetProperty("tokens")), Ints(c.GetProperty("ids")),
                Ints(features.GetProperty("input_ids")), Ints(features.GetProperty("input_mask")), Ints(features.GetProperty("segment_ids")));
        }).ToArray();
    });

    static readonly Lazy<ClipCase[]> Clip = new(() =>
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixture("clip-bpe"), "cases.json")));
        return json.RootElement.EnumerateArray().Select((c, i) => new ClipCase(i, c.GetProperty("text").GetString()!,
            Ints(c.GetProperty("bpe_ids")), Strings(c.GetProperty("bpe_tokens")), c.GetProperty("decoded").GetString()!,
            Ints(c.GetProperty("tokenize77")), c.GetProperty("truncated").GetBoolean())).ToArray();
    });

    public static IEnumerable<BertCase> BertCases() => Bert.Value;

    public static IEnumerable<ClipCase> ClipCases() => Clip.Value;

    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    static string[] Strings(JsonElement e) => e.EnumerateArray().Select(x => x.GetString()!).ToArray();
}
