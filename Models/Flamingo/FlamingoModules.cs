using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Flamingo;

// OpenFlamingo's building blocks (open_flamingo/src/helpers.py fixes the shapes and the state-dict names):
// PerceiverResampler (latents, frame_embs, media_time_embs, layers.N.0 = PerceiverAttention, layers.N.1 = FeedForward,
// norm) and GatedCrossAttentionBlock (attn = MaskedCrossAttention, attn_gate, ff, ff_gate).

/// <summary>OpenFlamingo PerceiverResampler constructor arguments.</summary>
public sealed record PerceiverConfig
{
    public required int Dim { get; init; }
    public int Depth { get; init; } = 6;
    public int DimHead { get; init; } = 64;
    public int Heads { get; init; } = 8;
    public int NumLatents { get; init; } = 64;
    /// <summary>Learned per-image time embeddings; null = none (what the Flamingo model builds).</summary>
    public int? MaxNumMedia { get; init; }
    /// <summary>Learned per-frame embeddings; null = none.</summary>
    public int? MaxNumFrames { get; init; }
    public int FfMult { get; init; } = 4;
}

/// <summary>OpenFlamingo GatedCrossAttentionBlock constructor arguments.</summary>
public sealed record CrossAttentionConfig
{
    /// <summary>Width of the language model.</summary>
    public required int Dim { get; init; }
    /// <summary>Width of the media features (the perceiver output).</summary>
    public required int DimVisual { get; init; }
    public int DimHead { get; init; } = 64;
    public int Heads { get; init; } = 8;
    public int FfMult { get; init; } = 4;
    /// <summary>Each text token sees only the latest image before it (true) or every earlier image (false).</summary>
    public bool OnlyAttendImmediateMedia { get; init; } = true;
}

/// <summary>OpenFlamingo FeedForward: Sequential(0 LayerNorm, 1 Linear, 2 GELU, 3 Linear), no Linear biases.</summary>
public static class FlamingoFeedForward
{
    public static Sequential Create(int dim, int mult)
    {
        int inner = dim * mult;
        return nn.Sequential(
            ("0", nn.LayerNorm(dim)),
            ("1", nn.Linear(dim, inner, hasBias: false)),
            ("2", new ActivationModule(Activation.GeluErf)),
            ("3", nn.Linear(inner, dim, hasBias: false)));
    }
}

/// <summary>
/// Latents attend over concat(media, latents), both layer-normed; projections without bias (to_q, to_kv, to_out).
/// An asymmetric attention: queries from the latents only.
/// </summary>
public sealed class PerceiverAttention : AsymmetricAttention
{
    readonly LayerNorm norm_media, norm_latents;

    public PerceiverAttention(int dim, int dimHead, int heads) : base(new MultiHeadAttentionOptions
    {
        QueryDim = dim, KeyValueDim = dim, Heads = heads, HeadDim = dimHead, OutputDim = dim, ProjectionBias = false,
        Layout = ProjectionLayout.SeparateQueryFusedKeyValue, Names = AttentionNames.Flamingo,
    })
    {
        norm_media = nn.LayerNorm(dim);
        norm_latents = nn.LayerNorm(dim);
        register_module("norm_media", norm_media);
        register_module("norm_latents", norm_latents);
    }

    /// <summary>media [b, T, n1, D], latents [b, T, n2, D] → [b, T, n2, D].</summary>
    public Tensor Attend(Tensor media, Tensor latents)
    {
        long b = latents.shape[0], t = latents.shape[1], n1 = media.shape[2], n2 = latents.shape[2], d = latents.shape[3];
        var x = norm_media.forward(media).reshape(b * t, n1, d);
        var l = norm_latents.forward(latents).reshape(b * t, n2, d);
        return forward(l, cat(new[] { x, l }, 1), (AttentionMask?)null).reshape(b, t, n2, -1);
    }
}

/// <summary>One resampler layer: "0" = PerceiverAttention, "1" = FeedForward.</summary>
public sealed class PerceiverLayer : nn.Module
{
    protected override void RegisterComponents() { }

    public PerceiverAttention Attention { get; }
    public Sequential FeedForward { get; }

    public PerceiverLayer(int dim, int dimHead, int heads, int ffMult) : base("perceiver_layer")
    {
        Attention = new PerceiverAttention(dim, dimHead, heads);
        FeedForward = FlamingoFeedForward.Create(dim, ffMult);
        register_module("0", Attention);
        register_module("1", FeedForward);
    }
}

/// <summary>Per-layer outputs of the resampler before their residual additions (for parity checks).</summary>
public sealed class PerceiverTrace
{
    public List<Tensor> Attention { get; } = new();
    public List<Tensor> FeedForward { get; } = new();
}

/// <summary>
/// OpenFlamingo PerceiverResampler: a fixed number of learned latents per image read the image's (frames × patches)
/// features through depth × [attention, feed-forward]; [b, T, F, v, D] → [b, T, num_latents, D].
/// </summary>
public sealed class PerceiverResampler : nn.Module
{
    protected override void RegisterComponents() { }

