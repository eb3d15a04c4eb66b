using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using ModelZoo.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Vatt;

/// <summary>
/// A VATT video / audio / VATT-MA transformer (google-research vatt transformers.TransformerEncoder, pre_norm):
/// pre-norm layers (LayerNorm eps 1e-6, GELU MLP, biases), a final LayerNorm and dropout, over a sequence whose first
/// token is [AGG].
/// </summary>
public sealed class VattEncoder : nn.Module, IVattTransformer
{
    protected override void RegisterComponents() { }

    readonly ModuleList<PreNormTransformerLayer> layers;
    readonly LayerNorm final_norm;
    readonly Dropout dropout;

    public int Width { get; }

    public VattEncoder(VattConfig config, VattTransformerConfig size) : base("encoder")
    {
        Width = size.DModel;
        var options = config.LayerOptions(size);
        layers = nn.ModuleList(Enumerable.Range(0, size.NumLayers).Select(_ => new PreNormTransformerLayer(options)).ToArray());
        final_norm = nn.LayerNorm(size.DModel, config.LayerNormEpsilon);
        dropout = nn.Dropout(config.DropoutRate);
        register_module("layers", layers);
        register_module("final_norm", final_norm);
        register_module("dropout", dropout);
    }

    /// <summary>x [B, L, D] ([AGG] first), padding [B, L] (true = token) or null → [B, L, D].</summary>
    public Tensor forward(Tensor x, Tensor? padding)
    {
        var mask = padding is null ? null : AttentionMask.FromPadding(padding);
        foreach (var layer in layers) x = layer.forward(x, mask);
        return dropout.forward(final_norm.forward(x));
    }
}

/// <summary>
/// One modality's pooled feature and token features (the [AGG] output and the rest). In training DropToken may have
/// kept only some tokens: <see cref="Kept"/> then holds their positions (int64, row-major over <see cref="Grid"/>,
/// shared by the batch); null when every token is there.
/// </summary>
public sealed record VattModalityOutput(Tensor Pooled, Tensor Tokens, IReadOnlyList<long> Grid, Tensor? Kept = null);

/// <summary>
/// The MMV fine-and-coarse common spaces (VATT's FAC bridge). Video reaches the video-audio space through
/// Linear(no bias) → BN → ReLU → Linear(no bias) → BN, and from there the video-audio-text space through
/// ReLU → Linear(no bias) → BN; audio reaches the video-audio space and text the video-audio-text space by one
/// Linear each.
/// </summary>
public sealed class VattCommonSpaces : nn.Module
{
    readonly Linear video_to_hidden, hidden_to_va, va_to_vat, audio_to_va, text_to_vat;
    readonly BatchNorm1d hidden_norm, va_norm, vat_norm;

    public VattCommonSpaces(int videoDim, int audioDim, int textDim, int vaDim, int vatDim) : base("common_spaces")
    {
        video_to_hidden = nn.Linear(videoDim, vaDim, hasBias: false);
        hidden_norm = nn.BatchNorm1d(vaDim);
        hidden_to_va = nn.Linear(vaDim, vaDim, hasBias: false);
        va_norm = nn.BatchNorm1d(vaDim);
        va_to_vat = nn.Linear(vaDim, vatDim, hasBias: false);
        vat_norm = nn.BatchNorm1d(vatDim);
        audio_to_va = nn.Linear(audioDim, vaDim);
        text_to_vat = nn.Linear(textDim, vatDim);
        RegisterComponents();
    }

    /// <summary>video [B, Dv] → (in the video-audio space, in the video-audio-text space).</summary>
    public (Tensor ToAudio, Tensor ToText) Video(Tensor video)
    {
        var hidden = video_to_hidden.forward(video);
        var va = va_norm.forward(hidden_to_va.forward(nn.functional.relu(hidden_norm.forward(hidden))));
        var vat = vat_norm.forward(va_to_vat.forward(nn.functional.relu(va)));
        return (va, vat);
    }

    public Tensor Audio(Tensor audio) => audio_to_va.forward(audio);

    public Tensor Text(Tensor text) => text_to_vat.forward(text);
}

/// <summary>Everything a VATT forward pass produces; a modality left out is null.</summary>
public sealed record VattOutput(
    VattModalityOutput? Video, VattModalityOutput? Audio, VattModalityOutput? Text,
    Tensor? VideoToAudio, Tensor? VideoToText, Tensor? AudioToVideo, Tensor? TextToVideo);

