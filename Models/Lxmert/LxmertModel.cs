using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using ModelZoo.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Lxmert;

// LXMERT with Hugging Face LxmertModel key names (the original's LXRTModel uses the same names under "bert."):
//   embeddings.*, encoder.visn_fc.{visn_fc,visn_layer_norm,box_fc,box_layer_norm}, encoder.layer.N (language),
//   encoder.r_layers.N (relationship), encoder.x_layers.N.{visual_attention.{att,output}, lang_self_att, visn_self_att,
//   lang_inter, lang_output, visn_inter, visn_output}, pooler.dense

/// <summary>Region features and boxes, each through Linear + LayerNorm, averaged: (LN(fc(feat)) + LN(fc(pos))) / 2.</summary>
public sealed class VisualFeatEncoder : nn.Module
{
    readonly Linear visn_fc, box_fc;
    readonly LayerNorm visn_layer_norm, box_layer_norm;
    readonly Dropout dropout;

    public VisualFeatEncoder(LxmertConfig config) : base("visn_fc")
    {
        visn_fc = nn.Linear(config.VisualFeatDim, config.HiddenSize);
        visn_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        box_fc = nn.Linear(config.VisualPosDim, config.HiddenSize);
        box_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <summary>features [B, O, visual_feat_dim], boxes [B, O, visual_pos_dim] → [B, O, hidden].</summary>
    public Tensor forward(Tensor features, Tensor boxes) =>
        dropout.forward((visn_layer_norm.forward(visn_fc.forward(features)) + box_layer_norm.forward(box_fc.forward(boxes))) / 2);
}

/// <summary>
/// A cross-modality layer: one cross-attention block used in both directions (the same weights for language over
/// vision and vision over language), then self-attention per stream, then a feed-forward block per stream.
/// </summary>
public sealed class LxmertXLayer : nn.Module
{
    readonly BertAttentionBlock visual_attention, lang_self_att, visn_self_att;
    readonly BertIntermediate lang_inter, visn_inter;
    readonly BertResidualOutput lang_output, visn_output;

    public LxmertXLayer(LxmertConfig config) : base("x_layer")
    {
        var options = config.LayerOptions();
        visual_attention = new BertAttentionBlock(options, attentionName: "att");
        lang_self_att = new BertAttentionBlock(options);
        visn_self_att = new BertAttentionBlock(options);
        lang_inter = new BertIntermediate(options.Hidden, options.Intermediate, options.Activation);
        lang_output = new BertResidualOutput(options.Intermediate, options.Hidden, options.LayerNormEps, options.HiddenDropout);
        visn_inter = new BertIntermediate(options.Hidden, options.Intermediate, options.Activation);
        visn_output = new BertResidualOutput(options.Intermediate, options.Hidden, options.LayerNormEps, options.HiddenDropout);
        RegisterComponents();
    }

    /// <summary>lang [B, L, H] and visn [B, O, H] with their key masks (a null visual mask attends to every region).</summary>
    public (Tensor Lang, Tensor Visn) forward(Tensor lang, AttentionMask langMask, Tensor visn, AttentionMask visnMask)
    {
        var langCross = visual_attention.forward(lang, visn, visnMask);
        var visnCross = visual_attention.forward(visn, lang, langMask);
        var langSelf = lang_self_att.forward(langCross, null, langMask);
        var visnSelf = visn_self_att.forward(visnCross, null, visnMask);
        return (lang_output.forward(lang_inter.forward(langSelf), langSelf), visn_output.forward(visn_inter.forward(visnSelf), visnSelf));
    }
}

/// <summary>Per-layer outputs of the LXMERT encoder.</summary>
public sealed record LxmertEncoderOutput(Tensor Lang, Tensor Visn, Tensor VisualEmbedding, Tensor[] LanguageLayers, Tensor[] RelationLayers,
                                         (Tensor Lang, Tensor Visn)[] CrossLayers);

/// <summary>Language layers, then relationship (object) layers, then cross-modality layers, in that order.</summary>
public sealed class LxmertEncoder : nn.Module
{
    readonly VisualFeatEncoder visn_fc;
    readonly ModuleList<BertLayer> layer, r_layers;
    readonly ModuleList<LxmertXLayer> x_layers;

    public LxmertEncoder(LxmertConfig config) : base("encoder")
    {
        visn_fc = new VisualFeatEncoder(config);
        layer = nn.ModuleList(Enumerable.Range(0, config.LLayers).Select(_ => new BertLayer(config.LayerOptions())).ToArray());
        x_layers = nn.ModuleList(Enumerable.Range(0, config.XLayers).Select(_ => new LxmertXLayer(config)).ToArray());
        r_layers = nn.ModuleList(Enumerable.Range(0, config.RLayers).Select(_ => new BertLayer(config.LayerOptions())).ToArray());
        RegisterComponents();
    }

