using System.Text.Json;
using System.Text.Json.Serialization;
using ModelZoo.Attention.Layers;

namespace ModelZoo.Models.Clip;

/// <summary>
/// The arguments of openai/CLIP's <c>CLIP(...)</c> constructor, with their own names. <c>vision_layers</c> is a
/// number for the ViT image tower and a list of four stage depths for the ModifiedResNet tower, as in the original.
/// </summary>
public sealed record ClipConfig
{
    public int EmbedDim { get; init; } = 512;
    public int ImageResolution { get; init; } = 224;
    /// <summary>One number = ViT depth; four numbers = ModifiedResNet stage depths.</summary>
    [JsonConverter(typeof(VisionLayersConverter))]
    public int[] VisionLayers { get; init; } = { 12 };
    public int VisionWidth { get; init; } = 768;
    /// <summary>ViT patch size; null for the ResNet tower.</summary>
    public int? VisionPatchSize { get; init; } = 32;
    public int ContextLength { get; init; } = 77;
    public int VocabSize { get; init; } = 49408;
    public int TransformerWidth { get; init; } = 512;
    public int TransformerHeads { get; init; } = 8;
    public int TransformerLayers { get; init; } = 12;
    /// <summary>Not a CLIP argument: overrides the derived vision head count (Hugging Face configs state it).</summary>
    public int? VisionHeads { get; init; }
    /// <summary>Not CLIP arguments (Hugging Face configs state them): MLP activations and LayerNorm epsilons of the towers.</summary>
    public string? TextHiddenAct { get; init; }
    public string? VisionHiddenAct { get; init; }
    public double? TextLayerNormEps { get; init; }
    public double? VisionLayerNormEps { get; init; }
    /// <summary>Not CLIP arguments: MLP widths when they are not 4 x the tower width (Hugging Face intermediate_size).</summary>
    public int? TextMlpDim { get; init; }
    public int? VisionMlpDim { get; init; }

    [JsonIgnore] public bool IsResNet => VisionLayers.Length != 1;

    /// <summary>CLIP derives the head count: width / 64 for ViT, width·32 / 64 for the ResNet's attention pool.</summary>
    [JsonIgnore] public int ResolvedVisionHeads => VisionHeads ?? (IsResNet ? VisionWidth * 32 / 64 : VisionWidth / 64);

    /// <summary>Width of the ResNet's last stage and of its attention pool (width·32).</summary>
    [JsonIgnore] public int ResNetEmbedDim => VisionWidth * 32;

    public void Validate()
    {
        if (IsResNet)
        {
            if (VisionLayers.Length != 4) throw new ArgumentException($"CLIP config: a ResNet image tower needs four stage depths in vision_layers, got [{string.Join(", ", VisionLayers)}]");
            if (ImageResolution % 32 != 0) throw new ArgumentException($"CLIP config: the ResNet tower downsamples by 32, so image_resolution {ImageResolution} must be a multiple of 32");
            if (ResNetEmbedDim % ResolvedVisionHeads != 0) throw new ArgumentException($"CLIP config: attention-pool width {ResNetEmbedDim} is not divisible by {ResolvedVisionHeads} heads");
        }
        else
        {
            if (VisionPatchSize is not int patch || patch <= 0) throw new ArgumentException("CLIP config: a ViT image tower needs vision_patch_size");
            if (ImageResolution % patch != 0) throw new ArgumentException($"CLIP config: image_resolution {ImageResolution} is not a multiple of vision_patch_size {patch}");
            if (ResolvedVisionHeads <= 0 || VisionWidth % ResolvedVisionHeads != 0)
                throw new ArgumentException($"CLIP config: vision_width {VisionWidth} does not split into {ResolvedVisionHeads} heads");
        }
        if (TransformerWidth % TransformerHeads != 0)
            throw new ArgumentException($"CLIP config: transformer_width {TransformerWidth} is not divisible by transformer_heads {TransformerHeads}");
    }

    public PreNormLayerOptions TextLayerOptions() => LayerOptions(TransformerWidth, TransformerHeads, TextMlpDim, TextHiddenAct, TextLayerNormEps);

    public PreNormLayerOptions VisionLayerOptions() => LayerOptions(VisionWidth, ResolvedVisionHeads, VisionMlpDim, VisionHiddenAct, VisionLayerNormEps);

    [JsonIgnore] public double ResolvedTextLayerNormEps => TextLayerNormEps ?? 1e-5;
    [JsonIgnore] public double ResolvedVisionLayerNormEps => VisionLayerNormEps ?? 1e-5;

