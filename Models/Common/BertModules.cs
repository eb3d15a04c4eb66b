using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Common;

// BERT building blocks shared by every BERT-based family (BERT, UNITER, VisualBERT, ViLBERT, LXMERT).
// Names follow the original code: embeddings.{word,position,token_type}_embeddings, embeddings.LayerNorm,
// encoder.layer.N.*, pooler.dense.

/// <summary>Word + position + token type embeddings, LayerNorm, dropout.</summary>
public sealed class BertEmbeddings : nn.Module
{
    readonly Embedding word_embeddings, position_embeddings, token_type_embeddings;
    readonly LayerNorm LayerNorm;
    readonly Dropout dropout;

    public BertEmbeddings(int vocabSize, int hidden, int maxPositions, int typeVocabSize, double layerNormEps = 1e-12, double dropoutRate = 0.1,
                          int? paddingIdx = 0) : base("embeddings")
    {
        word_embeddings = nn.Embedding(vocabSize, hidden, padding_idx: paddingIdx);
        position_embeddings = nn.Embedding(maxPositions, hidden);
        token_type_embeddings = nn.Embedding(typeVocabSize, hidden);
        LayerNorm = nn.LayerNorm(hidden, layerNormEps);
        dropout = nn.Dropout(dropoutRate);
        RegisterComponents();
    }

    public Embedding WordEmbeddings => word_embeddings;
    public Embedding PositionEmbeddings => position_embeddings;
    public Embedding TokenTypeEmbeddings => token_type_embeddings;

    /// <summary>LayerNorm then dropout, as applied to the summed text embeddings (VisualBERT sends its visual tokens through the same norm).</summary>
    public Tensor Normalize(Tensor summed) => dropout.forward(LayerNorm.forward(summed));

    /// <summary>input_ids [B, L]; token types default to 0, positions to 0..L-1 (a [1, L] or [B, L] tensor may be given).</summary>
    public Tensor forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? positionIds = null)
    {
        positionIds ??= arange(inputIds.shape[1], dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0);
        tokenTypeIds ??= zeros_like(inputIds);
        var sum = word_embeddings.forward(inputIds) + position_embeddings.forward(positionIds) + token_type_embeddings.forward(tokenTypeIds);
        return Normalize(sum);
    }
}

/// <summary>A stack of post-norm BERT layers under "layer.N".</summary>
public sealed class BertEncoder : nn.Module
{
    readonly ModuleList<BertLayer> layer;

    public BertEncoder(int layers, BertLayerOptions options) : base("encoder")
    {
        layer = nn.ModuleList(Enumerable.Range(0, layers).Select(_ => new BertLayer(options)).ToArray());
        RegisterComponents();
    }

    public int Count => layer.Count;
    public BertLayer this[int index] => layer[index];

    /// <summary>Runs every layer; returns the output of each (the last is the sequence output).</summary>
    public List<Tensor> forward(Tensor hidden, AttentionMask? mask)
    {
        var outputs = new List<Tensor>(layer.Count);
        foreach (var l in layer)
        {
            hidden = l.forward(hidden, mask);
            outputs.Add(hidden);
        }
        return outputs;
    }
}

/// <summary>Dense + activation over the first token (tanh in BERT; ViLBERT uses ReLU).</summary>
public sealed class BertPooler : nn.Module<Tensor, Tensor>
{
    readonly Linear dense;
    readonly Activation activation;

    public BertPooler(int inputDim, int outputDim, Activation activation = Activation.Tanh) : base("pooler")
    {
        dense = nn.Linear(inputDim, outputDim);
        this.activation = activation;
        RegisterComponents();
    }

    public override Tensor forward(Tensor sequence) => Activations.Apply(activation, dense.forward(sequence.select(1, 0)));
}
