using ModelZoo.Models.Common;

namespace ModelZoo.Models.Bert;

/// <summary>Hugging Face / original BERT config.json fields (the shared encoder fields in <see cref="BertTextConfig"/>).</summary>
public sealed record BertConfig : BertTextConfig
{
    public int NumHiddenLayers { get; init; } = 12;
    public double LayerNormEps { get; init; } = 1e-12;
    public int PadTokenId { get; init; }

    protected override double EncoderLayerNormEps => LayerNormEps;
}
