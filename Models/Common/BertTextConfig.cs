using System.Text.Json.Serialization;
using ModelZoo.Attention.Layers;

namespace ModelZoo.Models.Common;

/// <summary>
/// The BERT encoder fields that BERT and the BERT-based families (UNITER, VisualBERT, ViLBERT's text stream, LXMERT)
/// share, with BERT-base's defaults; a family whose reference defaults differ sets them in its constructor. Field
/// names are the reference ones (ConfigJson reads them as snake_case); they come first in a written config.json.
/// num_hidden_layers and layer_norm_eps stay with each family: Hugging Face LXMERT files hold an object in
/// num_hidden_layers, and UNITER and ViLBERT hard-code the epsilon.
/// </summary>
public abstract record BertTextConfig
{
    [JsonPropertyOrder(-1)] public int VocabSize { get; init; } = 30522;
    [JsonPropertyOrder(-1)] public int HiddenSize { get; init; } = 768;
    [JsonPropertyOrder(-1)] public int NumAttentionHeads { get; init; } = 12;
    [JsonPropertyOrder(-1)] public int IntermediateSize { get; init; } = 3072;
    [JsonPropertyOrder(-1)] public string HiddenAct { get; init; } = "gelu";
    [JsonPropertyOrder(-1)] public double HiddenDropoutProb { get; init; } = 0.1;
    [JsonPropertyOrder(-1)] public double AttentionProbsDropoutProb { get; init; } = 0.1;
    [JsonPropertyOrder(-1)] public int MaxPositionEmbeddings { get; init; } = 512;
    [JsonPropertyOrder(-1)] public int TypeVocabSize { get; init; } = 2;
    [JsonPropertyOrder(-1)] public double InitializerRange { get; init; } = 0.02;

    /// <summary>LayerNorm epsilon of the encoder layers: BERT's 1e-12 unless the family's config carries layer_norm_eps.</summary>
    protected virtual double EncoderLayerNormEps => 1e-12;

    /// <summary>Options of one post-norm encoder layer (<see cref="BertLayer"/>).</summary>
    public BertLayerOptions LayerOptions() => new()
    {
        Hidden = HiddenSize,
        Heads = NumAttentionHeads,
        Intermediate = IntermediateSize,
        Activation = Activations.Parse(HiddenAct),
        LayerNormEps = EncoderLayerNormEps,
        HiddenDropout = HiddenDropoutProb,
        AttentionDropout = AttentionProbsDropoutProb,
    };
}
