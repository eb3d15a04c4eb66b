using ModelZoo.Attention;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Generation;

/// <summary>What a decoder layer needs besides its input: the mask over every key so far and the absolute positions of the new tokens [B, Lnew].</summary>
public sealed record DecoderContext(AttentionMask Mask, Tensor Positions);

/// <summary>
/// A decoder-only language model opened up into its stages (embed, layers, final norm, head), so a wrapper can run
/// blocks between layers (Flamingo's gated cross-attention) and decoding can go one token at a time with a key/value
/// cache. GPT-2 implements it; other decoders (ALiBi, rotary) plug in the same way: positions reach every layer.
/// </summary>
public interface IDecoderLanguageModel
{
    /// <summary>The decoder as a module (its children carry the checkpoint names).</summary>
    nn.Module Module { get; }
    int HiddenSize { get; }
    int LayerCount { get; }
    int VocabSize { get; }
    /// <summary>Longest sequence its position embeddings cover; null when unbounded (ALiBi, rotary).</summary>
    int? MaxPositions { get; }

    /// <summary>
    /// Token-embedding rows below this index get no gradient (their lookups use a detached copy); null = every row
    /// trains with the embedding's own requires_grad. Flamingo sets it to train only its new tokens.
    /// </summary>
    long? FrozenTokenRows { get; set; }

    /// <summary>
    /// The input token embedding matrix [vocab, hidden] (tied to the output head where the model ties them). TorchSharp
    /// hands out a new handle on each read: read it inside a dispose scope.
    /// </summary>
    Tensor TokenEmbeddingWeight { get; }

    /// <summary>input_ids [B, L] at absolute positions [B, L] → [B, L, hidden].</summary>
    Tensor Embed(Tensor inputIds, Tensor positions);

    /// <summary>Decoder layer <paramref name="index"/> over new positions; with a cache they attend over the cached keys too.</summary>
    Tensor Layer(int index, Tensor hidden, DecoderContext context, LayerKeyValueCache? cache);

    Tensor FinalNorm(Tensor hidden);

    /// <summary>[.., hidden] → [.., vocab].</summary>
    Tensor Logits(Tensor hidden);
}

public static class DecoderLanguageModelExtensions
{
    /// <summary>The device the decoder's weights are on.</summary>
    public static Device Device(this IDecoderLanguageModel decoder)
    {
        using var scope = NewDisposeScope();
        return decoder.TokenEmbeddingWeight.device;
    }

    /// <summary>The dtype of the decoder's weights.</summary>
    public static ScalarType TokenEmbeddingWeightDtype(this IDecoderLanguageModel decoder)
    {
        using var scope = NewDisposeScope();
        return decoder.TokenEmbeddingWeight.dtype;
    }

    /// <summary>Logits at every position: input_ids [B, L], attention_mask [B, Lpast + L] (left padding), optional cache.</summary>
    public static Tensor ForwardTokens(this IDecoderLanguageModel decoder, Tensor inputIds, Tensor? attentionMask = null, KeyValueCache? cache = null) =>
        decoder.Logits(DecoderPass.Run(decoder, inputIds, attentionMask, cache).Hidden);
}

/// <summary>Hidden states of a decoder pass: after the final norm, and optionally every layer's output (before the final norm).</summary>
public sealed record DecoderPassOutput(Tensor Hidden, IReadOnlyList<Tensor> LayerOutputs);

/// <summary>Runs a decoder over new tokens: positions from the attention mask (left padding), causal mask, optional cache.</summary>
public static class DecoderPass
{
    /// <summary>
    /// Absolute positions of the last <paramref name="newTokens"/> tokens: the count of real tokens before each one,
    /// so a left-padded row numbers its first real token 0 (Hugging Face GPT-2 generate does the same). [B, Lnew].
    /// </summary>
    public static Tensor Positions(Tensor attentionMask, long newTokens)
    {
        var mask = attentionMask.dtype == ScalarType.Bool ? attentionMask.to(ScalarType.Int64) : attentionMask.ne(0).to(ScalarType.Int64);
        var positions = (mask.cumsum(-1) - 1).clamp_min(0);
        long total = positions.shape[1];
        return positions.narrow(1, total - newTokens, newTokens);
    }

