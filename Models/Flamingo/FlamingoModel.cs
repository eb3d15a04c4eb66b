using ModelZoo.Attention;
using ModelZoo.Models.Generation;
using ModelZoo.Models.Gpt2;
using ModelZoo.Models.Llama;
using ModelZoo.Models.Mpt;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Flamingo;

/// <summary>The gated cross-attention blocks by decoder layer index ("N" = the block before decoder layer N).</summary>
public sealed class GatedCrossAttentionLayers : nn.Module
{
    protected override void RegisterComponents() { }

    readonly GatedCrossAttentionBlock?[] blocks;

    /// <summary>A block before layer i when (i + 1) % everyN == 0, as OpenFlamingo's init_flamingo places them.</summary>
    public GatedCrossAttentionLayers(int decoderLayers, int everyN, CrossAttentionConfig config) : base("gated_cross_attn_layers")
    {
        blocks = new GatedCrossAttentionBlock?[decoderLayers];
        for (int i = 0; i < decoderLayers; i++)
        {
            if ((i + 1) % everyN != 0) continue;
            blocks[i] = new GatedCrossAttentionBlock(config);
            register_module(i.ToString(System.Globalization.CultureInfo.InvariantCulture), blocks[i]!);
        }
    }

    public GatedCrossAttentionBlock? this[int layer] => blocks[layer];
    public IEnumerable<(int Layer, GatedCrossAttentionBlock Block)> Blocks =>
        blocks.Select((b, i) => (i, b)).Where(x => x.b is not null).Select(x => (x.i, x.b!));
}

/// <summary>
/// OpenFlamingo's lang_encoder: the decoder's own modules under their own names (transformer.* for GPT-2) and
/// gated_cross_attn_layers.N. Each forward gets the media and each token's text time (see <see cref="MediaTime"/>).
/// </summary>
public sealed class FlamingoLanguageModel : nn.Module
{
    protected override void RegisterComponents() { }

    readonly GatedCrossAttentionLayers crossAttention;

    public IDecoderLanguageModel Decoder { get; }

    public FlamingoLanguageModel(IDecoderLanguageModel decoder, CrossAttentionConfig crossAttentionConfig, int everyN) : base("lang_encoder")
    {
        Decoder = decoder;
        foreach (var (name, child) in decoder.Module.named_children()) register_module(name, child);
        crossAttention = new GatedCrossAttentionLayers(decoder.LayerCount, everyN, crossAttentionConfig);
        register_module("gated_cross_attn_layers", crossAttention);
    }

    public GatedCrossAttentionLayers CrossAttention => crossAttention;

    public override void train(bool on = true)
    {
        base.train(on);
        Decoder.Module.train(on);
    }

    /// <summary>
    /// input_ids [B, L]; attention_mask [B, Lpast + L]; media [B, T_img, n, D] (null = text only: the blocks are
    /// skipped); textTime [B, L]; cache for incremental decoding. Returns hidden states after the final norm.
    /// </summary>
    public Tensor Hidden(Tensor inputIds, Tensor? attentionMask, Tensor? media, Tensor? textTime, KeyValueCache? cache = null)
    {
        Func<int, Tensor, Tensor>? beforeLayer = media is null ? null
            : (layer, hidden) => crossAttention[layer] is { } block ? block.forward(hidden, media, textTime) : hidden;
        return DecoderPass.Run(Decoder, inputIds, attentionMask, cache, beforeLayer).Hidden;
    }

    public Tensor Logits(Tensor hidden) => Decoder.Logits(hidden);
}

/// <summary>
/// A Flamingo model in OpenFlamingo's layout: vision_encoder.* (CLIP visual tower), perceiver.*, lang_encoder.*
/// (the decoder's own keys plus gated_cross_attn_layers.N.*). The vision tower runs without gradient; <see cref="Freeze"/>
/// leaves only the resampler, the cross-attention blocks and the new token embeddings trainable.
/// </summary>
public sealed class FlamingoModel : nn.Module
{
    protected override void RegisterComponents() { }

    readonly IVisionEncoder visionEncoder;
    readonly PerceiverResampler perceiver;
    readonly FlamingoLanguageModel langEncoder;

    public FlamingoConfig Config { get; }

    public FlamingoModel(FlamingoConfig config) : this(config, BuildDecoder(config)) { }

    /// <summary>
    /// With a decoder (its vocabulary must already include the Flamingo tokens) and optionally a vision encoder built
    /// elsewhere (default: the CLIP ViT described by the config).
    /// </summary>
    public FlamingoModel(FlamingoConfig config, IDecoderLanguageModel decoder, IVisionEncoder? vision = null) : base("flamingo")
    {
        config.Validate();
        if (decoder.HiddenSize != config.LanguageHidden || decoder.LayerCount != config.LanguageLayers)
            throw new ArgumentException($"decoder ({decoder.HiddenSize} wide, {decoder.LayerCount} layers) does not match the config ({config.LanguageHidden}, {config.LanguageLayers})");
        Config = config;
        visionEncoder = vision ?? new ClipVisionEncoder(config.VisionEncoder);
        if (visionEncoder.Width != config.Perceiver.Dim)
            throw new ArgumentException($"the vision encoder is {visionEncoder.Width} wide, the perceiver {config.Perceiver.Dim}");
        perceiver = new PerceiverResampler(config.Perceiver);
        langEncoder = new FlamingoLanguageModel(decoder, config.CrossAttention, config.CrossAttnEveryNLayers);
        register_module("vision_encoder", visionEncoder.Module);
        register_module("perceiver", perceiver);
        register_module("lang_encoder", langEncoder);
    }