    public LxmertEncoderOutput forward(Tensor lang, Tensor? langPadding, Tensor features, Tensor boxes, Tensor? visnPadding)
    {
        var langMask = AttentionMask.FromPadding(langPadding);
        var visnMask = AttentionMask.FromPadding(visnPadding);
        var visn = visn_fc.forward(features, boxes);
        var visualEmbedding = visn;
        var languageLayers = new Tensor[layer.Count];
        var relationLayers = new Tensor[r_layers.Count];
        var crossLayers = new (Tensor, Tensor)[x_layers.Count];
        for (int i = 0; i < layer.Count; i++) languageLayers[i] = lang = layer[i].forward(lang, langMask);
        for (int i = 0; i < r_layers.Count; i++) relationLayers[i] = visn = r_layers[i].forward(visn, visnMask);
        for (int i = 0; i < x_layers.Count; i++)
        {
            (lang, visn) = x_layers[i].forward(lang, langMask, visn, visnMask);
            crossLayers[i] = (lang, visn);
        }
        return new LxmertEncoderOutput(lang, visn, visualEmbedding, languageLayers, relationLayers, crossLayers);
    }
}

/// <summary>What the backbone returns (the reference's (lang_feats, visn_feats), pooled_output) and the per-layer states.</summary>
public sealed record LxmertOutput(Tensor LanguageOutput, Tensor VisionOutput, Tensor PooledOutput, Tensor EmbeddingOutput, LxmertEncoderOutput Encoder);

/// <summary>
/// The LXMERT backbone (original LXRTModel; Hugging Face LxmertModel): BERT embeddings, the three encoders, and
/// a tanh pooler over the first language token.
/// </summary>
public sealed class LxmertModel : nn.Module
{
    readonly BertEmbeddings embeddings;
    readonly LxmertEncoder encoder;
    readonly BertPooler pooler;

    public LxmertConfig Config { get; }

    public LxmertModel(LxmertConfig config, bool initialize = true) : base("lxmert")
    {
        Config = config.Validated();
        embeddings = new BertEmbeddings(config.VocabSize, config.HiddenSize, config.MaxPositionEmbeddings, config.TypeVocabSize, config.LayerNormEps,
            config.HiddenDropoutProb);
        encoder = new LxmertEncoder(config);
        pooler = new BertPooler(config.HiddenSize, config.HiddenSize, Activation.Tanh);
        RegisterComponents();
        if (initialize) Initialization.BertStyle(this, config.InitializerRange);
    }

    public BertEmbeddings Embeddings => embeddings;

    /// <summary>
    /// input_ids [B, L]; visual_feats [B, O, visual_feat_dim]; visual_pos [B, O, visual_pos_dim] (boxes x1, y1, x2, y2
    /// normalised to 0..1); attention_mask [B, L] (1 = real, default all); visual_attention_mask [B, O] (null = attend
    /// to every region, as the original VQA task calls it); token_type_ids [B, L] (default 0).
    /// </summary>
    public LxmertOutput forward(Tensor inputIds, Tensor visualFeats, Tensor visualPos, Tensor? attentionMask = null, Tensor? visualAttentionMask = null,
                                Tensor? tokenTypeIds = null)
    {
        CheckInputs(inputIds, visualFeats, visualPos, attentionMask, visualAttentionMask, tokenTypeIds);
        var embedded = embeddings.forward(inputIds, tokenTypeIds);
        var encoded = encoder.forward(embedded, attentionMask?.ne(0), visualFeats, visualPos, visualAttentionMask?.ne(0));
        return new LxmertOutput(encoded.Lang, encoded.Visn, pooler.forward(encoded.Lang), embedded, encoded);
    }

    void CheckInputs(Tensor inputIds, Tensor feats, Tensor pos, Tensor? mask, Tensor? visualMask, Tensor? tokenTypes)
    {
        static string S(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
        if (inputIds.dim() != 2 || inputIds.shape[1] < 1) throw new ArgumentException($"input_ids must be [batch, length], got {S(inputIds)}");
        long b = inputIds.shape[0];
        if (inputIds.shape[1] > Config.MaxPositionEmbeddings)
            throw new ArgumentException($"input_ids has {inputIds.shape[1]} tokens, more than max_position_embeddings {Config.MaxPositionEmbeddings}");
        if (feats.dim() != 3 || feats.shape[0] != b || feats.shape[2] != Config.VisualFeatDim || feats.shape[1] < 1)
            throw new ArgumentException($"visual_feats must be [{b}, objects, {Config.VisualFeatDim}] (visual_feat_dim), got {S(feats)}");
        if (pos.dim() != 3 || pos.shape[0] != b || pos.shape[1] != feats.shape[1] || pos.shape[2] != Config.VisualPosDim)
            throw new ArgumentException($"visual_pos must be [{b}, {feats.shape[1]}, {Config.VisualPosDim}] (visual_pos_dim), got {S(pos)}");
        if (mask is not null && !mask.shape.SequenceEqual(inputIds.shape))
            throw new ArgumentException($"attention_mask must match input_ids {S(inputIds)}, got {S(mask)}");
        if (tokenTypes is not null && !tokenTypes.shape.SequenceEqual(inputIds.shape))
            throw new ArgumentException($"token_type_ids must match input_ids {S(inputIds)}, got {S(tokenTypes)}");
        if (visualMask is not null && (visualMask.dim() != 2 || visualMask.shape[0] != b || visualMask.shape[1] != feats.shape[1]))
            throw new ArgumentException($"visual_attention_mask must be [{b}, {feats.shape[1]}], got {S(visualMask)}");
    }
}