/// <summary>The loss terms VATT trains with.</summary>
public sealed record VattLoss(Tensor Total, Tensor? VideoAudio, Tensor? VideoText);

/// <summary>
/// VATT: modality tokenizers, DropToken, transformers (one per modality, or one shared: <see cref="VattBackbone"/>)
/// and the MMV common spaces, trained with NCE (video-audio) and MIL-NCE (video-text).
/// </summary>
public sealed class VattModel : nn.Module
{
    protected override void RegisterComponents() { }

    readonly VattVideoTokenizer video_tokenizer;
    readonly VattAudioTokenizer audio_tokenizer;
    readonly VattTextTokenizer text_tokenizer;
    readonly DropToken drop_token;
    readonly VattEncoder? video_encoder, audio_encoder, encoder;
    readonly VattTextTransformer? text_encoder;
    Parameter video_agg, audio_agg, text_agg;
    readonly Sequential? video_post_projection, audio_post_projection, text_post_projection;
    readonly VattCommonSpaces common_spaces;

    public VattConfig Config { get; }

    public VattModel(VattConfig config) : base("vatt")
    {
        config.Validate();
        Config = config;
        bool agnostic = config.Backbone == VattBackbone.ModalityAgnostic;
        int videoWidth = agnostic ? config.Unified.DModel : config.Video.DModel;
        int audioWidth = agnostic ? config.Unified.DModel : config.Audio.DModel;
        int textWidth = agnostic ? config.Unified.DModel : config.Text.DModel;
        video_tokenizer = new VattVideoTokenizer(config, videoWidth, preProjection: agnostic);
        audio_tokenizer = new VattAudioTokenizer(config, audioWidth, preProjection: agnostic);
        text_tokenizer = new VattTextTokenizer(config, textWidth, agnostic);
        drop_token = new DropToken(config.DropTokenRate);
        video_agg = AggToken(videoWidth);
        audio_agg = AggToken(audioWidth);
        // VATT-MS puts [AGG] among the word vectors, before the text pre-projection.
        text_agg = AggToken(agnostic ? textWidth : config.TxtEmbeddingDim);
        register_module("video_tokenizer", video_tokenizer);
        register_module("audio_tokenizer", audio_tokenizer);
        register_module("text_tokenizer", text_tokenizer);
        register_module("drop_token", drop_token);
        register_parameter("video_agg", video_agg);
        register_parameter("audio_agg", audio_agg);
        register_parameter("text_agg", text_agg);

        int pooledVideo = videoWidth, pooledAudio = audioWidth, pooledText = textWidth;
        if (agnostic)
        {
            register_module("encoder", encoder = new VattEncoder(config, config.Unified));
            Sequential Post() => nn.Sequential(("dense", nn.Linear(config.Unified.DModel, config.DPostProj)), ("gelu", nn.GELU()));
            register_module("video_post_projection", video_post_projection = Post());
            register_module("audio_post_projection", audio_post_projection = Post());
            register_module("text_post_projection", text_post_projection = Post());
            pooledVideo = pooledAudio = pooledText = config.DPostProj;
        }
        else
        {
            register_module("video_encoder", video_encoder = new VattEncoder(config, config.Video));
            register_module("audio_encoder", audio_encoder = new VattEncoder(config, config.Audio));
            register_module("text_encoder", text_encoder = new VattTextTransformer(config, config.Text));
        }
        common_spaces = new VattCommonSpaces(pooledVideo, pooledAudio, pooledText, config.VideoAudioDim, config.VideoAudioTextDim);
        register_module("common_spaces", common_spaces);
    }

    static Parameter AggToken(int width)
    {
        // Keras glorot_normal on a vector (fan in = fan out = width): truncated normal, std √(1/width) / 0.8796.
        double std = Math.Sqrt(1.0 / width) / 0.87962566103423978;
        var value = empty(width);
        using (no_grad()) nn.init.trunc_normal_(value, 0, std, -2 * std, 2 * std);
        return new Parameter(value);
    }

    public VattTextTokenizer TextTokenizer => text_tokenizer;

    /// <summary>Loads a frozen word table (e.g. word2vec vectors, [txt_vocab_size, txt_embedding_dim]).</summary>
    public void LoadWordEmbeddings(Tensor matrix) => text_tokenizer.LoadWordEmbeddings(matrix);