    // Parameter fields carry their state-dict names: Module.to() replaces them by name.
    Parameter latents;
    Parameter? frame_embs, media_time_embs;
    readonly ModuleList<PerceiverLayer> layers;
    readonly LayerNorm norm;

    public PerceiverConfig Config { get; }

    public PerceiverResampler(PerceiverConfig config) : base("perceiver")
    {
        if (config.Dim <= 0 || config.Depth < 0 || config.Heads <= 0 || config.DimHead <= 0 || config.NumLatents <= 0)
            throw new ArgumentException($"invalid perceiver config {config}");
        Config = config;
        latents = new Parameter(randn(config.NumLatents, config.Dim));
        register_parameter("latents", latents);
        if (config.MaxNumFrames is int frames)
        {
            frame_embs = new Parameter(randn(frames, config.Dim));
            register_parameter("frame_embs", frame_embs);
        }
        if (config.MaxNumMedia is int media)
        {
            media_time_embs = new Parameter(randn(media, 1, config.Dim));
            register_parameter("media_time_embs", media_time_embs);
        }
        layers = nn.ModuleList(Enumerable.Range(0, config.Depth).Select(_ => new PerceiverLayer(config.Dim, config.DimHead, config.Heads, config.FfMult)).ToArray());
        register_module("layers", layers);
        norm = nn.LayerNorm(config.Dim);
        register_module("norm", norm);
    }

    /// <summary>x [b, T, F, v, D] (T images of F frames of v patch features) → [b, T, num_latents, D].</summary>
    public Tensor forward(Tensor x, PerceiverTrace? trace = null)
    {
        if (x.dim() != 5 || x.shape[4] != Config.Dim)
            throw new ArgumentException($"perceiver input must be [batch, media, frames, tokens, {Config.Dim}], got [{string.Join(", ", x.shape)}]");
        long b = x.shape[0], t = x.shape[1], f = x.shape[2], v = x.shape[3];
        if (frame_embs is not null)
        {
            if (f > frame_embs.shape[0]) throw new ArgumentException($"{f} frames exceed max_num_frames {frame_embs.shape[0]}");
            x = x + frame_embs.narrow(0, 0, f).unsqueeze(1);
        }
        x = x.reshape(b, t, f * v, Config.Dim);
        if (media_time_embs is not null)
        {
            if (t > media_time_embs.shape[0]) throw new ArgumentException($"{t} media exceed max_num_media {media_time_embs.shape[0]}");
            x = x + media_time_embs.narrow(0, 0, t);
        }
        var hidden = latents.expand(b, t, latents.shape[0], latents.shape[1]);
        foreach (var layer in layers)
        {
            var attended = layer.Attention.Attend(x, hidden);
            trace?.Attention.Add(attended);
            hidden = attended + hidden;
            var fed = layer.FeedForward.forward(hidden);
            trace?.FeedForward.Add(fed);
            hidden = fed + hidden;
        }
        return norm.forward(hidden);
    }
}

/// <summary>
/// Text time per token: the number of media tokens at or before it (cumsum of media_locations), or for tokens that
/// come after a cached prompt, the prompt's media count plus the media tokens among the new ones.
/// </summary>
public static class MediaTime
{
    /// <summary>media_locations [B, T] bool → [B, T] int64 = cumsum.</summary>
    public static Tensor FromLocations(Tensor mediaLocations) => mediaLocations.to(ScalarType.Int64).cumsum(-1);

    /// <summary>OpenFlamingo use_cached_media: every one of <paramref name="length"/> tokens sits after the last media of the row.</summary>
    public static Tensor AfterAll(Tensor mediaLocations, long length) =>
        mediaLocations.to(ScalarType.Int64).sum(-1, keepdim: true).expand(mediaLocations.shape[0], length);
}

/// <summary>
/// OpenFlamingo MaskedCrossAttention: layer-normed text queries over the media latents of all images; a token with
/// text time t sees the latents of image t only (immediate) or of images 1..t (all).
/// </summary>
public sealed class MaskedCrossAttention : AsymmetricAttention
{
    readonly LayerNorm norm;

    public bool OnlyAttendImmediateMedia { get; }

    public MaskedCrossAttention(CrossAttentionConfig config) : base(new MultiHeadAttentionOptions
    {
        QueryDim = config.Dim, KeyValueDim = config.DimVisual, Heads = config.Heads, HeadDim = config.DimHead, OutputDim = config.Dim,
        ProjectionBias = false, Layout = ProjectionLayout.SeparateQueryFusedKeyValue, Names = AttentionNames.Flamingo,
    })
    {
        OnlyAttendImmediateMedia = config.OnlyAttendImmediateMedia;
        norm = nn.LayerNorm(config.Dim);
        register_module("norm", norm);
    }

