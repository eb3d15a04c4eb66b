using System.Text.RegularExpressions;
using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using ModelZoo.Models.Vilt;
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

    /// <summary>ViT blocks with timm's names, as ViLT's, so the dual encoder's image tower loads into ViLT.</summary>
    public PreNormLayerOptions LayerOptions => new()
    {
        Hidden = Hidden, Heads = Heads, MlpDim = 2 * Hidden, AttentionDropout = 0, ResidualDropout = Dropout, LayerNormEps = 1e-6,
        Names = PreNormLayerNames.Timm,
    };

    /// <summary>The ViLT family's configuration of the demo's one-stream model (the demo's word vocabulary, 8-px patches of 48-px images).</summary>
    public ViltConfig Vilt(int vocabularySize) => new()
    {
        VocabSize = vocabularySize, MaxPositionEmbeddings = MaxTextLength, HiddenSize = Hidden, NumHiddenLayers = Layers, NumAttentionHeads = Heads,
        IntermediateSize = 2 * Hidden, HiddenDropoutProb = Dropout, AttentionProbsDropoutProb = 0, ImageSize = ImageSize, PatchSize = PatchSize,
        EncoderLayerNormEps = 1e-6,
    };
}

/// <summary>
/// The dual encoder's image tower, a ViT with ViLT's module names (patch_embed.proj, cls_token, pos_embed with the
/// class position first, blocks.N with timm names, norm): [B, 3, H, W] to [B, 1 + patches, hidden].
/// </summary>
sealed class DemoImageTower : nn.Module
{
    readonly ViltPatchEmbed patch_embed;
    readonly Parameter cls_token, pos_embed;
    readonly ModuleList<PreNormTransformerLayer> blocks;
    readonly LayerNorm norm;

    public DemoImageTower(DemoModelConfig config) : base("visual")
    {
        patch_embed = new ViltPatchEmbed(3, config.Hidden, config.PatchSize);
        cls_token = new Parameter(randn(1, 1, config.Hidden) * 0.02);
        pos_embed = new Parameter(randn(1, config.Patches + 1, config.Hidden) * 0.02);
        blocks = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(_ => new PreNormTransformerLayer(config.LayerOptions)).ToArray());
        norm = nn.LayerNorm(config.Hidden, 1e-6);
        RegisterComponents();
    }

    public Tensor forward(Tensor pixels)
    {
        var patches = patch_embed.forward(pixels).flatten(2).transpose(1, 2);
        var x = cat(new[] { cls_token.expand(patches.shape[0], -1, -1), patches }, 1) + pos_embed;
        foreach (var block in blocks) x = block.forward(x, null);
        return norm.forward(x);
    }
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
/// The demo's one-stream VQA model: the ViLT family's <see cref="ViltModel"/> at a tiny size (<see cref="DemoModelConfig.Vilt"/>:
/// 2 layers of 64, 8-px patches of 48-px images, the demo's word vocabulary) with its VQA classifier, run through the
/// ViLT task adapter (ViLT's image preprocessing, pixel masks).
/// </summary>
public sealed class DemoViltVqa : IVqaModel
{
    readonly ViltVqaAdapter _adapter;

    public DemoModelConfig Config { get; }
    public WordVocabulary Vocabulary { get; }
    public ViltModel Model { get; }
    public nn.Module Module => Model;
    public int Answers => _adapter.Answers;

    public DemoViltVqa(DemoModelConfig config, WordVocabulary vocabulary, int answers)
    {
        Config = config;
        Vocabulary = vocabulary;
        var vilt = config.Vilt(vocabulary.Count);
        Model = new ViltModel(vilt, new ViltHeads { VqaAnswers = answers });
        _adapter = new ViltVqaAdapter(Model, new ViltTaskInputs(text => vocabulary.Encode(text).Take(config.MaxTextLength).ToArray(), ViltTaskInputs.ImageProcessor(vilt)));
    }

    /// <summary>
    /// Starts from a trained dual encoder, as ViLT starts from a pre-trained ViT: the patch embedding, class token,
    /// position embeddings, transformer blocks and final norm from its image tower, word and position embeddings from
    /// its text tower. Returns the number of tensors copied.
    /// </summary>
    public int InitializeFrom(DemoClip pretrained)
    {
        var source = pretrained.state_dict();
        var target = Model.state_dict();
        var copies = new List<(string To, string From)>();
        foreach (var (name, tensor) in target)
        {
            string? from = name.StartsWith("transformer.", StringComparison.Ordinal) ? "visual." + name["transformer.".Length..]
                : name == "text_embeddings.word_embeddings.weight" ? "token_embedding.weight"
                : name == "text_embeddings.position_embeddings.weight" ? "positional_embedding.weight" : null;
            if (from is not null && source.TryGetValue(from, out var value) && value.shape.SequenceEqual(tensor.shape)) copies.Add((name, from));
        }
        using var _ = no_grad();
        foreach (var (to, from) in copies) target[to].copy_(source[from]);
        return copies.Count;
    }

    public Tensor Logits(IReadOnlyList<string> questions, IReadOnlyList<VisualInput> images) => _adapter.Logits(questions, images);

    public void Dispose() => Model.Dispose();
}

/// <summary>
/// The demo's dual encoder (CLIP-style): a ViT for images and a word transformer for captions, each pooled on its
/// first token and projected (no bias) to a shared space, L2-normalised, with a learned temperature.
/// </summary>
public sealed class DemoClip : nn.Module, IDualEncoder
{
    readonly DemoImageTower visual;
    readonly Parameter logit_scale;
    readonly DemoEncoder textual;
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
        visual = new DemoImageTower(config);
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
        var encoded = visual.forward(DemoInputs.Images(images, Config.ImageSize, logit_scale));
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
