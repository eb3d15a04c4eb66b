using System.Text;
using ModelZoo.Tokenization.Text;

namespace ModelZoo.Tokenization.Bert;

/// <summary>
/// A BERT vocab.txt: one token per line, the line number is the id. Read as the reference reads it: universal
/// newlines, each line stripped of surrounding whitespace, a later duplicate line takes the token's id.
/// </summary>
public sealed class WordPieceVocabulary
{
    readonly Dictionary<string, int> _ids;
    readonly string[] _tokens;

    WordPieceVocabulary(string[] lines, string source)
    {
        Source = source;
        _tokens = lines;
        _ids = new Dictionary<string, int>(lines.Length, StringComparer.Ordinal);
        for (int i = 0; i < lines.Length; i++) _ids[lines[i]] = i;
    }

    /// <summary>Where the vocabulary came from (a path or a resource name), for error messages.</summary>
    public string Source { get; }

    /// <summary>Number of lines (ids).</summary>
    public int Count => _tokens.Length;

    public bool TryGetId(string token, out int id) => _ids.TryGetValue(token, out id);

    public bool Contains(string token) => _ids.ContainsKey(token);

    public int? Id(string token) => _ids.TryGetValue(token, out int id) ? id : null;

    public string? Token(int id) => id >= 0 && id < _tokens.Length ? _tokens[id] : null;

    public static WordPieceVocabulary Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"BERT vocabulary file not found: {path}", path);
        using var stream = File.OpenRead(path);
        return Load(stream, path);
    }

    public static WordPieceVocabulary Load(Stream stream, string source)
    {
        string text;
        try
        {
            using var reader = new StreamReader(stream, new UTF8Encoding(false, throwOnInvalidBytes: true), detectEncodingFromByteOrderMarks: false);
            text = reader.ReadToEnd();
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"{source}: the vocabulary is not valid UTF-8 ({e.Message})", e);
        }
        return FromText(text, source);
    }

    public static WordPieceVocabulary FromText(string text, string source = "(text)")
    {
        var lines = text.Replace("\r\n", "\n").Replace('\r', '\n').Split('\n');
        int count = lines.Length > 0 && lines[^1].Length == 0 ? lines.Length - 1 : lines.Length;
        var tokens = new string[count];
        for (int i = 0; i < count; i++) tokens[i] = PythonText.Strip(lines[i]);
        if (count == 0) throw new InvalidDataException($"{source}: the vocabulary is empty");
        return new WordPieceVocabulary(tokens, source);
    }

    public static WordPieceVocabulary FromTokens(IEnumerable<string> tokens, string source = "(tokens)") =>
        new(tokens.ToArray(), source);
}
