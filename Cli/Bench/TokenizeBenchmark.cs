using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using ModelZoo.Cli.Commands;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Tokenization;

namespace ModelZoo.Cli.Bench;

/// <summary>
/// Tokenizer throughput, one thread, <c>EncodeToIds</c>: generated VQA-like questions (ASCII, and with accents and
/// CJK words), and the 100,000-character worst cases (one unbroken ASCII word, CJK only, emoji only). Every
/// tokenizer runs every workload in the same process, so the ratios compare like with like.
/// </summary>
public sealed class TokenizeBenchmark : IBenchmarkCommand
{
    public static readonly string[] DefaultTokenizers = ["bert-wordpiece", "clip-bpe", "gpt2"];

    public Command Build()
    {
        var tokenizers = new Option<string[]>("--tokenizers") { Description = "Tokenizers to compare", DefaultValueFactory = _ => DefaultTokenizers, AllowMultipleArgumentsPerToken = true };
        var sentences = new Option<int>("--sentences") { Description = "Generated questions per sentence workload", DefaultValueFactory = _ => 20_000 };
        var longChars = new Option<int>("--long-chars") { Description = "Length of each worst-case line", DefaultValueFactory = _ => 100_000 };
        var rounds = new Option<int>("--rounds") { Description = "Timed rounds per cell after one warm-up (median reported)", DefaultValueFactory = _ => 3 };
        var json = CommonOptions.Json();
        var command = new Command("tokenize", "Tokenizer throughput (texts/s, one thread) on generated questions and 100,000-character worst cases")
            { tokenizers, sentences, longChars, rounds, json };
        command.Guard(parse =>
        {
            int count = parse.GetValue(sentences), length = parse.GetValue(longChars), r = parse.GetValue(rounds);
            if (count <= 0 || length <= 0 || r <= 0) throw new ArgumentException("--sentences, --long-chars and --rounds must be positive");
            var names = parse.GetValue(tokenizers)!;
            if (names.Length == 0) throw new ArgumentException("--tokenizers names no tokenizer");
            var rows = Run(names, Workloads(count, length), r);
            if (parse.GetValue(json)) { CliRun.PrintJson(rows); return 0; }
            Console.WriteLine($"tokenize: EncodeToIds, one thread, {Environment.ProcessorCount} cores, median of {r} rounds after a warm-up");
            var table = new Table("workload", "tokenizer", "texts", "chars", "ids", "ms", "texts/s", "Mchars/s", "vs fastest");
            foreach (var row in rows)
                table.Add(row.Workload, row.Tokenizer, row.Texts, row.Chars, row.Ids, row.Milliseconds.ToString("0.0", CultureInfo.InvariantCulture),
                    row.TextsPerSecond.ToString("0", CultureInfo.InvariantCulture), (row.CharsPerSecond / 1e6).ToString("0.00", CultureInfo.InvariantCulture),
                    row.VsFastest.ToString("0.00", CultureInfo.InvariantCulture) + "x");
            Console.Write(table);
            Console.WriteLine("vs fastest: time of the fastest tokenizer on the workload over this one's (1.00x = fastest).");
            return 0;
        });
        return command;
    }

    public sealed record Workload(string Name, IReadOnlyList<string> Texts);

    public sealed record Row(string Workload, string Tokenizer, int Texts, long Chars, long Ids, double Milliseconds, double VsFastest)
    {
        public double TextsPerSecond => Texts / (Milliseconds / 1000);
        public double CharsPerSecond => Chars / (Milliseconds / 1000);
    }

    static readonly string[] Questions = ["what", "is", "the", "man", "holding", "how", "many", "people", "are", "in", "picture", "color",
        "of", "cat", "on", "table", "does", "this", "look", "like", "a", "kitchen", "where", "dog", "sitting", "which", "side",
        "car", "parked", "why", "woman", "smiling", "there", "any", "bananas", "plate", "red", "umbrella", "open", "train"];

    static readonly string[] Foreign = ["café", "naïve", "Zürich", "résumé", "São", "Ελλάδα", "москва", "東京", "日本語", "北京的", "ソウル", "서울"];

    /// <summary>The workloads: seeded, so every run (and every tokenizer) sees the same texts.</summary>
    public static IReadOnlyList<Workload> Workloads(int sentences, int longChars)
    {
        var random = new Random(2026);
        string Question(bool foreign)
        {
            int words = random.Next(5, 13);
            var sb = new StringBuilder();
            for (int w = 0; w < words; w++)
            {
                if (w > 0) sb.Append(' ');
                var word = foreign && random.Next(3) == 0 ? Foreign[random.Next(Foreign.Length)] : Questions[random.Next(Questions.Length)];
                sb.Append(w == 0 ? char.ToUpperInvariant(word[0]) + word[1..] : word);
            }
            return sb.Append('?').ToString();
        }
        var ascii = Enumerable.Range(0, sentences).Select(_ => Question(false)).ToList();
        var mixed = Enumerable.Range(0, sentences).Select(_ => Question(true)).ToList();
        var letters = new StringBuilder(longChars);
        while (letters.Length < longChars) letters.Append((char)('a' + random.Next(26)));
        var cjk = new StringBuilder(longChars);
        while (cjk.Length < longChars) cjk.Append((char)random.Next(0x4E00, 0x9FFF));
        var emoji = new StringBuilder(longChars);
        while (emoji.Length + 2 <= longChars) emoji.Append(char.ConvertFromUtf32(random.Next(0x1F300, 0x1FAFF)));
        return
        [
            new("questions", ascii),
            new("questions+accents/CJK", mixed),
            new($"long letters ({Count(longChars)}, no space)", [letters.ToString()]),
            new($"long CJK ({Count(longChars)})", [cjk.ToString()]),
            new($"long emoji ({Count(emoji.Length)} chars)", [emoji.ToString()]),
        ];
    }

    static string Count(int n) => n.ToString("N0", CultureInfo.InvariantCulture);

    public static List<Row> Run(IReadOnlyList<string> tokenizerNames, IReadOnlyList<Workload> workloads, int rounds)
    {
        var tokenizers = tokenizerNames.Select(n => TokenizerFactory.Create(n)).ToList();
        var rows = new List<Row>();
        foreach (var workload in workloads)
        {
            long chars = workload.Texts.Sum(t => (long)t.Length);
            var cells = new List<(string Name, long Ids, double Ms)>();
            foreach (var tokenizer in tokenizers)
            {
                long ids = Encode(tokenizer, workload.Texts); // warm-up (fills the BPE caches as steady use would)
                var times = new List<double>();
                for (int r = 0; r < rounds; r++)
                {
                    var watch = Stopwatch.StartNew();
                    Encode(tokenizer, workload.Texts);
                    times.Add(watch.Elapsed.TotalMilliseconds);
                }
                times.Sort();
                cells.Add((tokenizer.Name, ids, Math.Max(times[times.Count / 2], 1e-3)));
            }
            double fastest = cells.Min(c => c.Ms);
            rows.AddRange(cells.Select(c => new Row(workload.Name, c.Name, workload.Texts.Count, chars, c.Ids, c.Ms, fastest / c.Ms)));
        }
        return rows;
    }

    static long Encode(ITextTokenizer tokenizer, IReadOnlyList<string> texts)
    {
        long ids = 0;
        foreach (var text in texts) ids += tokenizer.EncodeToIds(text).Count;
        return ids;
    }
}
