using ModelZoo.Models.Catalog;
using ModelZoo.Weights;

namespace ModelZoo.Models.Bert;

/// <summary>Plain BERT text encoders (the text backbone several multimodal families start from).</summary>
public sealed class BertFamily : ModelFamily
{
    public override string Name => "bert";

    /// <summary>Hugging Face BertModel / BertFor* checkpoints: drop the "bert." prefix, the pretraining heads and position_ids buffers.</summary>
    public static KeyMap KeyMap { get; } = KeyMap.Identity
        .StripPrefix("module.")
        .Ignore("cls.{rest}")
        .Ignore("{prefix}position_ids")
        .StripPrefix("bert.")
        .LegacyLayerNormNames();

    public override IEnumerable<ModelPreset> Presets
    {
        get
        {
            yield return Preset("bert-tiny", "BERT tiny (L=2, H=128, A=2; google/bert_uncased_L-2_H-128_A-2): the small text encoder for tests and demos",
                new BertConfig { HiddenSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 512 },
                "google-research/bert release uncased_L-2_H-128_A-2 (Hugging Face google/bert_uncased_L-2_H-128_A-2)");
            yield return Preset("bert-base-uncased", "BERT base uncased (L=12, H=768, A=12)", new BertConfig(),
                "Hugging Face bert-base-uncased");
        }
    }

    static ModelPreset Preset(string name, string description, BertConfig config, string source) => new()
    {
        Name = name,
        Family = "bert",
        Description = description,
        Config = config,
        Build = () => new BertModel(config),
        KeyMapFor = _ => KeyMap,
        // `modelzoo convert --layout huggingface` writes the Hugging Face BertModel names (bert.*).
        Layouts = new Dictionary<string, KeyMap> { ["huggingface"] = KeyMap.Identity.StripPrefix("bert.") },
        CheckpointFormats = new[] { "Hugging Face BertModel / BertForPreTraining (safetensors or pytorch_model.bin)", "safetensors in this library's layout" },
        Tokenizer = "bert-wordpiece (uncased)",
        WeightsSource = source,
    };
}
