using System.Text.RegularExpressions;
using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using ModelZoo.Models.Common;
using ModelZoo.Training.Tasks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Training.Demo;

/// <summary>
/// A word-level vocabulary for the demo's closed language ([PAD] 0, [CLS] 1, [UNK] 2, then the words of the
/// training texts in order of first appearance). Real models use the library's tokenizers.
/// </summary>
public sealed partial class WordVocabulary
{
    readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal) { ["[PAD]"] = 0, ["[CLS]"] = 1, ["[UNK]"] = 2 };

    public int Count => _ids.Count;
    public IReadOnlyList<string> Words => _ids.OrderBy(p => p.Value).Select(p => p.Key).ToList();

    public static WordVocabulary Build(IEnumerable<string> texts)
    {
        var vocabulary = new WordVocabulary();
        foreach (var text in texts)
            foreach (var word in Split(text))
                vocabulary._ids.TryAdd(word, vocabulary._ids.Count);
        return vocabulary;
    }

    public static WordVocabulary FromWords(IEnumerable<string> words)
    {
        var vocabulary = new WordVocabulary();
        foreach (var word in words) vocabulary._ids.TryAdd(word, vocabulary._ids.Count);
        return vocabulary;
    }

    /// <summary>[CLS] then the word ids.</summary>
    public long[] Encode(string text) => new long[] { 1 }.Concat(Split(text).Select(w => (long)_ids.GetValueOrDefault(w, 2))).ToArray();

    static IEnumerable<string> Split(string text) => WordPattern().Matches(text.ToLowerInvariant()).Select(m => m.Value);

    [GeneratedRegex("[a-z0-9]+")]
    private static partial Regex WordPattern();
}

/// <summary>Configuration of the demo's small transformers.</summary>
public sealed record DemoModelConfig
{
    public int ImageSize { get; init; } = 48;
    public int PatchSize { get; init; } = 8;
    public int Hidden { get; init; } = 64;
    public int Layers { get; init; } = 2;
    public int Heads { get; init; } = 4;
    public int MaxTextLength { get; init; } = 16;
    public int EmbeddingDim { get; init; } = 64;
    public double Dropout { get; init; } = 0.1;
    public int Patches => (ImageSize / PatchSize) * (ImageSize / PatchSize);

    public PreNormLayerOptions LayerOptions => new()
    {
        Hidden = Hidden, Heads = Heads, MlpDim = 2 * Hidden, AttentionDropout = 0, ResidualDropout = Dropout, LayerNormEps = 1e-6,
    };
}

/// <summary>Patch embedding (a strided convolution) with learned positions: [B, 3, H, W] to [B, patches, hidden].</summary>
sealed class PatchEmbedding : nn.Module<Tensor, Tensor>
{
    readonly Conv2d proj;
    readonly Parameter pos_embed;

    public PatchEmbedding(DemoModelConfig config) : base("patch_embed")
    {
        proj = nn.Conv2d(3, config.Hidden, config.PatchSize, stride: config.PatchSize);
        pos_embed = new Parameter(randn(1, config.Patches, config.Hidden) * 0.02);
        RegisterComponents();
    }

    public override Tensor forward(Tensor pixels) => proj.forward(pixels).flatten(2).transpose(1, 2) + pos_embed;
}

/// <summary>Pre-norm transformer layers (the library's ViT/CLIP layer) under a padding mask.</summary>
sealed class DemoEncoder : nn.Module
{
    readonly ModuleList<PreNormTransformerLayer> blocks;
    readonly LayerNorm norm;

    public DemoEncoder(DemoModelConfig config) : base("encoder")
    {
        blocks = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(_ => new PreNormTransformerLayer(config.LayerOptions)).ToArray());
        norm = nn.LayerNorm(config.Hidden, 1e-6);
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Tensor? padding)
    {
        var mask = AttentionMask.FromPadding(padding);
        foreach (var block in blocks) x = block.forward(x, mask);
        return norm.forward(x);
    }
}

