using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using ModelZoo.Models.Bert;
using ModelZoo.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Uniter;

/// <summary>
/// Region embeddings (UniterImageEmbeddings): LN(img_linear(feat)) + LN(pos_linear(box7)) + image token type, then
/// LayerNorm and dropout. Keys: img_linear, img_layer_norm, pos_linear, pos_layer_norm, mask_embedding, LayerNorm.
/// </summary>
public sealed class UniterImageEmbeddings : nn.Module
{
    readonly Linear img_linear, pos_linear;
    readonly LayerNorm img_layer_norm, pos_layer_norm, LayerNorm;
    readonly Embedding mask_embedding;
    readonly Dropout dropout;

    public UniterImageEmbeddings(UniterConfig config) : base("img_embeddings")
    {
        img_linear = nn.Linear(config.ImgDim, config.HiddenSize);
        img_layer_norm = nn.LayerNorm(config.HiddenSize, UniterConfig.LayerNormEps);
        pos_layer_norm = nn.LayerNorm(config.HiddenSize, UniterConfig.LayerNormEps);
        pos_linear = nn.Linear(UniterConfig.BoxFeatureDim, config.HiddenSize);
        mask_embedding = nn.Embedding(2, config.ImgDim, padding_idx: 0);
        LayerNorm = nn.LayerNorm(config.HiddenSize, UniterConfig.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <summary>
    /// feat [B, N, img_dim], boxes [B, N, 7], typeEmbeddings [B, N, H]; masks [B, N] (1 = masked region, the
    /// pretraining path: the region gets mask_embedding row 1 added; row 0 is treated as zero, as the original forces).
    /// </summary>
    public Tensor forward(Tensor feat, Tensor boxes, Tensor typeEmbeddings, Tensor? masks = null)
    {
        if (masks is not null)
            feat = feat + masks.to(feat.dtype).unsqueeze(-1) * mask_embedding.weight![1];
        var transformed = img_layer_norm.forward(img_linear.forward(feat));
        var position = pos_layer_norm.forward(pos_linear.forward(boxes));
        return dropout.forward(LayerNorm.forward(transformed + position + typeEmbeddings));
    }
}

/// <summary>
/// UNITER backbone (model/model.py UniterModel): BERT text embeddings, region embeddings, the gather of text and
/// region tokens into one compact sequence, a post-norm BERT encoder over the merged sequence, and the pooler.
/// Keys: embeddings.*, img_embeddings.*, encoder.layer.N.*, pooler.dense.*.
/// </summary>
public sealed class UniterModel : nn.Module
{
    readonly BertEmbeddings embeddings;
    readonly UniterImageEmbeddings img_embeddings;
    readonly BertEncoder encoder;
    readonly BertPooler pooler;

    public UniterConfig Config { get; }

    public UniterModel(UniterConfig config) : base("uniter")
    {
        Config = config;
        embeddings = new BertEmbeddings(config.VocabSize, config.HiddenSize, config.MaxPositionEmbeddings, config.TypeVocabSize,
            UniterConfig.LayerNormEps, config.HiddenDropoutProb, paddingIdx: 0);
        img_embeddings = new UniterImageEmbeddings(config);
        encoder = new BertEncoder(config.NumHiddenLayers, config.LayerOptions() with { Merged = true });
        pooler = new BertPooler(config.HiddenSize, config.HiddenSize);
        RegisterComponents();
        Initialization.BertStyle(this, config.InitializerRange);
    }

    public BertPooler Pooler => pooler;

    /// <summary>Text embeddings [B, Lt, H]; types default to 0.</summary>
    public Tensor TextEmbeddings(Tensor inputIds, Tensor? positionIds, Tensor? typeIds = null) =>
        embeddings.forward(inputIds, typeIds, positionIds);

    /// <summary>Region embeddings [B, N, H]; types default to 1 and use the shared token type table.</summary>
    public Tensor ImageEmbeddings(Tensor feat, Tensor boxes, Tensor? masks = null, Tensor? typeIds = null)
    {
        CheckWidth(feat, Config.ImgDim, "img_feat");
        CheckWidth(boxes, UniterConfig.BoxFeatureDim, "img_pos_feat");
        typeIds ??= ones(feat.shape[0], feat.shape[1], dtype: ScalarType.Int64, device: feat.device);
        var dtype = embeddings.TokenTypeEmbeddings.weight!.dtype; // features arrive as float32; the model may be bf16/fp16
        return img_embeddings.forward(feat.to(dtype), boxes.to(dtype), embeddings.TokenTypeEmbeddings.forward(typeIds), masks);
    }

    /// <summary>
    /// The compact joint sequence: row b, position p is cat([text, regions], 1)[b, gatherIndex[b, p]]. Without a
    /// gather index the text and regions are simply concatenated.
    /// </summary>
    public static Tensor Gather(Tensor text, Tensor regions, Tensor? gatherIndex)
    {
        var joint = cat(new[] { text, regions }, 1);
        if (gatherIndex is null) return joint;
        if (gatherIndex.dim() != 2 || gatherIndex.shape[0] != joint.shape[0])
            throw new ArgumentException($"gather_index must be [batch {joint.shape[0]}, length], got [{string.Join(", ", gatherIndex.shape)}]");
        long max = gatherIndex.max().item<long>(), min = gatherIndex.min().item<long>();
        if (min < 0 || max >= joint.shape[1])
            throw new ArgumentException($"gather_index values must lie in [0, {joint.shape[1]}) (text {text.shape[1]} + regions {regions.shape[1]}), found {min}..{max}");
        return joint.gather(1, gatherIndex.to(ScalarType.Int64).unsqueeze(-1).expand(-1, -1, joint.shape[2]));
    }

    /// <summary>
    /// UniterModel.forward: text only (no regions), regions only (no text) or both, gathered with
    /// <paramref name="gatherIndex"/>. attention_mask [B, L] (1 = real) masks keys of the joint sequence.
    /// </summary>
    public EncoderOutput forward(Tensor? inputIds, Tensor? positionIds, Tensor? imgFeat, Tensor? imgPosFeat, Tensor attentionMask,
                                 Tensor? gatherIndex = null, Tensor? imgMasks = null, Tensor? txtTypeIds = null, Tensor? imgTypeIds = null)
    {
        Tensor embedded;
        if (inputIds is null && imgFeat is null) throw new ArgumentException("UNITER needs input_ids, img_feat or both");
        if (inputIds is null)
            embedded = ImageEmbeddings(imgFeat!, Required(imgPosFeat, "img_pos_feat"), imgMasks, imgTypeIds);
        else if (imgFeat is null)
            embedded = TextEmbeddings(inputIds, positionIds, txtTypeIds);
        else
            embedded = Gather(TextEmbeddings(inputIds, positionIds, txtTypeIds),
                              ImageEmbeddings(imgFeat, Required(imgPosFeat, "img_pos_feat"), imgMasks, imgTypeIds), gatherIndex);
        if (attentionMask.dim() != 2 || attentionMask.shape[0] != embedded.shape[0] || attentionMask.shape[1] != embedded.shape[1])
            throw new ArgumentException($"attention_mask must be [{embedded.shape[0]}, {embedded.shape[1]}] (the joint sequence), got [{string.Join(", ", attentionMask.shape)}]");
        var layers = encoder.forward(embedded, AttentionMask.FromPadding(attentionMask));
        var sequence = layers.Count > 0 ? layers[^1] : embedded;
        return new EncoderOutput(sequence, pooler.forward(sequence), layers, embedded);
    }

    public EncoderOutput forward(UniterInputs inputs) =>
        forward(inputs.InputIds, inputs.PositionIds, inputs.ImgFeat, inputs.ImgPosFeat, inputs.AttentionMask, inputs.GatherIndex);

    static Tensor Required(Tensor? t, string name) => t ?? throw new ArgumentException($"{name} is required with img_feat");

    static void CheckWidth(Tensor t, long width, string name)
    {
        if (t.dim() != 3 || t.shape[2] != width)
            throw new ArgumentException($"{name} must be [batch, regions, {width}], got [{string.Join(", ", t.shape)}]");
    }
}
