using ModelZoo.Models.Common;
using ModelZoo.Processing.Images;
using ModelZoo.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Clip;

/// <summary>One image's ranking over the labels: probabilities in label order and the best <c>k</c>.</summary>
public sealed record ZeroShotPrediction(IReadOnlyList<float> Probabilities, IReadOnlyList<(string Label, float Probability)> Top);

/// <summary>A ranking of one query over a gallery: gallery indices best first with their cosine similarity.</summary>
public sealed record RetrievalRanking(IReadOnlyList<int> Indices, IReadOnlyList<float> Similarities);

/// <summary>
/// Zero-shot classification with CLIP (as in the CLIP paper): each label is written into prompt templates, the text
/// features of a label's prompts are normalised, averaged and normalised again into one class embedding, and an
/// image's probabilities are softmax(exp(logit_scale) · cos(image, class)).
/// </summary>
public sealed class ClipZeroShotClassifier
{
    public static readonly IReadOnlyList<string> DefaultTemplates = new[] { "a photo of a {}." };

    readonly ClipModel _model;
    readonly ITextTokenizer _tokenizer;

    public ClipZeroShotClassifier(ClipModel model, ITextTokenizer tokenizer, ImageResampler resampler = ImageResampler.Pil)
    {
        _model = model;
        _tokenizer = tokenizer;
        // Inference: BatchNorm (ResNet towers) uses its running statistics, dropout is off.
        model.eval();
        if (tokenizer.VocabularySize > model.Config.VocabSize)
            throw new ArgumentException($"the tokenizer '{tokenizer.Name}' has {tokenizer.VocabularySize} ids but the model's token embedding has {model.Config.VocabSize} rows");
        ImageProcessor = new ClipImageProcessor(model.Config.ImageResolution, resampler);
    }

    /// <summary>CLIP's image transform at the model's resolution (PIL's bicubic by default, as openai/CLIP).</summary>
    public ClipImageProcessor ImageProcessor { get; }

    /// <summary>Texts → CLIP token ids [N, context_length] (start/end of text, zero padding, cut with the end kept).</summary>
    public Tensor Tokenize(IReadOnlyList<string> texts)
    {
        using var tokens = _tokenizer.EncodeBatch(texts, EncodeOptions.ModelInput(_model.Config.ContextLength)).ToTensors();
        return tokens.InputIds.to(ScalarType.Int64).clone();
    }

    /// <summary>The prompts of one label: every template with "{}" replaced by the label.</summary>
    public static IReadOnlyList<string> Prompts(string label, IReadOnlyList<string> templates) =>
        templates.Select(t => t.Contains("{}", StringComparison.Ordinal) ? t.Replace("{}", label, StringComparison.Ordinal)
            : throw new ArgumentException($"template '{t}' has no {{}} where the label goes")).ToList();

    /// <summary>Class embeddings [C, embed_dim], unit length, one per label.</summary>
    public Tensor ClassEmbeddings(IReadOnlyList<string> labels, IReadOnlyList<string>? templates = null)
    {
        if (labels.Count == 0) throw new ArgumentException("no labels given");
        templates ??= DefaultTemplates;
        if (templates.Count == 0) throw new ArgumentException("no prompt templates given");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var device = _model.LogitScale.device;
        var rows = new List<Tensor>(labels.Count);
        foreach (var label in labels)
        {
            var features = _model.EncodeText(Tokenize(Prompts(label, templates)).to(device));
            var mean = ContrastiveLosses.Normalize(features).mean(new long[] { 0 });
            rows.Add(ContrastiveLosses.Normalize(mean));
        }
        return stack(rows).MoveToOuterDisposeScope();
    }