    /// <summary>
    /// Which media tokens each text token may see ([B, T_txt, T_img·n], true = allowed) and which tokens attend
    /// uniformly to every media token ([B, T_txt]). Reproduces the reference exactly: a token with no allowed media
    /// has every score at -finfo.max, which after the max subtraction is a uniform softmax over all media tokens; in
    /// immediate mode text before the first media (time 0) is instead zeroed (nothing allowed: the core returns 0).
    /// </summary>
    public (Tensor Allowed, Tensor Uniform) MediaMask(Tensor textTime, long mediaCount, long latentsPerMedia)
    {
        var mediaTime = arange(1, mediaCount + 1, dtype: ScalarType.Int64, device: textTime.device)
            .unsqueeze(1).expand(mediaCount, latentsPerMedia).reshape(-1);
        var time = textTime.unsqueeze(-1);
        var allowed = OnlyAttendImmediateMedia ? time.eq(mediaTime) : time.ge(mediaTime);
        var uniform = allowed.any(-1).logical_not();
        if (OnlyAttendImmediateMedia) uniform = uniform.logical_and(textTime.ne(0));
        return (allowed.logical_or(uniform.unsqueeze(-1)), uniform);
    }

    /// <summary>x [B, T_txt, dim], media [B, T_img, n, dim_visual], textTime [B, T_txt] (null = no masking) → [B, T_txt, dim].</summary>
    public Tensor Attend(Tensor x, Tensor media, Tensor? textTime)
    {
        if (media.dim() != 4) throw new ArgumentException($"media must be [batch, images, latents, width], got [{string.Join(", ", media.shape)}]");
        long b = media.shape[0], images = media.shape[1], n = media.shape[2];
        if (x.shape[0] != b) throw new ArgumentException($"text batch {x.shape[0]} differs from media batch {b}");
        if (textTime is not null && (textTime.shape[0] != b || textTime.shape[1] != x.shape[1]))
            throw new ArgumentException($"text time must be [{b}, {x.shape[1]}], got [{string.Join(", ", textTime.shape)}]");
        var (q, k, v) = Project(norm.forward(x), media.reshape(b, images * n, media.shape[3]));
        if (textTime is null) return AttendProjected(q, k, v);
        var (allowed, uniform) = MediaMask(textTime, images, n);
        q = q.masked_fill(uniform.unsqueeze(-1), 0); // equal scores: the uniform softmax of the reference
        return AttendProjected(q, k, v, new AttentionMask { Allowed = allowed.unsqueeze(1) });
    }
}

/// <summary>The attention and feed-forward outputs of a gated block before gating (for parity checks).</summary>
public sealed class CrossAttentionTrace
{
    public Tensor? Attention { get; set; }
    public Tensor? FeedForward { get; set; }
}

/// <summary>
/// OpenFlamingo GatedCrossAttentionBlock: x + tanh(attn_gate)·attn(x, media), then + tanh(ff_gate)·ff(x). Both gates
/// start at 0, so a fresh block leaves the language model's hidden states unchanged.
/// </summary>
public sealed class GatedCrossAttentionBlock : nn.Module
{
    protected override void RegisterComponents() { }

    readonly MaskedCrossAttention attn;
    // Parameter fields carry their state-dict names: Module.to() replaces them by name.
    Parameter attn_gate, ff_gate;
    readonly Sequential ff;

    public CrossAttentionConfig Config { get; }

    public GatedCrossAttentionBlock(CrossAttentionConfig config) : base("gated_cross_attn")
    {
        Config = config;
        attn = new MaskedCrossAttention(config);
        attn_gate = new Parameter(zeros(1));
        ff = FlamingoFeedForward.Create(config.Dim, config.FfMult);
        ff_gate = new Parameter(zeros(1));
        register_module("attn", attn);
        register_parameter("attn_gate", attn_gate);
        register_module("ff", ff);
        register_parameter("ff_gate", ff_gate);
    }

    public Parameter AttentionGate => attn_gate;
    public Parameter FeedForwardGate => ff_gate;

    /// <summary>x [B, T_txt, dim], media [B, T_img, n, dim_visual], textTime [B, T_txt] (see <see cref="MediaTime"/>).</summary>
    public Tensor forward(Tensor x, Tensor media, Tensor? textTime, CrossAttentionTrace? trace = null)
    {
        var attended = attn.Attend(x, media, textTime);
        if (trace is not null) trace.Attention = attended;
        x = attended * attn_gate.tanh() + x;
        var fed = ff.forward(x);
        if (trace is not null) trace.FeedForward = fed;
        return fed * ff_gate.tanh() + x;
    }

    /// <summary>The reference signature: media_locations [B, T_txt] bool; use_cached_media puts every token after the last media.</summary>
    public Tensor forward(Tensor x, Tensor media, Tensor mediaLocations, bool useCachedMedia, CrossAttentionTrace? trace = null)
    {
        if (!useCachedMedia && mediaLocations.shape[1] != x.shape[1])
            throw new ArgumentException($"media_locations has {mediaLocations.shape[1]} positions but the text has {x.shape[1]}");
        var textTime = useCachedMedia ? MediaTime.AfterAll(mediaLocations, x.shape[1]) : MediaTime.FromLocations(mediaLocations);
        return forward(x, media, textTime, trace);
    }
}