    // CLIP's ResidualAttentionBlock: LayerNorm eps 1e-5, MLP 4x wide with QuickGELU, nn.MultiheadAttention with biases.
    static PreNormLayerOptions LayerOptions(int width, int heads, int? mlp, string? activation, double? eps) => new()
    {
        Hidden = width,
        Heads = heads,
        MlpDim = mlp ?? width * 4,
        Activation = activation is null ? Activation.QuickGelu : Activations.Parse(activation),
        LayerNormEps = eps ?? 1e-5,
        Names = PreNormLayerNames.Clip,
    };

    /// <summary>
    /// Reads a Hugging Face <c>CLIPConfig</c> (config.json with text_config / vision_config / projection_dim).
    /// Only the ViT tower exists there.
    /// </summary>
    public static ClipConfig FromHuggingFace(JsonElement json, string what = "config.json")
    {
        JsonElement Section(string name) => json.TryGetProperty(name, out var s) && s.ValueKind == JsonValueKind.Object
            ? s : throw new InvalidDataException($"{what}: a Hugging Face CLIP config needs \"{name}\"");
        static int Int(JsonElement e, string name, int fallback) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : fallback;
        static string? Activation(JsonElement e, string section, string what)
        {
            if (!e.TryGetProperty("hidden_act", out var act) || act.GetString() is not string name) return null;
            try { Activations.Parse(name); }
            catch (ArgumentException x) { throw new NotSupportedException($"{what}: {section}.hidden_act: {x.Message}"); }
            return name;
        }
        static double? Epsilon(JsonElement e) => e.TryGetProperty("layer_norm_eps", out var eps) && eps.ValueKind == JsonValueKind.Number ? eps.GetDouble() : null;
        var text = Section("text_config");
        var vision = Section("vision_config");
        int textWidth = Int(text, "hidden_size", 512), visionWidth = Int(vision, "hidden_size", 768);
        int textMlp = Int(text, "intermediate_size", 4 * textWidth), visionMlp = Int(vision, "intermediate_size", 4 * visionWidth);
        return new ClipConfig
        {
            EmbedDim = Int(json, "projection_dim", 512),
            ImageResolution = Int(vision, "image_size", 224),
            VisionLayers = new[] { Int(vision, "num_hidden_layers", 12) },
            VisionWidth = visionWidth,
            VisionPatchSize = Int(vision, "patch_size", 32),
            VisionHeads = Int(vision, "num_attention_heads", visionWidth / 64),
            ContextLength = Int(text, "max_position_embeddings", 77),
            VocabSize = Int(text, "vocab_size", 49408),
            TransformerWidth = textWidth,
            TransformerHeads = Int(text, "num_attention_heads", 8),
            TransformerLayers = Int(text, "num_hidden_layers", 12),
            TextHiddenAct = Activation(text, "text_config", what),
            VisionHiddenAct = Activation(vision, "vision_config", what),
            TextLayerNormEps = Epsilon(text),
            VisionLayerNormEps = Epsilon(vision),
            TextMlpDim = textMlp == 4 * textWidth ? null : textMlp,
            VisionMlpDim = visionMlp == 4 * visionWidth ? null : visionMlp,
        };
    }

    /// <summary>Reads either layout: the CLIP constructor arguments or a Hugging Face CLIPConfig.</summary>
    public static ClipConfig Parse(JsonElement json, string what = "config")
    {
        var config = json.TryGetProperty("text_config", out _) ? FromHuggingFace(json, what) : Common.ConfigJson.Parse<ClipConfig>(json, what);
        config.Validate();
        return config;
    }

    /// <summary>Accepts 12 or [3, 4, 6, 3]; writes one number for a ViT and a list for a ResNet.</summary>
    sealed class VisionLayersConverter : JsonConverter<int[]>
    {
        public override int[] Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType == JsonTokenType.Number) return new[] { reader.GetInt32() };
            if (reader.TokenType != JsonTokenType.StartArray) throw new JsonException("vision_layers must be a number or a list of four numbers");
            var values = new List<int>();
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                if (reader.TokenType != JsonTokenType.Number) throw new JsonException("vision_layers must hold numbers");
                values.Add(reader.GetInt32());
            }
            if (values.Count == 1) throw new JsonException("vision_layers as a list means a ResNet and needs four stage depths");
            return values.ToArray();
        }

        public override void Write(Utf8JsonWriter writer, int[] value, JsonSerializerOptions options)
        {
            if (value.Length == 1) { writer.WriteNumberValue(value[0]); return; }
            writer.WriteStartArray();
            foreach (var v in value) writer.WriteNumberValue(v);
            writer.WriteEndArray();
        }
    }
}
