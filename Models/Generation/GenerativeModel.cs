using ModelZoo.Attention;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Generation;

/// <summary>
/// Per-batch decoding state: the key/value cache (null when decoding without one) and whatever the model keeps per
/// row (Flamingo: the media latents and how many media tokens each row has seen). Beam search reorders rows.
/// </summary>
public class DecodingState : IDisposable
{
    public KeyValueCache? Cache { get; }

    public DecodingState(KeyValueCache? cache) => Cache = cache;

    /// <summary>Keeps the rows in <paramref name="rows"/> (indices into the current rows; repeats allowed).</summary>
    public virtual void SelectRows(Tensor rows) => Cache?.SelectRows(rows);

    public virtual void Dispose()
    {
        Cache?.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>A model that predicts the next token of a batch of sequences, with or without a key/value cache.</summary>
public interface IGenerativeModel
{
    int VocabSize { get; }
    /// <summary>Where the model's tensors live (token ids are sent there).</summary>
    Device Device { get; }
    /// <summary>Longest sequence (prompt + new tokens) the model can see; null = unbounded.</summary>
    int? MaxPositions { get; }

    /// <summary>
    /// Starts decoding rows; <paramref name="rowSources"/> [R] gives the prompt each row belongs to (beam search
    /// repeats a prompt once per beam), so per-prompt conditioning (images) can be laid out per row.
    /// </summary>
    DecodingState Begin(Tensor rowSources, bool useCache);

    /// <summary>
    /// Logits [R, vocab] of the token after the last one. <paramref name="tokens"/> are the tokens the state has not
    /// seen yet (with a cache: the prompt, then one token per step; without: the whole sequence every time);
    /// <paramref name="attentionMask"/> [R, total] covers every token so far (0 = left padding).
    /// </summary>
    Tensor NextTokenLogits(DecodingState state, Tensor tokens, Tensor attentionMask);
}

/// <summary>Any <see cref="IDecoderLanguageModel"/> as a generator (text only).</summary>
public sealed class DecoderGenerativeModel(IDecoderLanguageModel decoder) : IGenerativeModel
{
    public int VocabSize => decoder.VocabSize;
    public Device Device { get; } = decoder.Device();
    public int? MaxPositions => decoder.MaxPositions;

    public DecodingState Begin(Tensor rowSources, bool useCache) => new(useCache ? new KeyValueCache(decoder.LayerCount) : null);

    public Tensor NextTokenLogits(DecodingState state, Tensor tokens, Tensor attentionMask)
    {
        var hidden = DecoderPass.Run(decoder, tokens, attentionMask, state.Cache).Hidden;
        return decoder.Logits(hidden.select(1, hidden.shape[1] - 1));
    }
}
