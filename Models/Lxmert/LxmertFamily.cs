using ModelZoo.Models.Catalog;
using ModelZoo.Weights;

namespace ModelZoo.Models.Lxmert;

/// <summary>LXMERT (Tan and Bansal 2019; airsplay/lxmert, Hugging Face unc-nlp/lxmert-*): language, relationship and cross-modality encoders.</summary>
public sealed class LxmertFamily : ModelFamily
{
    public override string Name => "lxmert";

    /// <summary>
    /// Brings every known layout to the Hugging Face names (lxmert.*, answer_head.*, cls.*, obj_predict_head.*):
    /// the original pretrained model_LXRT.pth (bert.*, cls.*, obj_predict_head.*, answer_head.*, usually "module."),
    /// the original VQA/GQA task files (lxrt_encoder.model.bert.*, possibly lxrt_encoder.model.module.bert.*, and
    /// logit_fc.*), Hugging Face LxmertForPreTraining / LxmertForQuestionAnswering (lxmert.*) and bare LxmertModel
    /// files (embeddings.*, encoder.*, pooler.*).
    /// </summary>
    public static KeyMap Normalize { get; } = KeyMap.Identity
        .StripPrefix("module.")
        .Rename("lxrt_encoder.model.module.{rest}", "lxrt_encoder.model.{rest}")
        .Rename("lxrt_encoder.model.bert.{rest}", "lxmert.{rest}")
        .Rename("logit_fc.{rest}", "answer_head.logit_fc.{rest}")
        .Rename("bert.{rest}", "lxmert.{rest}")
        .Rename("embeddings.{rest}", "lxmert.embeddings.{rest}")
        .Rename("encoder.{rest}", "lxmert.encoder.{rest}")
        .Rename("pooler.{rest}", "lxmert.pooler.{rest}")
        .Ignore("{prefix}position_ids")
        .LegacyLayerNormNames();

    /// <summary>Into <see cref="LxmertModel"/>: the heads are dropped and "lxmert." removed.</summary>
    public static KeyMap BackboneKeyMap { get; } = Normalize
        .Then(KeyMap.Identity.Ignore("cls.{rest}").Ignore("obj_predict_head.{rest}").Ignore("answer_head.{rest}").StripPrefix("lxmert."));

    /// <summary>Into <see cref="LxmertForQuestionAnswering"/>: pretraining heads dropped; the answer head must fit the answer count.</summary>
    public static KeyMap QuestionAnsweringKeyMap { get; } = Normalize
        .Then(KeyMap.Identity.Ignore("cls.{rest}").Ignore("obj_predict_head.{rest}"));

    /// <summary>Into <see cref="LxmertForPreTraining"/>: everything; the tied second copy of the word embeddings is ignored.</summary>
    public static KeyMap PreTrainingKeyMap { get; } = Normalize
        .Then(KeyMap.Identity.Ignore("cls.predictions.decoder.weight"));

    static readonly string[] Formats =
    {
        "original airsplay/lxmert files: model_LXRT.pth (bert.*, cls.*, obj_predict_head.*, answer_head.*; \"module.\" stripped) and VQA/GQA task files (lxrt_encoder.model.bert.*, logit_fc.*)",
        "Hugging Face unc-nlp/lxmert-* (lxmert.*, LxmertModel without prefix; safetensors or pytorch_model.bin)",
        "safetensors in this library's layout (the Hugging Face names)",
    };

    /// <summary>LXMERT-base: BERT-base widths, 9 language, 5 relationship and 5 cross-modality layers, 2048-d features, 4-d boxes.</summary>
    public static LxmertConfig BaseConfig { get; } = new();

    /// <summary>
    /// A small random-weight configuration for tests and demos: 2048-d regions and 4-d boxes like the real model, the
    /// bundled bert-base-uncased vocabulary, hidden 128 with 2 heads, l=2, x=1, r=1.
    /// </summary>
    public static LxmertConfig TinyConfig { get; } = new() { HiddenSize = 128, NumAttentionHeads = 2, IntermediateSize = 512, LLayers = 2, XLayers = 1, RLayers = 1 };

    /// <summary>Answers of the VQA v2 head (airsplay/lxmert data/vqa/trainval_label2ans.json).</summary>
    public const int VqaAnswers = 3129;

    /// <summary>
    /// Answers of the GQA head: airsplay/lxmert data/gqa/trainval_label2ans.json, num_qa_labels of the Hugging Face
    /// LXMERT GQA configs (unc-nlp/lxmert-gqa-uncased, eltoto1219/lxmert-gqa-untuned).
    /// </summary>
    public const int GqaAnswers = 1842;

