using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using ModelZoo.Models.Bert;
using ModelZoo.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.VisualBert;

/// <summary>
/// VisualBertEmbeddings: the BERT text embeddings plus, for each region, visual_projection(features) +
/// visual_position_embeddings(0) + visual_token_type_embeddings(type), through the same LayerNorm.
/// Keys (flat, as Hugging Face names them): word_embeddings, position_embeddings, token_type_embeddings, LayerNorm,
/// visual_token_type_embeddings, visual_position_embeddings, visual_projection.
/// </summary>
public sealed class VisualBertEmbeddings : nn.Module
{
    // The BERT text embeddings' children are registered directly on this module (their keys have no extra level).
    protected override void RegisterComponents() { }

    readonly BertEmbeddings text;
    readonly Embedding visualTokenType, visualPosition;
    readonly Linear visualProjection;

    public VisualBertEmbeddings(VisualBertConfig config) : base("embeddings")
    {
        int h = config.HiddenSize;
        text = new BertEmbeddings(config.VocabSize, h, config.MaxPositionEmbeddings, config.TypeVocabSize, config.LayerNormEps,
            config.HiddenDropoutProb, config.PadTokenId);
        foreach (var (name, child) in text.named_children().ToList()) register_module(name, child);
        visualTokenType = nn.Embedding(config.TypeVocabSize, h);
        visualPosition = nn.Embedding(config.MaxPositionEmbeddings, h);
        visualProjection = nn.Linear(config.VisualEmbeddingDim, h);
        register_module("visual_token_type_embeddings", visualTokenType);
        register_module("visual_position_embeddings", visualPosition);
        register_module("visual_projection", visualProjection);
    }

    public Embedding WordEmbeddings => text.WordEmbeddings;

    /// <summary>special_visual_initialize: the visual type / position tables start as copies of the text ones.</summary>
    public void CopyTextTablesToVisual()
    {
        using var _ = no_grad();
        visualTokenType.weight!.copy_(text.TokenTypeEmbeddings.weight!);
        visualPosition.weight!.copy_(text.PositionEmbeddings.weight!);
    }

    /// <summary>Text [B, Lt, H] and region [B, Nv, H] embeddings, each normalised.</summary>
    public (Tensor Text, Tensor Visual) forward(Tensor inputIds, Tensor? tokenTypeIds, Tensor visualEmbeds, Tensor? visualTokenTypeIds)
    {
        var textEmbeddings = text.forward(inputIds, tokenTypeIds);
        visualTokenTypeIds ??= ones(visualEmbeds.shape[0], visualEmbeds.shape[1], dtype: ScalarType.Int64, device: visualEmbeds.device);
        var visualPositionIds = zeros(visualEmbeds.shape[0], visualEmbeds.shape[1], dtype: ScalarType.Int64, device: visualEmbeds.device);
        var summed = visualProjection.forward(visualEmbeds.to(visualProjection.weight!.dtype)) + visualPosition.forward(visualPositionIds) + visualTokenType.forward(visualTokenTypeIds);
        return (textEmbeddings, text.Normalize(summed));
    }
}

/// <summary>
/// VisualBertModel (Hugging Face naming): embeddings, a post-norm BERT encoder over the merged text + region
/// sequence, the pooler. Keys: embeddings.*, encoder.layer.N.*, pooler.dense.* (additional_layer.* with bypass_transformer).
/// </summary>
public sealed class VisualBertModel : nn.Module
{
    readonly VisualBertEmbeddings embeddings;
    readonly BertEncoder encoder;
    readonly BertPooler pooler;
    readonly BertLayer? additional_layer;

    public VisualBertConfig Config { get; }

    public VisualBertModel(VisualBertConfig config) : base("visual_bert")
    {
        Config = config;
        embeddings = new VisualBertEmbeddings(config);
        encoder = new BertEncoder(config.NumHiddenLayers, config.LayerOptions() with { Merged = true });
        pooler = new BertPooler(config.HiddenSize, config.HiddenSize);
        if (config.BypassTransformer) additional_layer = new BertLayer(config.LayerOptions() with { Merged = true });
        RegisterComponents();
        Initialization.BertStyle(this, config.InitializerRange);
        if (config.SpecialVisualInitialize) embeddings.CopyTextTablesToVisual();
    }

    public VisualBertEmbeddings Embeddings => embeddings;

    public EncoderOutput forward(VisualBertInputs inputs)
    {
        var ids = inputs.InputIds;
        var visual = inputs.VisualEmbeds;
        if (ids.dim() != 2) throw new ArgumentException($"input_ids must be [batch, length], got [{string.Join(", ", ids.shape)}]");
        if (visual.dim() != 3 || visual.shape[0] != ids.shape[0] || visual.shape[2] != Config.VisualEmbeddingDim)
            throw new ArgumentException($"visual_embeds must be [{ids.shape[0]}, regions, {Config.VisualEmbeddingDim}] (visual_embedding_dim), got [{string.Join(", ", visual.shape)}]");
        if (ids.shape[1] > Config.MaxPositionEmbeddings)
            throw new ArgumentException($"text of {ids.shape[1]} tokens is longer than max_position_embeddings {Config.MaxPositionEmbeddings}");
        var textMask = inputs.TextMask ?? ones_like(ids);
        var (text, regions) = embeddings.forward(ids, inputs.TokenTypeIds, visual, inputs.VisualTokenTypeIds);
        var (joint, padding) = MergedAttention.Merge(new[] { text, regions }, new[] { textMask, inputs.VisualMask });

        if (additional_layer is not null)
        {
            // bypass_transformer: the encoder reads the text alone, one more layer reads text and regions.
            var textLayers = encoder.forward(text, AttentionMask.FromPadding(textMask));
            var textOut = textLayers.Count > 0 ? textLayers[^1] : text;
            var merged = additional_layer.forward(cat(new[] { textOut, regions }, 1), AttentionMask.FromPadding(padding));
            return new EncoderOutput(merged, pooler.forward(merged), textLayers.Append(merged).ToList(), joint);
        }
        var layers = encoder.forward(joint, AttentionMask.FromPadding(padding));
        var sequence = layers.Count > 0 ? layers[^1] : joint;
        return new EncoderOutput(sequence, pooler.forward(sequence), layers, joint);
    }
}
