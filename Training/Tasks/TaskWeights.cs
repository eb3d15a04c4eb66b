using ModelZoo.Models.Catalog;
using ModelZoo.Tokenization.Bert;
using ModelZoo.Weights;
using TorchSharp;

namespace ModelZoo.Training.Tasks;

/// <summary>
/// Loads pre-trained weights into a task model whose head is built for the task (an answer head of the vocabulary's
/// size, an image-text matching head): the backbone must load completely; the head's tensors load when the checkpoint
/// has them with the same shape and otherwise start from their initialisation. Heads the task model does not have
/// (pre-training heads, another task's head) are skipped.
/// </summary>
public static class TaskWeights
{
    /// <summary>
    /// Loads <paramref name="weightsPath"/> through the key map; keys under <paramref name="headPrefixes"/> may be
    /// missing, of another shape, or belong to another head of the same name. Anything else that does not fit is an
    /// error naming the keys (nothing is loaded then).
    /// </summary>
    public static LoadReport LoadWithTaskHead(torch.nn.Module model, string weightsPath, Func<ICheckpointReader, KeyMap> keyMap, params string[] headPrefixes)
    {
        using var reader = Checkpoint.Open(weightsPath);
        var map = keyMap(reader);
        var lenient = new LoadOptions { Strict = false };
        var (report, _) = ModelLoader.Plan(model, reader, map, lenient);
        bool InHead(string key) => headPrefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal));
        var ownTopLevel = model.named_children().Select(c => c.name).Concat(model.named_parameters(recurse: false).Select(p => p.name)).ToHashSet(StringComparer.Ordinal);
        var missing = report.Missing.Where(k => !InHead(k)).ToList();
        var mismatched = report.ShapeMismatches.Where(m => !InHead(m.Key)).ToList();
        // Unexpected keys under a module the model has are a real misfit; keys of heads it does not have are skipped.
        var unexpected = report.Unexpected.Where(k => !InHead(k) && ownTopLevel.Contains(k.Split('.')[0])).ToList();
        if (missing.Count > 0 || mismatched.Count > 0 || unexpected.Count > 0)
        {
            var lines = new List<string>();
            if (missing.Count > 0) lines.Add($"missing ({missing.Count}): {string.Join(", ", missing.Take(10))}");
            if (unexpected.Count > 0) lines.Add($"unexpected ({unexpected.Count}): {string.Join(", ", unexpected.Take(10))}");
            if (mismatched.Count > 0) lines.Add($"shape mismatch ({mismatched.Count}): {string.Join("; ", mismatched.Take(10))}");
            throw new CheckpointException(weightsPath, $"does not fit the {model.GetType().Name} backbone (nothing was loaded): " + string.Join(Environment.NewLine, lines));
        }
        return ModelLoader.Load(model, reader, map, lenient);
    }
}

/// <summary>
/// The BERT WordPiece tokenizer a preset declares (<see cref="ModelPreset.Tokenizer"/>): bert-base-uncased is
/// bundled; cased vocabularies (UNITER's bert-base-cased, 28996 tokens) come from a vocab.txt given with --vocab or
/// lying beside the weights. The vocabulary must fit the model's word embeddings.
/// </summary>
public static class BertTaskTokenizer
{
    public const string VocabFile = "vocab.txt";

    /// <summary>Whether the preset declares a cased WordPiece vocabulary.</summary>
    public static bool IsCased(ModelPreset preset) => preset.Tokenizer?.StartsWith("bert-wordpiece-cased", StringComparison.Ordinal) == true;

    /// <summary>
    /// The tokenizer and the vocabulary file it came from (null: the bundled uncased vocabulary).
    /// <paramref name="wordEmbeddingRows"/>: rows of the model's word embeddings, checked against the vocabulary size.
    /// </summary>
    public static (BertWordPieceTokenizer Tokenizer, string? VocabFile) For(ModelPreset preset, string? vocabPath, string? weightsPath, long? wordEmbeddingRows)
    {
        bool cased = IsCased(preset);
        string? beside = weightsPath is null ? null
            : Path.Combine(Directory.Exists(weightsPath) ? weightsPath : Path.GetDirectoryName(Path.GetFullPath(weightsPath)) ?? ".", VocabFile);
        string? path = vocabPath ?? (cased && beside is not null && File.Exists(beside) ? beside : null);
        if (path is null && cased)
            throw new ArgumentException($"{preset.Name} uses a cased WordPiece vocabulary ({preset.Tokenizer}), which is not bundled: " +
                                        "give its vocab.txt with --vocab (bert-base-cased's vocab.txt for UNITER), or put it beside the weights");
        if (path is not null && !File.Exists(path)) throw new FileNotFoundException($"{path}: vocabulary file not found", path);
        var tokenizer = path is null ? BertWordPieceTokenizer.BaseUncased() : BertWordPieceTokenizer.FromVocabFile(path, lowerCase: !cased);
        if (wordEmbeddingRows is long rows && tokenizer.VocabularySize > rows)
            throw new ArgumentException($"{path ?? "the bundled bert-base-uncased vocabulary"} has {tokenizer.VocabularySize} tokens but {preset.Name}'s word embeddings " +
                                        $"have {rows} rows ({preset.Tokenizer}): give the model's own vocabulary with --vocab");
        return (tokenizer, path);
    }

    /// <summary>Rows of the first "*word_embeddings.weight" parameter of a model, if it has one.</summary>
    public static long? WordEmbeddingRows(torch.nn.Module model) =>
        model.named_parameters().Where(p => p.name.EndsWith("word_embeddings.weight", StringComparison.Ordinal)).Select(p => (long?)p.parameter.shape[0]).FirstOrDefault();
}

/// <summary>A task model whose tokenizer came from a vocabulary file; a fine-tuned folder keeps a copy (vocab.txt).</summary>
public interface IUsesVocabularyFile
{
    string? VocabularyFile { get; }
}