    VattModalityOutput Encode(VattTokens tokens, IVattTransformer transformer, Tensor agg, Sequential? post, bool dropTokens)
    {
        var (x, kept) = dropTokens ? drop_token.Drop(tokens.Tokens) : (tokens.Tokens, null);
        var padding = tokens.Padding;
        if (!tokens.AggIncluded)
        {
            long batch = x.shape[0];
            x = cat(new[] { agg.to(x.dtype).expand(batch, 1, x.shape[2]), x }, 1);
            if (padding is not null) padding = cat(new[] { ones(batch, 1, dtype: ScalarType.Bool, device: padding.device), padding }, 1);
        }
        var hidden = transformer.forward(x, padding);
        if (post is not null) hidden = post.forward(hidden);
        return new VattModalityOutput(hidden.select(1, 0), hidden.narrow(1, 1, hidden.shape[1] - 1), tokens.Grid, kept);
    }

    IVattTransformer VideoTransformer => (IVattTransformer?)encoder ?? video_encoder!;
    IVattTransformer AudioTransformer => (IVattTransformer?)encoder ?? audio_encoder!;
    IVattTransformer TextTransformer => (IVattTransformer?)encoder ?? text_encoder!;

    /// <summary>frames [B, T, H, W, 3] (RGB in [0, 1]) → pooled and token features.</summary>
    public VattModalityOutput EncodeVideo(Tensor frames) =>
        Encode(video_tokenizer.forward(frames), VideoTransformer, video_agg, video_post_projection, dropTokens: true);

    /// <summary>waveform [B, S] → pooled and token features.</summary>
    public VattModalityOutput EncodeAudio(Tensor waveform) =>
        Encode(audio_tokenizer.forward(waveform), AudioTransformer, audio_agg, audio_post_projection, dropTokens: true);

    /// <summary>
    /// word ids [B, L] with padding [B, L] (non-zero = word) → pooled and token features. Without a padding mask, id 0
    /// is padding (as the reference builds its mask). Text tokens are never dropped.
    /// </summary>
    public VattModalityOutput EncodeText(Tensor ids, Tensor? padding = null)
    {
        padding ??= ids.dim() == 2 ? ids.ne(0) : null;
        bool agnostic = encoder is not null;
        return Encode(text_tokenizer.forward(ids, padding, agnostic ? null : text_agg), TextTransformer, text_agg, text_post_projection, dropTokens: false);
    }

    /// <summary>
    /// Any subset of the three modalities (null = left out) → features and common-space embeddings. Text may hold K
    /// captions per clip ([B·K, L], clip-major) for MIL-NCE.
    /// </summary>
    public VattOutput forward(Tensor? frames, Tensor? waveform, Tensor? textIds, Tensor? textPadding = null)
    {
        var video = frames is null ? null : EncodeVideo(frames);
        var audio = waveform is null ? null : EncodeAudio(waveform);
        var text = textIds is null ? null : EncodeText(textIds, textPadding);
        Tensor? videoToAudio = null, videoToText = null;
        if (video is not null) (videoToAudio, videoToText) = common_spaces.Video(video.Pooled);
        return new VattOutput(video, audio, text, videoToAudio, videoToText,
            audio is null ? null : common_spaces.Audio(audio.Pooled),
            text is null ? null : common_spaces.Text(text.Pooled));
    }

    /// <summary>
    /// VATT's objective: NCE between video and audio in the video-audio space, MIL-NCE between video and its
    /// <paramref name="captionsPerClip"/> captions in the video-audio-text space, averaged over the terms present.
    /// <paramref name="captionMask"/> [B, K] marks real captions.
    /// </summary>
    public VattLoss Loss(VattOutput output, int captionsPerClip = 1, Tensor? captionMask = null)
    {
        Tensor? va = null, vt = null;
        if (output.VideoToAudio is not null && output.AudioToVideo is not null)
            va = ContrastiveLosses.Nce(output.VideoToAudio, output.AudioToVideo, Config.Temperature);
        if (output.VideoToText is not null && output.TextToVideo is not null)
        {
            long clips = output.VideoToText.shape[0];
            if (output.TextToVideo.shape[0] != clips * captionsPerClip)
                throw new ArgumentException($"VATT loss: {output.TextToVideo.shape[0]} captions for {clips} clips is not {captionsPerClip} per clip");
            vt = ContrastiveLosses.MilNce(output.VideoToText, output.TextToVideo.view(clips, captionsPerClip, -1), captionMask, Config.Temperature);
        }
        if (va is null && vt is null) throw new ArgumentException("VATT loss needs video with audio and/or text");
        var total = va is null ? vt! : vt is null ? va : (va + vt) / 2;
        return new VattLoss(total, va, vt);
    }
}