    static IDecoderLanguageModel BuildDecoder(FlamingoConfig config)
    {
        if (config.Gpt2 is not null) return new Gpt2LMHeadModel(config.Gpt2);
        if (config.Mpt is not null) return new MptForCausalLM(config.Mpt);
        if (config.Llama is not null) return new LlamaForCausalLM(config.Llama);
        throw new ArgumentException("a Flamingo config names exactly one language model (gpt2, mpt or llama)");
    }

    public IVisionEncoder VisionEncoder => visionEncoder;
    public PerceiverResampler Perceiver => perceiver;
    public FlamingoLanguageModel LanguageModel => langEncoder;
    public IDecoderLanguageModel Decoder => langEncoder.Decoder;

    /// <summary>
    /// images [B, T_img, F, 3, H, W] (or [B, T_img, 3, H, W], one frame) → media latents [B, T_img, num_latents, D].
    /// The vision tower runs under no_grad (it is frozen); the resampler keeps its gradient.
    /// </summary>
    public Tensor EncodeMedia(Tensor images)
    {
        MediaEncodings++;
        if (images.dim() == 5) images = images.unsqueeze(2);
        if (images.dim() != 6) throw new ArgumentException($"images must be [batch, images, frames, 3, H, W], got [{string.Join(", ", images.shape)}]");
        long b = images.shape[0], t = images.shape[1], f = images.shape[2];
        Tensor features;
        using (no_grad())
            features = visionEncoder.PatchFeatures(images.reshape(b * t * f, images.shape[3], images.shape[4], images.shape[5]));
        features = features.reshape(b, t, f, features.shape[1], features.shape[2]);
        return perceiver.forward(features);
    }

    /// <summary>How many times <see cref="EncodeMedia"/> ran (generation encodes once per call: the media cache).</summary>
    public int MediaEncodings { get; private set; }

    /// <summary>Text time of each token: media tokens at or before it, plus <paramref name="mediaBefore"/> [B] already seen (cached prompt).</summary>
    public Tensor TextTime(Tensor inputIds, Tensor? mediaBefore = null)
    {
        var time = MediaTime.FromLocations(inputIds.eq(Config.MediaTokenId));
        return mediaBefore is null ? time : time + mediaBefore.unsqueeze(1);
    }

    /// <summary>
    /// Logits [B, L, vocab] for images [B, T_img, (F,) 3, H, W] and input_ids [B, L] with "&lt;image&gt;" tokens marking
    /// where each image sits; attention_mask [B, L] (1 = real token; left padding).
    /// </summary>
    public Tensor forward(Tensor images, Tensor inputIds, Tensor? attentionMask = null) =>
        ForwardMedia(EncodeMedia(images), inputIds, attentionMask);

    /// <summary>
    /// Logits with media already encoded (a media cache). With a key/value cache, input_ids are the new tokens only,
    /// attention_mask covers every token so far and <paramref name="mediaBefore"/> [B] counts the media tokens already
    /// in the cache.
    /// </summary>
    public Tensor ForwardMedia(Tensor? media, Tensor inputIds, Tensor? attentionMask = null, KeyValueCache? cache = null, Tensor? mediaBefore = null)
    {
        var hidden = langEncoder.Hidden(inputIds, attentionMask, media, media is null ? null : TextTime(inputIds, mediaBefore), cache);
        return langEncoder.Logits(hidden);
    }

    /// <summary>
    /// Flamingo training: everything frozen except the perceiver, the gated cross-attention blocks and the token
    /// embeddings of the added tokens (rows from base_vocab_size on; with <paramref name="trainAllEmbeddings"/> the
    /// whole input embedding trains, as OpenFlamingo does unless freeze_lm_embeddings).
    /// </summary>
    public void Freeze(bool trainAllEmbeddings = false)
    {
        using var scope = NewDisposeScope();
        foreach (var p in parameters()) p.requires_grad = false;
        foreach (var p in perceiver.parameters()) p.requires_grad = true;
        foreach (var p in langEncoder.CrossAttention.parameters()) p.requires_grad = true;
        // The whole wte keeps requires_grad (a tensor cannot be partly trainable); rows below BaseVocabSize get a zero
        // gradient through the detached lookup instead. So an optimizer must not apply weight decay to wte: decoupled
        // decay (AdamW) would shrink the frozen rows although their gradient is zero. OpenFlamingo also keeps
        // embeddings from weight decay (its train.py decays only gated cross-attention weights). No trainer here trains Flamingo yet.
        Decoder.TokenEmbeddingWeight.requires_grad = true;
        Decoder.FrozenTokenRows = trainAllEmbeddings ? null : Config.BaseVocabSize;
    }
}