    /// <summary>
    /// input_ids [B, Lnew]; attention_mask [B, Lpast + Lnew] (1 = real token; null = all real); the cache holds Lpast
    /// positions (null = no cache, Lpast = 0). <paramref name="beforeLayer"/> may transform the hidden states entering
    /// each layer (index, hidden) → hidden.
    /// </summary>
    public static DecoderPassOutput Run(IDecoderLanguageModel decoder, Tensor inputIds, Tensor? attentionMask = null, KeyValueCache? cache = null,
                                        Func<int, Tensor, Tensor>? beforeLayer = null, bool keepLayerOutputs = false)
    {
        if (inputIds.dim() != 2) throw new ArgumentException($"input_ids must be [batch, length], got [{string.Join(", ", inputIds.shape)}]");
        long batch = inputIds.shape[0], newTokens = inputIds.shape[1];
        long past = cache?.Length ?? 0;
        if (cache is not null && cache.Layers.Length != decoder.LayerCount)
            throw new ArgumentException($"the key/value cache has {cache.Layers.Length} layers, the decoder {decoder.LayerCount}");
        long total = past + newTokens;
        if (attentionMask is not null && (attentionMask.dim() != 2 || attentionMask.shape[0] != batch || attentionMask.shape[1] != total))
            throw new ArgumentException($"attention_mask must be [{batch}, {total}] (cached {past} + new {newTokens}), got [{string.Join(", ", attentionMask.shape)}]");
        if (decoder.MaxPositions is int max && total > max)
            throw new ArgumentException($"{total} tokens exceed the {max} positions of this model");

        bool padded = attentionMask is not null && !attentionMask.ne(0).all().item<bool>();
        var positions = padded
            ? Positions(attentionMask!, newTokens)
            : arange(past, total, dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0).expand(batch, newTokens);
        var mask = new AttentionMask { KeyPadding = padded ? attentionMask : null, Causal = true };
        var context = new DecoderContext(mask, positions);

        var hidden = decoder.Embed(inputIds, positions);
        var outputs = keepLayerOutputs ? new List<Tensor>(decoder.LayerCount) : null;
        for (int i = 0; i < decoder.LayerCount; i++)
        {
            if (beforeLayer is not null) hidden = beforeLayer(i, hidden);
            hidden = decoder.Layer(i, hidden, context, cache?.Layers[i]);
            outputs?.Add(hidden);
        }
        return new DecoderPassOutput(decoder.FinalNorm(hidden), (IReadOnlyList<Tensor>?)outputs ?? Array.Empty<Tensor>());
    }

    /// <summary>Token embeddings [B, L, hidden] of input_ids [B, L]; rows below <paramref name="frozenRows"/> get no gradient (see <see cref="PartiallyFrozen"/>).</summary>
    public static Tensor EmbedTokens(Embedding embedding, Tensor inputIds, long? frozenRows)
    {
        if (frozenRows is null) return embedding.forward(inputIds);
        var weight = PartiallyFrozen(embedding.weight!, frozenRows);
        return weight.index_select(0, inputIds.reshape(-1)).view(inputIds.shape[0], inputIds.shape[1], weight.shape[1]);
    }

    /// <summary>The token-embedding weight with rows below <paramref name="frozenRows"/> cut off from the gradient (when grad is on).</summary>
    public static Tensor PartiallyFrozen(Tensor weight, long? frozenRows)
    {
        if (frozenRows is not long rows || !weight.requires_grad || !is_grad_enabled()) return weight;
        if (rows <= 0) return weight;
        if (rows >= weight.shape[0]) return weight.detach();
        return cat(new[] { weight.narrow(0, 0, rows).detach(), weight.narrow(0, rows, weight.shape[0] - rows) }, 0);
    }
}
