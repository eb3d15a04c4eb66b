using System.CommandLine;
using System.Text;
using System.Text.Json;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Tokenization;

namespace ModelZoo.Cli.Commands;

/// <summary>
/// `modelzoo tokenize`: text lines from stdin (or a JSON array of strings with --input) to JSON arrays of ids. Without
/// --max-length the ids carry no special tokens; with it they are the model input (special tokens, truncated and
/// padded to N).
/// </summary>
public sealed class TokenizeCommand : ICliCommand
{
    public Command Build()
    {
        var tokenizer = new Option<string>("--tokenizer")
        {
            Description = "bert-wordpiece, bert-wordpiece-cased, clip-bpe, gpt2 or gpt2-flamingo",
            Required = true,
        };
        var vocab = new Option<string?>("--vocab")
        {
            Description = "Vocabulary file replacing the built-in one: BERT vocab.txt (required for bert-wordpiece-cased), "
                + "CLIP bpe_simple_vocab_16e6.txt.gz, GPT-2 tokenizer.json or vocab.json (merges.txt beside it) or their folder",
        };
        var maxLength = new Option<int?>("--max-length") { Description = "Model-input form: special tokens added, truncated and padded to N ids (pad id 0 for BERT and CLIP; GPT-2 pads with <|endoftext|>, gpt2-flamingo with <PAD>)" };
        var input = new Option<string?>("--input") { Description = "A JSON file holding an array of strings (printed as one array of arrays); default: one text per stdin line" };
        var command = new Command("tokenize", "Print token ids of texts as JSON arrays") { tokenizer, vocab, maxLength, input };
        command.Guard(parse =>
        {
            var name = parse.GetValue(tokenizer)!;
            int? length = parse.GetValue(maxLength);
            if (length is <= 0) throw new ArgumentException($"--max-length must be positive, not {length}");
            var tok = TokenizerFactory.Create(name, parse.GetValue(vocab));
            var options = length is int n ? EncodeOptions.ModelInput(n) : null;
            IReadOnlyList<int> Ids(string text) => options is null ? tok.EncodeToIds(text) : tok.Encode(text, options).InputIds;

            var output = Console.Out;
            if (parse.GetValue(input) is { } path)
            {
                var texts = ReadTexts(path);
                var sb = new StringBuilder("[");
                for (int i = 0; i < texts.Count; i++)
                {
                    if (i > 0) sb.Append(',');
                    AppendIds(sb, Ids(texts[i]));
                }
                output.WriteLine(sb.Append(']').ToString());
                return 0;
            }
            while (Console.In.ReadLine() is { } line)
            {
                var sb = new StringBuilder();
                AppendIds(sb, Ids(line));
                output.WriteLine(sb.ToString());
            }
            return 0;
        });
        return command;
    }

    static void AppendIds(StringBuilder sb, IReadOnlyList<int> ids)
    {
        sb.Append('[');
        for (int i = 0; i < ids.Count; i++)
        {
            if (i > 0) sb.Append(',');
            sb.Append(ids[i]);
        }
        sb.Append(']');
    }

    static List<string> ReadTexts(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"input file not found: {path}", path);
        JsonDocument json;
        try
        {
            json = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e);
        }
        using (json)
        {
            if (json.RootElement.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"{path}: expected a JSON array of strings, found {json.RootElement.ValueKind}");
            var texts = new List<string>();
            int index = 0;
            foreach (var element in json.RootElement.EnumerateArray())
            {
                if (element.ValueKind != JsonValueKind.String)
                    throw new InvalidDataException($"{path}: element {index} is {element.ValueKind}, not a string");
                texts.Add(StringValue(element, path, index));
                index++;
            }
            return texts;
        }
    }

    // System.Text.Json refuses to unescape an unpaired surrogate ("\ud800", which Python's json.dump writes for a
    // lone surrogate): such strings are unescaped here, keeping the lone UTF-16 unit (the tokenizers handle it).
    static string StringValue(JsonElement element, string path, int index)
    {
        try
        {
            return element.GetString()!;
        }
        catch (InvalidOperationException)
        {
            return UnescapeLeniently(element.GetRawText(), path, index);
        }
    }

    /// <summary>The text of a raw JSON string token (quotes included), unpaired surrogate escapes kept as lone units.</summary>
    static string UnescapeLeniently(string raw, string path, int index)
    {
        if (raw.Length < 2 || raw[0] != '"' || raw[^1] != '"')
            throw new InvalidDataException($"{path}: element {index} is not a JSON string");
        var sb = new StringBuilder(raw.Length);
        for (int i = 1; i < raw.Length - 1; i++)
        {
            char c = raw[i];
            if (c != '\\') { sb.Append(c); continue; }
            if (++i >= raw.Length - 1) throw new InvalidDataException($"{path}: element {index} ends inside an escape");
            switch (raw[i])
            {
                case '"': sb.Append('"'); break;
                case '\\': sb.Append('\\'); break;
                case '/': sb.Append('/'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'u' when i + 4 < raw.Length - 1 && ushort.TryParse(raw.AsSpan(i + 1, 4), System.Globalization.NumberStyles.AllowHexSpecifier, null, out var unit):
                    sb.Append((char)unit);
                    i += 4;
                    break;
                default: throw new InvalidDataException($"{path}: element {index} has a bad escape '\\{raw[i]}'");
            }
        }
        return sb.ToString();
    }
}