    public override IEnumerable<ModelPreset> Presets
    {
        get
        {
            var config = BaseConfig;
            yield return new ModelPreset
            {
                Name = "lxmert-base",
                Family = Name,
                Description = "LXMERT backbone (l=9 language, r=5 relationship, x=5 cross-modality layers; hidden 768, 12 heads), no heads",
                Config = config,
                Build = () => new LxmertModel(config),
                KeyMapFor = _ => BackboneKeyMap,
                CheckpointFormats = Formats,
                Tokenizer = "bert-wordpiece (bert-base-uncased)",
                WeightsSource = "airsplay/lxmert model_LXRT.pth (pretrained, README) or Hugging Face unc-nlp/lxmert-base-uncased",
            };
            var vqa = config with { NumQaLabels = VqaAnswers };
            yield return new ModelPreset
            {
                Name = "lxmert-vqa",
                Family = Name,
                Description = "LXMERT fine-tuned for VQA v2: the backbone and an answer head (Linear, GELU, LayerNorm, Linear) over 3129 answers",
                Config = vqa,
                Build = () => new LxmertForQuestionAnswering(vqa, vqa.NumQaLabels),
                KeyMapFor = _ => QuestionAnsweringKeyMap,
                CheckpointFormats = Formats,
                Tokenizer = "bert-wordpiece (bert-base-uncased)",
                WeightsSource = "Hugging Face unc-nlp/lxmert-vqa-uncased, or a VQAModel checkpoint of airsplay/lxmert src/tasks/vqa.py",
                Heads = new[] { "answer_head (VQA v2, 3129 answers)" },
            };
            var gqa = config with { NumQaLabels = GqaAnswers };
            yield return new ModelPreset
            {
                Name = "lxmert-gqa",
                Family = Name,
                Description = $"LXMERT fine-tuned for GQA: the backbone and an answer head (Linear, GELU, LayerNorm, Linear) over {GqaAnswers} answers",
                Config = gqa,
                Build = () => new LxmertForQuestionAnswering(gqa, gqa.NumQaLabels),
                KeyMapFor = _ => QuestionAnsweringKeyMap,
                CheckpointFormats = Formats,
                Tokenizer = "bert-wordpiece (bert-base-uncased)",
                WeightsSource = "Hugging Face unc-nlp/lxmert-gqa-uncased, or a GQAModel checkpoint of airsplay/lxmert src/tasks/gqa.py (answers: data/gqa/trainval_label2ans.json)",
                Heads = new[] { $"answer_head (GQA, {GqaAnswers} answers; runs with modelzoo vqa --answers)" },
            };
            var tiny = TinyConfig with { NumQaLabels = VqaAnswers };
            yield return new ModelPreset
            {
                Name = "lxmert-tiny-vqa",
                Family = Name,
                Description = "A small LXMERT with the VQA head (l=2, x=1, r=1, hidden 128, 2 heads; 2048-d regions, 3129 answers), random weights for tests and demos",
                Config = tiny,
                Build = () => new LxmertForQuestionAnswering(tiny, tiny.NumQaLabels),
                KeyMapFor = _ => QuestionAnsweringKeyMap,
                CheckpointFormats = Formats,
                Tokenizer = "bert-wordpiece (bert-base-uncased, bundled)",
                WeightsSource = "none (random initialisation)",
                Heads = new[] { "answer_head (VQA v2, 3129 answers)" },
            };
            yield return new ModelPreset
            {
                Name = "lxmert-base-pretraining",
                Family = Name,
                Description = "LXMERT with its pretraining heads: masked tokens (tied decoder), image-text matching, object labels (1600), " +
                              "attributes (400), feature regression (2048), pretraining QA (9500 answers)",
                Config = config,
                Build = () => new LxmertForPreTraining(config),
                KeyMapFor = _ => PreTrainingKeyMap,
                CheckpointFormats = Formats,
                Tokenizer = "bert-wordpiece (bert-base-uncased)",
                WeightsSource = "airsplay/lxmert model_LXRT.pth or Hugging Face unc-nlp/lxmert-base-uncased",
                Heads = new[] { "cls.predictions (masked tokens, tied)", "cls.seq_relationship (matching)", "obj_predict_head (obj 1600, attr 400, feat 2048)", "answer_head (9500)" },
            };
        }
    }
}