    /// <summary>images [B, 3, R, R] (preprocessed) against class embeddings → probabilities [B, C].</summary>
    public Tensor Probabilities(Tensor images, Tensor classEmbeddings)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var device = _model.LogitScale.device;
        var imageFeatures = ContrastiveLosses.Normalize(_model.EncodeImage(images.to(device))).to(classEmbeddings.dtype);
        var logits = _model.LogitScale.exp().to(classEmbeddings.dtype) * matmul(imageFeatures, classEmbeddings.to(device).t());
        return logits.softmax(-1).to(ScalarType.Float32).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>Classifies each image among <paramref name="labels"/>; <paramref name="topK"/> best labels per image.</summary>
    public IReadOnlyList<ZeroShotPrediction> Classify(Tensor images, IReadOnlyList<string> labels, IReadOnlyList<string>? templates = null, int topK = 5)
    {
        if (topK <= 0) throw new ArgumentException($"top-k must be positive, got {topK}");
        using var classes = ClassEmbeddings(labels, templates);
        using var probabilities = Probabilities(images, classes);
        var results = new List<ZeroShotPrediction>();
        for (long i = 0; i < probabilities.shape[0]; i++)
        {
            var row = probabilities[i].data<float>().ToArray();
            var top = row.Select((p, j) => (Label: labels[j], Probability: p)).OrderByDescending(x => x.Probability).Take(topK).ToList();
            results.Add(new ZeroShotPrediction(row, top));
        }
        return results;
    }

    /// <summary>Decodes and preprocesses image files (errors name the file), then <see cref="Classify(Tensor, IReadOnlyList{string}, IReadOnlyList{string}?, int)"/>.</summary>
    public IReadOnlyList<ZeroShotPrediction> ClassifyFiles(IReadOnlyList<string> imageFiles, IReadOnlyList<string> labels, IReadOnlyList<string>? templates = null, int topK = 5)
    {
        if (imageFiles.Count == 0) throw new ArgumentException("no image files given");
        using var images = ImageProcessor.ProcessFiles(imageFiles);
        return Classify(images.Pixels, labels, templates, topK);
    }
}

/// <summary>Image-text retrieval over CLIP features: cosine similarities and rankings in both directions.</summary>
public static class ClipRetrieval
{
    /// <summary>Cosine similarities [images, texts] of raw features (normalised here).</summary>
    public static Tensor Similarities(Tensor imageFeatures, Tensor textFeatures)
    {
        if (imageFeatures.dim() != 2 || textFeatures.dim() != 2 || imageFeatures.shape[1] != textFeatures.shape[1])
            throw new ArgumentException($"retrieval needs features [N, D] and [M, D], got [{string.Join(", ", imageFeatures.shape)}] and [{string.Join(", ", textFeatures.shape)}]");
        using var scope = NewDisposeScope();
        return matmul(ContrastiveLosses.Normalize(imageFeatures), ContrastiveLosses.Normalize(textFeatures).t()).MoveToOuterDisposeScope();
    }

    /// <summary>For each row of <paramref name="similarities"/> [Q, G], the <paramref name="topK"/> best columns.</summary>
    public static IReadOnlyList<RetrievalRanking> Rank(Tensor similarities, int topK)
    {
        if (topK <= 0) throw new ArgumentException($"top-k must be positive, got {topK}");
        int k = (int)Math.Min(topK, similarities.shape[1]);
        using var scope = NewDisposeScope();
        var (values, indices) = similarities.to(ScalarType.Float32).cpu().topk(k, 1);
        var rankings = new List<RetrievalRanking>();
        for (long i = 0; i < similarities.shape[0]; i++)
            rankings.Add(new RetrievalRanking(indices[i].data<long>().Select(x => (int)x).ToArray(), values[i].data<float>().ToArray()));
        return rankings;
    }

    /// <summary>Texts best matching each image ([images] rankings over the texts).</summary>
    public static IReadOnlyList<RetrievalRanking> ImageToText(Tensor imageFeatures, Tensor textFeatures, int topK)
    {
        using var similarities = Similarities(imageFeatures, textFeatures);
        return Rank(similarities, topK);
    }

    /// <summary>Images best matching each text ([texts] rankings over the images).</summary>
    public static IReadOnlyList<RetrievalRanking> TextToImage(Tensor imageFeatures, Tensor textFeatures, int topK)
    {
        using var similarities = Similarities(imageFeatures, textFeatures);
        using var transposed = similarities.t();
        return Rank(transposed, topK);
    }
}
