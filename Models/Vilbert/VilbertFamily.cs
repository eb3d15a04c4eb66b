using ModelZoo.Models.Catalog;
using ModelZoo.Weights;

namespace ModelZoo.Models.Vilbert;

/// <summary>ViLBERT (Lu et al. 2019; facebookresearch/vilbert-multi-task): two streams joined by co-attention layers.</summary>
public sealed class VilbertFamily : ModelFamily
{
    public override string Name => "vilbert";

    /// <summary>
    /// Original checkpoints of VILBertForVLTasks / BertForMultiModalPreTraining (often saved with "module."), and this
    /// library's safetensors, into <see cref="VilbertForVLTasks"/>. cls.predictions.decoder.weight is the word
    /// embedding table stored a second time (tied); the model reads the embedding itself, so that copy is ignored.
    /// </summary>
    public static KeyMap TaskKeyMap { get; } = KeyMap.Identity
        .StripPrefix("module.")
        .LegacyLayerNormNames()
        .Ignore("cls.predictions.decoder.weight");

    /// <summary>The same checkpoints into the backbone alone (<see cref="VilbertModel"/>): heads dropped, "bert." removed.</summary>
    public static KeyMap BackboneKeyMap { get; } = KeyMap.Identity
        .StripPrefix("module.")
        .LegacyLayerNormNames()
        .Ignore("cls.{rest}")
        .Ignore("vil_prediction.{rest}")
        .Ignore("vil_prediction_gqa.{rest}")
        .Ignore("vil_binary_prediction.{rest}")
        .Ignore("vil_logit.{rest}")
        .Ignore("vil_tri_prediction.{rest}")
        .Ignore("vision_logit.{rest}")
        .Ignore("linguisic_logit.{rest}")
        .StripPrefix("bert.");

    /// <summary>
    /// Into a backbone without task tokens (vilbert-base): as <see cref="BackboneKeyMap"/>, and the task embeddings
    /// of a multi-task file (bert.embeddings.task_embeddings) are dropped, so multi_task_model.bin loads too.
    /// </summary>
    public static KeyMap BackboneWithoutTaskTokensKeyMap { get; } = KeyMap.Identity
        .StripPrefix("module.")
        .Ignore("bert.embeddings.task_embeddings.{rest}")
        .Then(BackboneKeyMap);

    /// <summary>The backbone key map that fits <paramref name="config"/>: task embeddings loaded only where the model has them.</summary>
    public static KeyMap BackboneKeyMapFor(VilbertConfig config) => config.TaskSpecificTokens ? BackboneKeyMap : BackboneWithoutTaskTokensKeyMap;

    static readonly string[] Formats =
    {
        "original vilbert-multi-task pickles (pretrained_model.bin, multi_task_model.bin; bert.encoder.c_layer.N.biattention.query1 ..., with or without \"module.\")",
        "safetensors with the same keys (this library's layout)",
    };

    /// <summary>
    /// A small random-weight multi-task configuration for tests and demos: 2048-d regions like the real model, the
    /// bundled bert-base-uncased vocabulary, task tokens; text 2 layers of 128, visual 2 layers of 128, co-attention
    /// before visual layers 0, 1 and text layers 1, 2 (bi_hidden 128), 2 heads everywhere.
    /// </summary>
    public static VilbertConfig TinyMultitaskConfig { get; } = VilbertConfig.Base6Layer6Connect with
    {
        HiddenSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 512,
        VHiddenSize = 128, VNumHiddenLayers = 2, VNumAttentionHeads = 2, VIntermediateSize = 256,
        BiHiddenSize = 128, BiNumAttentionHeads = 2, BiIntermediateSize = 256,
        VBiattentionId = new[] { 0, 1 }, TBiattentionId = new[] { 1, 2 }, TaskSpecificTokens = true,
    };

    public override IEnumerable<ModelPreset> Presets
    {
        get
        {
            var config = VilbertConfig.Base6Layer6Connect;
            yield return new ModelPreset
            {
                Name = "vilbert-base",
                Family = Name,
                Description = "ViLBERT two-stream backbone (config/bert_base_6layer_6conect.json: text BERT-base 12 layers, visual 6 layers of 1024 " +
                              "with 8 heads, 6 co-attention layers of 1024 with 8 heads before visual layers 0-5 and text layers 6-11), no heads",
                Config = config,
                Build = () => new VilbertModel(config),
                KeyMapFor = _ => BackboneKeyMapFor(config),
                CheckpointFormats = Formats,
                Tokenizer = "bert-wordpiece (bert-base-uncased)",
                WeightsSource = "vilbert-multi-task pretrained_model.bin (Conceptual Captions pretraining; README of facebookresearch/vilbert-multi-task)",
            };
            var multitask = config with { TaskSpecificTokens = true };
            yield return new ModelPreset
            {
                Name = "vilbert-multitask",
                Family = Name,
                Description = "ViLBERT 12-in-1 multi-task model (VILBertForVLTasks over bert_base_6layer_6conect with task tokens): VQA, GQA, " +
                              "retrieval, referring expressions, NLVR2, visual entailment heads and the pretraining heads",
                Config = multitask,
                Build = () => new VilbertForVLTasks(multitask),
                KeyMapFor = _ => TaskKeyMap,
                CheckpointFormats = Formats,
                Tokenizer = "bert-wordpiece (bert-base-uncased)",
                WeightsSource = "vilbert-multi-task multi_task_model.bin (README of facebookresearch/vilbert-multi-task)",
                Heads = new[]
                {
                    "vil_prediction (VQA, 3129)", "vil_prediction_gqa (GQA, 1533)", "vil_logit (retrieval)", "vil_binary_prediction (NLVR2 pairs)",
                    "vil_tri_prediction (visual entailment, 3)", "vision_logit (referring expressions)", "linguisic_logit",
                    "cls.predictions (masked tokens, tied)", "cls.imagePredictions (region classes)", "cls.bi_seq_relationship (alignment)",
                },
            };
            var tiny = TinyMultitaskConfig;
            yield return new ModelPreset
            {
                Name = "vilbert-tiny-multitask",
                Family = Name,
                Description = "A small VILBertForVLTasks (text and visual 2 layers of 128, 2 co-attention layers of 128, 2 heads; 2048-d regions, task tokens) " +
                              "with every head, random weights for tests and demos",
                Config = tiny,
                Build = () => new VilbertForVLTasks(tiny),
                KeyMapFor = _ => TaskKeyMap,
                CheckpointFormats = Formats,
                Tokenizer = "bert-wordpiece (bert-base-uncased, bundled)",
                WeightsSource = "none (random initialisation)",
                Heads = new[] { "vil_prediction (VQA, 3129)", "vil_prediction_gqa (GQA, 1533)", "vil_logit", "vil_binary_prediction", "vil_tri_prediction", "vision_logit", "linguisic_logit", "cls" },
            };
        }
    }
}
