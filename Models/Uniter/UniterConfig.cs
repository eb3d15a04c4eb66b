using ModelZoo.Models.Common;

namespace ModelZoo.Models.Uniter;

/// <summary>
/// ChenRocks/UNITER UniterConfig fields (model/model.py) with their own names, plus the constructor arguments of the
/// task classes: img_dim (region feature width) and num_answer (VQA answer count, null for a backbone).
/// </summary>
public sealed record UniterConfig : BertTextConfig
{
    /// <summary>UNITER's released models use the cased BERT vocabulary.</summary>
    public UniterConfig() => VocabSize = 28996;

    public int NumHiddenLayers { get; init; } = 12;

    /// <summary>Width of the region features (UniterModel(config, img_dim)); 2048 for the released models.</summary>
    public int ImgDim { get; init; } = 2048;
    /// <summary>Answers of the VQA head (UniterForVisualQuestionAnswering(config, img_dim, num_answer)); 3129 for VQA v2.</summary>
    public int? NumAnswer { get; init; }
    /// <summary>Answer index → answer text, when a config carries it (Hugging Face style); else answers come from a file.</summary>
    [System.Text.Json.Serialization.JsonPropertyName("id2label")]
    public Dictionary<string, string>? Id2Label { get; init; }

    /// <summary>UNITER hard-codes LayerNorm eps 1e-12 everywhere.</summary>
    public const double LayerNormEps = 1e-12;

    protected override double EncoderLayerNormEps => LayerNormEps;

    /// <summary>Width of the box features: x1, y1, x2, y2, w, h, w·h (normalised by the image size).</summary>
    public const int BoxFeatureDim = 7;
}
