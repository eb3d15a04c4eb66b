using ModelZoo.Attention;
using ModelZoo.Models.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Flamingo;

/// <summary>Flamingo decoding state: the cache, each row's media latents, and how many media tokens the cache has seen per row.</summary>
public sealed class FlamingoDecodingState : DecodingState
{
    public Tensor? Media { get; private set; }
    /// <summary>[R] media tokens already in the cache (the text time the next tokens start from).</summary>
    public Tensor MediaSeen { get; private set; }

    public FlamingoDecodingState(KeyValueCache? cache, Tensor? media, Tensor mediaSeen) : base(cache)
    {
        Media = media?.DetachFromDisposeScope();
        MediaSeen = mediaSeen.DetachFromDisposeScope();
    }

    public void AddMediaSeen(Tensor count)
    {
        var next = (MediaSeen + count).DetachFromDisposeScope();
        MediaSeen.Dispose();
        MediaSeen = next;
    }

    public override void SelectRows(Tensor rows)
    {
        base.SelectRows(rows);
        if (Media is not null)
        {
            var media = Media.index_select(0, rows).DetachFromDisposeScope();
            Media.Dispose();
            Media = media;
        }
        var seen = MediaSeen.index_select(0, rows).DetachFromDisposeScope();
        MediaSeen.Dispose();
        MediaSeen = seen;
    }

    public override void Dispose()
    {
        Media?.Dispose();
        MediaSeen.Dispose();
        base.Dispose();
    }
}

/// <summary>
/// A Flamingo model with its media already encoded (the media cache: the vision tower and the resampler run once
/// per prompt batch, not once per generated token), as an <see cref="IGenerativeModel"/>.
/// </summary>
public sealed class FlamingoGenerativeModel(FlamingoModel model, Tensor? media) : IGenerativeModel
{
    public int VocabSize => model.Decoder.VocabSize;
    public Device Device { get; } = model.Decoder.Device();
    public int? MaxPositions => model.Decoder.MaxPositions;

    public DecodingState Begin(Tensor rowSources, bool useCache)
    {
        var rows = rowSources.to(Device);
        var rowMedia = media?.index_select(0, rows);
        return new FlamingoDecodingState(useCache ? new KeyValueCache(model.Decoder.LayerCount) : null, rowMedia,
            zeros(rowSources.shape[0], dtype: ScalarType.Int64, device: Device));
    }

    public Tensor NextTokenLogits(DecodingState state, Tensor tokens, Tensor attentionMask)
    {
        var flamingo = (FlamingoDecodingState)state;
        bool cached = state.Cache is not null;
        var textTime = flamingo.Media is null ? null : model.TextTime(tokens, cached ? flamingo.MediaSeen : null);
        var hidden = model.LanguageModel.Hidden(tokens, attentionMask, flamingo.Media, textTime, state.Cache);
        if (cached) flamingo.AddMediaSeen(tokens.eq(model.Config.MediaTokenId).sum(1));
        return model.LanguageModel.Logits(hidden.select(1, hidden.shape[1] - 1));
    }
}

public static class FlamingoGenerationExtensions
{
    /// <summary>
    /// Generates a continuation of each prompt (token ids with "&lt;image&gt;" where each image goes) conditioned on its
    /// images [B, T_img, (F,) 3, H, W] (null = text only; rows with fewer images are zero-padded). Stops at
    /// "&lt;|endofchunk|&gt;" or EOS unless <see cref="GenerationOptions.StopTokenIds"/> says otherwise.
    /// </summary>
    public static IReadOnlyList<GeneratedSequence> Generate(this FlamingoModel model, Tensor? images, IReadOnlyList<IReadOnlyList<long>> prompts,
                                                           GenerationOptions? options = null)
    {
        options = model.WithDefaults(options ?? new GenerationOptions());
        if (images is not null && images.shape[0] != prompts.Count)
            throw new ArgumentException($"{prompts.Count} prompts but images for {images.shape[0]}");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var media = images is null ? null : model.EncodeMedia(images.to(model.Decoder.TokenEmbeddingWeightDtype()).to(model.Decoder.Device()));
        return TextGenerator.Generate(new FlamingoGenerativeModel(model, media), prompts, options);
    }

    /// <summary>Stop tokens "&lt;|endofchunk|&gt;" and EOS (when none are given) and the config's pad token.</summary>
    public static GenerationOptions WithDefaults(this FlamingoModel model, GenerationOptions options)
    {
        var config = model.Config;
        var stop = options.StopTokenIds.Count > 0 ? options.StopTokenIds
            : new[] { (long)config.EndOfChunkTokenId }.Concat(config.EosTokenId is int eos ? new[] { (long)eos } : Array.Empty<long>()).ToArray();
        return options with { StopTokenIds = stop, PadTokenId = config.PadTokenId ?? options.PadTokenId };
    }
}
