using ModelZoo.Attention.Layers;
using ModelZoo.Models.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Vilbert;

/// <summary>What the two-stream backbone returns, with every intermediate the reference exposes through hooks.</summary>
public sealed record VilbertOutput(
    Tensor SequenceOutputText,
    Tensor SequenceOutputVisual,
    Tensor PooledOutputText,
    Tensor PooledOutputVisual,
    Tensor EmbeddingOutputText,
    Tensor EmbeddingOutputVisual,
    /// <summary>The text mask actually used (with the leading 1 for the task token), [B, L(+1)], true = real.</summary>
    Tensor TextPadding,
    Tensor VisualPadding,
    VilbertEncoderOutput Encoder);

/// <summary>
/// ViLBERT's two-stream BertModel: text embeddings, region embeddings, the interleaved encoder, and ReLU poolers
/// projecting both streams to bi_hidden_size. State-dict keys are the reference's without the "bert." prefix.
/// </summary>
public sealed class VilbertModel : nn.Module
{
    readonly VilbertEmbeddings embeddings;
    readonly VilbertImageEmbeddings v_embeddings;
    readonly VilbertEncoder encoder;
    readonly BertPooler t_pooler, v_pooler;

    public VilbertConfig Config { get; }

    public VilbertModel(VilbertConfig config, bool initialize = true) : base("bert")
    {
        Config = config.Validated();
        embeddings = new VilbertEmbeddings(config);
        v_embeddings = new VilbertImageEmbeddings(config);
        encoder = new VilbertEncoder(config);
        t_pooler = new BertPooler(config.HiddenSize, config.BiHiddenSize, Activation.Relu);
        v_pooler = new BertPooler(config.VHiddenSize, config.BiHiddenSize, Activation.Relu);
        RegisterComponents();
        if (initialize) Initialization.BertStyle(this, config.InitializerRange);
    }

    public VilbertEmbeddings Embeddings => embeddings;
    public VilbertImageEmbeddings ImageEmbeddings => v_embeddings;
    public VilbertEncoder Encoder => encoder;

    /// <summary>
    /// input_txt [B, L] int64; input_imgs [B, R, v_feature_size]; image_loc [B, R, 5] (x1, y1, x2, y2, area, normalised;
    /// region 0 is the whole image); token_type_ids [B, L] (default 0); attention_mask [B, L] and image_attention_mask
    /// [B, R] (1 = real, default all real); task_ids [B, 1] (required with task tokens).
    /// </summary>
    public VilbertOutput forward(Tensor inputTxt, Tensor inputImgs, Tensor imageLoc, Tensor? tokenTypeIds = null, Tensor? attentionMask = null,
                                 Tensor? imageAttentionMask = null, Tensor? taskIds = null)
    {
        CheckInputs(inputTxt, inputImgs, imageLoc, tokenTypeIds, attentionMask, imageAttentionMask, taskIds);
        long batch = inputTxt.shape[0];
        tokenTypeIds ??= zeros_like(inputTxt);
        var textPadding = attentionMask is null ? ones(inputTxt.shape, dtype: ScalarType.Bool, device: inputTxt.device) : attentionMask.ne(0);
        var visualPadding = imageAttentionMask is null
            ? ones(new[] { inputImgs.shape[0], inputImgs.shape[1] }, dtype: ScalarType.Bool, device: inputImgs.device)
            : imageAttentionMask.ne(0);
        if (Config.TaskSpecificTokens)
            textPadding = cat(new[] { ones(batch, 1, dtype: ScalarType.Bool, device: inputTxt.device), textPadding }, 1);

        var text = embeddings.forward(inputTxt, tokenTypeIds, taskIds);
        var visual = v_embeddings.forward(inputImgs, imageLoc);
        var encoded = encoder.forward(text, textPadding, visual, visualPadding);
        return new VilbertOutput(encoded.Text, encoded.Visual, t_pooler.forward(encoded.Text), v_pooler.forward(encoded.Visual),
            text, visual, textPadding, visualPadding, encoded);
    }

    void CheckInputs(Tensor inputTxt, Tensor inputImgs, Tensor imageLoc, Tensor? tokenTypeIds, Tensor? attentionMask, Tensor? imageAttentionMask, Tensor? taskIds)
    {
        static string S(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
        if (inputTxt.dim() != 2) throw new ArgumentException($"input_txt must be [batch, length], got {S(inputTxt)}");
        long b = inputTxt.shape[0], l = inputTxt.shape[1];
        if (l < 1) throw new ArgumentException("input_txt has no tokens");
        if (l > Config.MaxPositionEmbeddings) throw new ArgumentException($"input_txt has {l} tokens, more than max_position_embeddings {Config.MaxPositionEmbeddings}");
        if (inputImgs.dim() != 3 || inputImgs.shape[0] != b && !Config.FastMode || inputImgs.shape[2] != Config.VFeatureSize)
            throw new ArgumentException($"input_imgs must be [{b}, regions, {Config.VFeatureSize}] (v_feature_size), got {S(inputImgs)}");
        if (inputImgs.shape[1] < 1) throw new ArgumentException("input_imgs has no regions (region 0 is the whole image)");
        if (imageLoc.dim() != 3 || imageLoc.shape[0] != inputImgs.shape[0] || imageLoc.shape[1] != inputImgs.shape[1] || imageLoc.shape[2] != VilbertImageEmbeddings.LocationDim)
            throw new ArgumentException($"image_loc must be [{inputImgs.shape[0]}, {inputImgs.shape[1]}, 5] (x1, y1, x2, y2, area), got {S(imageLoc)}");
        if (tokenTypeIds is not null && !tokenTypeIds.shape.SequenceEqual(inputTxt.shape))
            throw new ArgumentException($"token_type_ids must match input_txt {S(inputTxt)}, got {S(tokenTypeIds)}");
        if (attentionMask is not null && !attentionMask.shape.SequenceEqual(inputTxt.shape))
            throw new ArgumentException($"attention_mask must match input_txt {S(inputTxt)}, got {S(attentionMask)}");
        if (imageAttentionMask is not null && (imageAttentionMask.dim() != 2 || imageAttentionMask.shape[0] != inputImgs.shape[0] || imageAttentionMask.shape[1] != inputImgs.shape[1]))
            throw new ArgumentException($"image_attention_mask must be [{inputImgs.shape[0]}, {inputImgs.shape[1]}], got {S(imageAttentionMask)}");
        if (Config.TaskSpecificTokens && taskIds is not null && (taskIds.dim() != 2 || taskIds.shape[0] != b || taskIds.shape[1] != 1))
            throw new ArgumentException($"task_ids must be [{b}, 1], got {S(taskIds)}");
    }
}
