using ModelZoo.Attention.Layers;

namespace ModelZoo.Models.Bert;

/// <summary>Hugging Face / original BERT config.json fields.</summary>
public sealed record BertConfig
{
    public int VocabSize { get; init; } = 30522;
    public int HiddenSize { get; init; } = 768;
    public int NumHiddenLayers { get; init; } = 12;
    public int NumAttentionHeads { get; init; } = 12;
    public int IntermediateSize { get; init; } = 3072;
    public string HiddenAct { get; init; } = "gelu";
    public double HiddenDropoutProb { get; init; } = 0.1;
    public double AttentionProbsDropoutProb { get; init; } = 0.1;
    public int MaxPositionEmbeddings { get; init; } = 512;
    public int TypeVocabSize { get; init; } = 2;
    public double InitializerRange { get; init; } = 0.02;
    public double LayerNormEps { get; init; } = 1e-12;
    public int PadTokenId { get; init; }

    public BertLayerOptions LayerOptions() => new()
    {
        Hidden = HiddenSize,
        Heads = NumAttentionHeads,
        Intermediate = IntermediateSize,
        Activation = Activations.Parse(HiddenAct),
        LayerNormEps = LayerNormEps,
        HiddenDropout = HiddenDropoutProb,
        AttentionDropout = AttentionProbsDropoutProb,
    };
}
