using ModelZoo.Models.Catalog;
using ModelZoo.Weights;

namespace ModelZoo.Models.VisualBert;

/// <summary>VisualBERT (uclanlp/visualbert; Hugging Face uclanlp/visualbert-*): pre-training, VQA, NLVR2 and VCR models.</summary>
public sealed class VisualBertFamily : ModelFamily
{
    public override string Name => "visualbert";

    /// <summary>
    /// Hugging Face files (visual_bert.*, cls.*) and the original uclanlp .th files (bert.bert.*, bert.cls.*,
    /// bert.classifier.*, *_visual tables, embeddings.projection; detector.* dropped), "module." stripped,
    /// position_ids buffers dropped. For the pre-training model the decoder matrix is the word embeddings (tied), so
    /// cls.predictions.decoder.weight is dropped and decoder.bias is read as predictions.bias when that is absent.
    /// </summary>
    public static KeyMap KeyMapFor(ICheckpointReader reader, bool preTraining)
    {
        var map = KeyMap.Identity
            .StripPrefix("module.")
            .Rename("bert.bert.{rest}", "visual_bert.{rest}")
            .Rename("bert.cls.{rest}", "cls.{rest}")
            .Rename("bert.classifier.{rest}", "cls.{rest}")
            .Rename("visual_bert.embeddings.token_type_embeddings_visual.{param}", "visual_bert.embeddings.visual_token_type_embeddings.{param}")
            .Rename("visual_bert.embeddings.position_embeddings_visual.{param}", "visual_bert.embeddings.visual_position_embeddings.{param}")
            .Rename("visual_bert.embeddings.projection.{param}", "visual_bert.embeddings.visual_projection.{param}")
            .IgnoreRegex(@"^detector\.")
            .Ignore("{prefix}position_ids")
            .LegacyLayerNormNames();
        if (!preTraining) return map;
        var names = reader.Entries.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        bool hasBias = names.Any(n => n.EndsWith("cls.predictions.bias", StringComparison.Ordinal));
        map = map.Ignore("cls.predictions.decoder.weight");
        return hasBias ? map.Ignore("cls.predictions.decoder.bias") : map.Rename("cls.predictions.decoder.bias", "cls.predictions.bias");
    }

    /// <summary>bert-base-uncased with region features of the given width (the published checkpoints differ only there).</summary>
    public static VisualBertConfig Base(int visualEmbeddingDim) => new() { VisualEmbeddingDim = visualEmbeddingDim };

    /// <summary>A small random-weight VisualBERT (real vocabulary, 2048-d regions, VQA head) for tests and demos.</summary>
    public static VisualBertConfig Tiny { get; } = new()
    {
        HiddenSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 512, VisualEmbeddingDim = 2048, NumLabels = 3129,
    };

    public const int VqaAnswers = 3129;

    public override IEnumerable<ModelPreset> Presets
    {
        get
        {
            foreach (var (task, dim, what) in new[] { ("vqa", 2048, "VQA (COCO regions)"), ("nlvr2", 1024, "NLVR2"), ("vcr", 512, "VCR") })
            {
                var config = Base(dim);
                yield return Preset($"visualbert-{task}-coco-pre", $"VisualBERT pre-trained on COCO captions for {what}: MLM + sentence-image heads, {dim}-d regions",
                    config, () => new VisualBertForPreTraining(config), true, new[] { "cls.predictions", "cls.seq_relationship" }, $"uclanlp/visualbert-{task}-coco-pre");
                yield return Preset($"visualbert-{task}-pre", $"VisualBERT pre-trained on COCO then {what} text: MLM + sentence-image heads, {dim}-d regions",
                    config, () => new VisualBertForPreTraining(config), true, new[] { "cls.predictions", "cls.seq_relationship" }, $"uclanlp/visualbert-{task}-pre");
            }
            var vqa = Base(2048) with { NumLabels = VqaAnswers };
            yield return Preset("visualbert-vqa", $"VisualBERT fine-tuned on VQA v2 ({VqaAnswers} answers, 2048-d regions)", vqa,
                () => new VisualBertForQuestionAnswering(vqa), false, new[] { "cls (VQA answers)" }, "uclanlp/visualbert-vqa");
            var nlvr2 = Base(1024) with { NumLabels = 2 };
            yield return Preset("visualbert-nlvr2", "VisualBERT fine-tuned on NLVR2 (2-way over an image pair, 1024-d regions)", nlvr2,
                () => new VisualBertForVisualReasoning(nlvr2), false, new[] { "cls (NLVR2 true/false)" }, "uclanlp/visualbert-nlvr2");
            var vcr = Base(512);
            yield return Preset("visualbert-vcr", "VisualBERT fine-tuned on VCR (multiple choice, 512-d regions)", vcr,
                () => new VisualBertForMultipleChoice(vcr), false, new[] { "cls (answer choice score)" }, "uclanlp/visualbert-vcr");
            yield return Preset("visualbert-tiny", "A tiny random-weight VisualBERT with the VQA head (L=2, H=128, A=2; 2048-d regions, 3129 answers) for tests and demos",
                Tiny, () => new VisualBertForQuestionAnswering(Tiny), false, new[] { "cls (VQA answers)" }, "none (random initialisation)");
        }
    }

    static ModelPreset Preset(string name, string description, VisualBertConfig config, Func<TorchSharp.torch.nn.Module> build, bool preTraining,
                              string[] heads, string source) => new()
    {
        Name = name,
        Family = "visualbert",
        Description = description,
        Config = config,
        Build = build,
        KeyMapFor = reader => KeyMapFor(reader, preTraining),
        Heads = heads,
        CheckpointFormats = new[]
        {
            "Hugging Face VisualBertFor* (visual_bert.embeddings.visual_projection, visual_bert.encoder.layer.N.*, cls.*)",
            "original uclanlp/visualbert .th (bert.bert.*, bert.cls.* / bert.classifier.*, token_type_embeddings_visual, position_embeddings_visual, projection)",
            "safetensors in this library's layout (= the Hugging Face keys)",
        },
        Tokenizer = "bert-wordpiece (bert-base-uncased)",
        WeightsSource = source,
    };
}