static class DemoInputs
{
    /// <summary>Pixels resized and scaled to [-1, 1], stacked [B, 3, S, S], in the module's dtype and device.</summary>
    public static Tensor Images(IReadOnlyList<VisualInput> images, int size, Tensor like) =>
        stack(images.Select(i => ImageFiles.Resize(i.RgbPixels(), size)).ToArray()).to(like.dtype, like.device) * 2 - 1;

    public static (Tensor Ids, Tensor Mask) Texts(IReadOnlyList<string> texts, WordVocabulary vocabulary, int maxLength, Device device)
    {
        var rows = texts.Select(t => (IReadOnlyList<int>)vocabulary.Encode(t).Take(maxLength).Select(i => (int)i).ToList()).ToList();
        var (ids, mask) = Evaluation.Data.Batching.PadSequences(rows);
        return (ids.to(device), mask.to(device));
    }
}

/// <summary>
/// The demo's one-stream VQA model (ViLT-style): word embeddings and image patches in one sequence with modality
/// embeddings, pre-norm transformer layers, a tanh pooler on the first token ([CLS]) and ViLT's VQA classifier
/// (Linear, LayerNorm, GELU, Linear).
/// </summary>
public sealed class DemoViltVqa : nn.Module, IVqaModel
{
    readonly Embedding word_embeddings, text_positions, modality;
    readonly PatchEmbedding patch_embed;
    readonly DemoEncoder encoder;
    readonly BertPooler pooler;
    readonly Sequential vqa_classifier;
    readonly WordVocabulary _vocabulary;

    public DemoModelConfig Config { get; }
    public WordVocabulary Vocabulary => _vocabulary;
    public int Answers { get; }
    public nn.Module Module => this;

    public DemoViltVqa(DemoModelConfig config, WordVocabulary vocabulary, int answers) : base("demo_vilt")
    {
        Config = config;
        Answers = answers;
        _vocabulary = vocabulary;
        word_embeddings = nn.Embedding(vocabulary.Count, config.Hidden, padding_idx: 0);
        text_positions = nn.Embedding(config.MaxTextLength, config.Hidden);
        modality = nn.Embedding(2, config.Hidden);
        patch_embed = new PatchEmbedding(config);
        encoder = new DemoEncoder(config);
        pooler = new BertPooler(config.Hidden, config.Hidden);
        vqa_classifier = nn.Sequential(
            ("0", nn.Linear(config.Hidden, 2 * config.Hidden)), ("1", nn.LayerNorm(2 * config.Hidden)),
            ("2", new ActivationModule(Activation.GeluErf)), ("3", nn.Linear(2 * config.Hidden, answers)));
        RegisterComponents();
        using var _ = no_grad();
        foreach (var (_, module) in named_modules())
            if (module is Linear linear) { nn.init.normal_(linear.weight!, 0, 0.02); if (linear.bias is not null) nn.init.zeros_(linear.bias); }
            else if (module is Embedding embedding) nn.init.normal_(embedding.weight!, 0, 0.02);
    }

    /// <summary>
    /// Starts from a trained dual encoder, as ViLT starts from a pre-trained ViT: the patch embedding and transformer
    /// layers from its image tower, word and position embeddings from its text tower. Returns the tensors copied.
    /// </summary>
    public int InitializeFrom(DemoClip pretrained)
    {
        var source = pretrained.state_dict();
        var copies = new List<(string To, string From)>();
        foreach (var (name, _) in state_dict())
        {
            string? from = name.StartsWith("patch_embed.", StringComparison.Ordinal) ? name
                : name.StartsWith("encoder.", StringComparison.Ordinal) ? "visual." + name["encoder.".Length..]
                : name == "word_embeddings.weight" ? "token_embedding.weight"
                : name == "text_positions.weight" ? "positional_embedding.weight" : null;
            if (from is not null && source.TryGetValue(from, out var tensor) && tensor.shape.SequenceEqual(state_dict()[name].shape)) copies.Add((name, from));
        }
        using var _ = no_grad();
        var target = state_dict();
        foreach (var (to, from) in copies) target[to].copy_(source[from]);
        return copies.Count;
    }

