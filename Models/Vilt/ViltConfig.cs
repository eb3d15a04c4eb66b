namespace ModelZoo.Models.Vilt;

/// <summary>
/// Hugging Face ViltConfig fields (config.json of dandelin/vilt-b32-*), which carry the original ViLT settings
/// (vilt/config.py: hidden_size, num_layers → num_hidden_layers, num_heads, mlp_ratio·hidden → intermediate_size,
/// max_text_len → max_position_embeddings, image_size, patch_size, max_image_len → max_image_length).
/// </summary>
public sealed record ViltConfig
{
    public int VocabSize { get; init; } = 30522;
    /// <summary>Text token types inside the BERT text embeddings.</summary>
    public int TypeVocabSize { get; init; } = 2;
    /// <summary>Modality types: 0 text, 1 image, 2 the second image of an NLVR2 pair (3 types there).</summary>
    public int ModalityTypeVocabSize { get; init; } = 2;
    public int MaxPositionEmbeddings { get; init; } = 40;
    public int HiddenSize { get; init; } = 768;
    public int NumHiddenLayers { get; init; } = 12;
    public int NumAttentionHeads { get; init; } = 12;
    public int IntermediateSize { get; init; } = 3072;
    public string HiddenAct { get; init; } = "gelu";
    public double HiddenDropoutProb { get; init; }
    public double AttentionProbsDropoutProb { get; init; }
    public double InitializerRange { get; init; } = 0.02;
    /// <summary>LayerNorm eps of the BERT text embeddings and the MLM head transform.</summary>
    public double LayerNormEps { get; init; } = 1e-12;
    /// <summary>
    /// LayerNorm eps of the ViT blocks and the final norm: 1e-6 in the original (timm's partial(nn.LayerNorm, eps=1e-6));
    /// the Hugging Face port uses layer_norm_eps there. Not a Hugging Face field.
    /// </summary>
    public double EncoderLayerNormEps { get; init; } = 1e-6;
    /// <summary>Pre-training resolution: the position embedding grid is image_size / patch_size square.</summary>
    public int ImageSize { get; init; } = 384;
    public int PatchSize { get; init; } = 32;
    public int NumChannels { get; init; } = 3;
    public bool QkvBias { get; init; } = true;
    /// <summary>Most image patches kept per image (the original max_image_len); -1 keeps every valid patch.</summary>
    public int MaxImageLength { get; init; } = -1;
    /// <summary>Images per example for the NLVR2 classifier (2); -1 elsewhere.</summary>
    public int NumImages { get; init; } = -1;
    /// <summary>Classifier outputs (3129 VQA answers, 2 for NLVR2); Hugging Face files leave it out and give id2label.</summary>
    public int? NumLabels { get => _numLabels ?? Id2Label?.Count; init => _numLabels = value; }
    readonly int? _numLabels;
    /// <summary>Answer index → answer text (the VQA checkpoint's config.json carries the 3129 VQA v2 answers).</summary>
    [System.Text.Json.Serialization.JsonPropertyName("id2label")]
    public Dictionary<string, string>? Id2Label { get; init; }
    /// <summary>Padding row of the word embeddings (null in some Hugging Face configs: no padding row).</summary>
    public int? PadTokenId { get; init; } = 0;

    /// <summary>
    /// Reads a Hugging Face config.json object. The Hugging Face port uses layer_norm_eps in the ViT blocks too,
    /// so <see cref="EncoderLayerNormEps"/> follows it unless the file sets encoder_layer_norm_eps itself.
    /// </summary>
    public static ViltConfig FromHuggingFace(System.Text.Json.JsonElement json, string what = "config")
    {
        var config = Common.ConfigJson.Parse<ViltConfig>(json, what);
        return json.TryGetProperty("encoder_layer_norm_eps", out _) ? config : config with { EncoderLayerNormEps = config.LayerNormEps };
    }

    /// <summary>Side of the square position-embedding grid.</summary>
    public int PatchGrid => ImageSize / PatchSize;

    internal void Validate()
    {
        if (HiddenSize % NumAttentionHeads != 0) throw new ArgumentException($"hidden_size {HiddenSize} is not divisible by num_attention_heads {NumAttentionHeads}");
        if (PatchSize <= 0 || ImageSize < PatchSize) throw new ArgumentException($"image_size {ImageSize} must hold at least one patch of {PatchSize}");
    }
}

/// <summary>Which task heads a ViLT model carries (the original ViLTransformerSS creates them from loss_names).</summary>
public sealed record ViltHeads
{
    /// <summary>mlm_score: masked language modelling over the text tokens.</summary>
    public bool Mlm { get; init; }
    /// <summary>itm_score: 2-way image–text matching.</summary>
    public bool Itm { get; init; }
    /// <summary>vqa_classifier with this many answers.</summary>
    public int? VqaAnswers { get; init; }
    /// <summary>nlvr2_classifier over the two images' pooled outputs (needs 3 modality types).</summary>
    public bool Nlvr2 { get; init; }
    /// <summary>rank_output: retrieval score.</summary>
    public bool Rank { get; init; }

    public static ViltHeads None { get; } = new();

    public IReadOnlyList<string> Names()
    {
        var names = new List<string>();
        if (Mlm) names.Add("mlm_score");
        if (Itm) names.Add("itm_score");
        if (VqaAnswers is not null) names.Add("vqa_classifier");
        if (Nlvr2) names.Add("nlvr2_classifier");
        if (Rank) names.Add("rank_output");
        return names;
    }
}
