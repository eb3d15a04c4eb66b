using System.Text.Json;
using System.Text.Json.Nodes;
using ModelZoo.Attention.Layers;
using ModelZoo.Models.Common;

namespace ModelZoo.Models.Lxmert;

/// <summary>
/// LXMERT configuration with the field names of Hugging Face's LxmertConfig (a superset of the original BERT config
/// fields), so an HF config.json loads as it is; the original's BertConfig plus its module-global VISUAL_CONFIG
/// (l/x/r_layers, visual_feat_dim, visual_pos_dim) load through <see cref="FromOriginal"/>.
/// </summary>
public sealed record LxmertConfig : BertTextConfig
{
    public double LayerNormEps { get; init; } = 1e-12;

    /// <summary>Language layers (run first, over the text alone).</summary>
    public int LLayers { get; init; } = 9;
    /// <summary>Cross-modality layers (run last, over both streams).</summary>
    public int XLayers { get; init; } = 5;
    /// <summary>Object-relationship layers (run over the regions alone).</summary>
    public int RLayers { get; init; } = 5;
    public int VisualFeatDim { get; init; } = 2048;
    public int VisualPosDim { get; init; } = 4;

    // Heads (LxmertForPreTraining / LxmertForQuestionAnswering).
    public int NumQaLabels { get; init; } = 9500;
    public int NumObjectLabels { get; init; } = 1600;
    public int NumAttrLabels { get; init; } = 400;
    public bool TaskMatched { get; init; } = true;
    public bool TaskMaskLm { get; init; } = true;
    public bool TaskObjPredict { get; init; } = true;
    public bool TaskQa { get; init; } = true;
    public bool VisualObjLoss { get; init; } = true;
    public bool VisualAttrLoss { get; init; } = true;
    public bool VisualFeatLoss { get; init; } = true;
    public double VisualLossNormalizer { get; init; } = 6.67;

    /// <summary>Not read: an int in the original BERT config, {"language", "vision", "cross_encoder"} in Hugging Face files.</summary>
    public JsonElement? NumHiddenLayers { get; init; }
    public string? ModelType { get; init; }

    public static LxmertConfig Load(string path) => ConfigJson.Load<LxmertConfig>(path).Validated(path);

    /// <summary>
    /// The original repository's pieces: its BertConfig fields and, when given, VISUAL_CONFIG's l_layers, x_layers,
    /// r_layers, visual_feat_dim and visual_pos_dim (these override the BertConfig object).
    /// </summary>
    public static LxmertConfig FromOriginal(JsonElement bertConfig, JsonElement? visualConfig = null, string source = "lxmert config")
    {
        var merged = JsonNode.Parse(bertConfig.GetRawText()) as JsonObject ?? throw new InvalidDataException($"{source}: the config is not a JSON object");
        if (visualConfig is JsonElement visual && visual.ValueKind == JsonValueKind.Object)
            foreach (var property in visual.EnumerateObject())
                merged[property.Name] = JsonNode.Parse(property.Value.GetRawText());
        using var document = JsonDocument.Parse(merged.ToJsonString());
        return ConfigJson.Parse<LxmertConfig>(document.RootElement, source).Validated(source);
    }

    protected override double EncoderLayerNormEps => LayerNormEps;

    public LxmertConfig Validated(string source = "lxmert config")
    {
        void Fail(string message) => throw new ArgumentException($"{source}: {message}");
        if (HiddenSize <= 0 || NumAttentionHeads <= 0 || HiddenSize % NumAttentionHeads != 0)
            Fail($"hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}");
        if (LLayers < 0 || XLayers < 0 || RLayers < 0) Fail($"layer counts must not be negative (l_layers {LLayers}, x_layers {XLayers}, r_layers {RLayers})");
        if (VisualFeatDim <= 0 || VisualPosDim <= 0) Fail($"visual_feat_dim {VisualFeatDim} and visual_pos_dim {VisualPosDim} must be positive");
        _ = Activations.Parse(HiddenAct);
        return this;
    }
}
