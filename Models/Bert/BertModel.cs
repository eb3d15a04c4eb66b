using ModelZoo.Attention;
using ModelZoo.Models.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Bert;

/// <summary>Output of a BERT-style encoder: every layer's hidden states, the last one, and the pooled first token.</summary>
public sealed record EncoderOutput(Tensor SequenceOutput, Tensor? PooledOutput, IReadOnlyList<Tensor> HiddenStates, Tensor EmbeddingOutput);

/// <summary>The BERT text encoder (Hugging Face BertModel key names: embeddings.*, encoder.layer.N.*, pooler.dense.*).</summary>
public sealed class BertModel : nn.Module
{
    readonly BertEmbeddings embeddings;
    readonly BertEncoder encoder;
    readonly BertPooler pooler;

    public BertConfig Config { get; }

    public BertModel(BertConfig config) : base("bert")
    {
        Config = config;
        embeddings = new BertEmbeddings(config.VocabSize, config.HiddenSize, config.MaxPositionEmbeddings, config.TypeVocabSize,
            config.LayerNormEps, config.HiddenDropoutProb, config.PadTokenId);
        encoder = new BertEncoder(config.NumHiddenLayers, config.LayerOptions());
        pooler = new BertPooler(config.HiddenSize, config.HiddenSize);
        RegisterComponents();
        Initialization.BertStyle(this, config.InitializerRange);
    }

    /// <summary>input_ids [B, L]; attention_mask [B, L] (1 = real token); token_type_ids [B, L].</summary>
    public EncoderOutput forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null)
    {
        var embedded = embeddings.forward(inputIds, tokenTypeIds);
        var layers = encoder.forward(embedded, AttentionMask.FromPadding(attentionMask));
        var sequence = layers.Count > 0 ? layers[^1] : embedded;
        return new EncoderOutput(sequence, pooler.forward(sequence), layers, embedded);
    }
}