    public Tensor Logits(IReadOnlyList<string> questions, IReadOnlyList<VisualInput> images)
    {
        var weight = word_embeddings.weight!;
        var (ids, mask) = DemoInputs.Texts(questions, _vocabulary, Config.MaxTextLength, weight.device);
        var text = word_embeddings.forward(ids) + text_positions.forward(arange(ids.shape[1], device: ids.device).unsqueeze(0))
                   + modality.forward(zeros_like(ids));
        var patches = patch_embed.forward(DemoInputs.Images(images, Config.ImageSize, weight));
        patches = patches + modality.forward(ones(patches.shape[0], patches.shape[1], dtype: ScalarType.Int64, device: ids.device));
        var (joint, padding) = MergedAttention.Merge(new[] { text, patches }, new Tensor?[] { mask, null });
        return vqa_classifier.forward(pooler.forward(encoder.forward(joint, padding)));
    }
}

/// <summary>
/// The demo's dual encoder (CLIP-style): a patch transformer for images and a word transformer for captions, each
/// pooled on its first token and projected (no bias) to a shared space, L2-normalised, with a learned temperature.
/// </summary>
public sealed class DemoClip : nn.Module, IDualEncoder
{
    readonly PatchEmbedding patch_embed;
    readonly Parameter class_embedding, logit_scale;
    readonly DemoEncoder visual, textual;
    readonly Embedding token_embedding, positional_embedding;
    readonly Linear visual_projection, text_projection;
    readonly WordVocabulary _vocabulary;

    public DemoModelConfig Config { get; }
    public WordVocabulary Vocabulary => _vocabulary;
    public nn.Module Module => this;

    public DemoClip(DemoModelConfig config, WordVocabulary vocabulary) : base("demo_clip")
    {
        Config = config;
        _vocabulary = vocabulary;
        patch_embed = new PatchEmbedding(config);
        class_embedding = new Parameter(randn(config.Hidden) * 0.02);
        visual = new DemoEncoder(config);
        token_embedding = nn.Embedding(vocabulary.Count, config.Hidden, padding_idx: 0);
        positional_embedding = nn.Embedding(config.MaxTextLength, config.Hidden);
        textual = new DemoEncoder(config);
        visual_projection = nn.Linear(config.Hidden, config.EmbeddingDim, hasBias: false);
        text_projection = nn.Linear(config.Hidden, config.EmbeddingDim, hasBias: false);
        logit_scale = new Parameter(tensor(MathF.Log(1 / 0.07f)));
        RegisterComponents();
        using var _ = no_grad();
        nn.init.normal_(token_embedding.weight!, 0, 0.02);
        nn.init.normal_(positional_embedding.weight!, 0, 0.01);
    }

    public Tensor EncodeImages(IReadOnlyList<VisualInput> images)
    {
        var patches = patch_embed.forward(DemoInputs.Images(images, Config.ImageSize, class_embedding));
        var cls = class_embedding.expand(patches.shape[0], 1, -1);
        var encoded = visual.forward(cat(new[] { cls, patches }, 1), null);
        return nn.functional.normalize(visual_projection.forward(encoded.select(1, 0)), p: 2, dim: -1);
    }

    public Tensor EncodeTexts(IReadOnlyList<string> texts)
    {
        var (ids, mask) = DemoInputs.Texts(texts, _vocabulary, Config.MaxTextLength, token_embedding.weight!.device);
        var x = token_embedding.forward(ids) + positional_embedding.forward(arange(ids.shape[1], device: ids.device).unsqueeze(0));
        var encoded = textual.forward(x, mask.ne(0));
        return nn.functional.normalize(text_projection.forward(encoded.select(1, 0)), p: 2, dim: -1);
    }

    /// <summary>exp(logit_scale), capped at 100 as CLIP clamps it.</summary>
    public Tensor LogitScale() => logit_scale.clamp(max: MathF.Log(100)).exp();
}
