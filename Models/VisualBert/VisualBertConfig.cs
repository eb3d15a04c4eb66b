using ModelZoo.Models.Common;

namespace ModelZoo.Models.VisualBert;

/// <summary>Hugging Face VisualBertConfig fields (config.json of uclanlp/visualbert-*).</summary>
public sealed record VisualBertConfig : BertTextConfig
{
    /// <summary>Width of the region features: 2048 (VQA and COCO pre-training), 1024 (NLVR2), 512 (VCR).</summary>
    public int VisualEmbeddingDim { get; init; } = 512;
    public int NumHiddenLayers { get; init; } = 12;
    public double LayerNormEps { get; init; } = 1e-12;
    /// <summary>Text layers see only the text; one additional layer then sees text and regions (false in every published checkpoint).</summary>
    public bool BypassTransformer { get; init; }
    /// <summary>Initialise the visual token type / position tables from the text ones (only matters for random initialisation).</summary>
    public bool SpecialVisualInitialize { get; init; } = true;
    public int? PadTokenId { get; init; } = 1;
    /// <summary>Classifier outputs (3129 VQA answers, 2 for NLVR2); Hugging Face files leave it out and give id2label.</summary>
    public int? NumLabels { get => _numLabels ?? Id2Label?.Count; init => _numLabels = value; }
    readonly int? _numLabels;
    /// <summary>Answer index → answer text when the config carries real names.</summary>
    [System.Text.Json.Serialization.JsonPropertyName("id2label")]
    public Dictionary<string, string>? Id2Label { get; init; }

    protected override double EncoderLayerNormEps => LayerNormEps;
}
