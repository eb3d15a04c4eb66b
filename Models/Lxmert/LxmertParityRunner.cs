using ModelZoo.Models.Common;
using ModelZoo.Models.Parity;
using ModelZoo.Weights;
using static TorchSharp.torch;

namespace ModelZoo.Models.Lxmert;

/// <summary>
/// Fixture family "lxmert": the original VQAModel's weights (lxrt_encoder.model.bert.*, logit_fc.*) loaded strictly
/// into <see cref="LxmertForQuestionAnswering"/> through the family's key map; run with and without the visual mask.
/// Fixture family "hf-lxmert": Hugging Face LxmertForQuestionAnswering (lxmert.*, answer_head.*) and its hidden states.
/// </summary>
public sealed class LxmertParityRunner : IParityRunner
{
    public IReadOnlyList<string> Families { get; } = new[] { "lxmert", "hf-lxmert" };

    public IReadOnlyDictionary<string, Tensor> Run(Fixture fixture, string checkpointPath) =>
        fixture.Family == "hf-lxmert" ? RunHuggingFace(fixture, checkpointPath) : RunOriginal(fixture, checkpointPath);

    static IReadOnlyDictionary<string, Tensor> RunHuggingFace(Fixture fixture, string checkpointPath)
    {
        string source = $"{fixture.Directory}/fixture.json config";
        var config = ConfigJson.Parse<LxmertConfig>(fixture.Config, source).Validated(source);
        using var model = new LxmertForQuestionAnswering(config, config.NumQaLabels);
        ModelLoader.Load(model, checkpointPath, LxmertFamily.QuestionAnsweringKeyMap);
        model.eval();
        var (o, logits) = model.forward(fixture.Input("input_ids"), fixture.Input("visual_feats"), fixture.Input("visual_pos"),
            fixture.OptionalInput("attention_mask"), fixture.OptionalInput("visual_attention_mask"), fixture.OptionalInput("token_type_ids"));
        var outputs = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["language_output"] = o.LanguageOutput,
            ["vision_output"] = o.VisionOutput,
            ["pooled_output"] = o.PooledOutput,
            ["vqa_logits"] = logits,
        };
        // transformers lists the language layers then the cross layers' language side; likewise relationship + vision side.
        var language = o.Encoder.LanguageLayers.Concat(o.Encoder.CrossLayers.Select(x => x.Lang)).ToList();
        var vision = o.Encoder.RelationLayers.Concat(o.Encoder.CrossLayers.Select(x => x.Visn)).ToList();
        for (int i = 0; i < language.Count; i++) outputs[$"language_hidden_states.{i}"] = language[i];
        for (int i = 0; i < vision.Count; i++) outputs[$"vision_hidden_states.{i}"] = vision[i];
        return outputs;
    }

    static IReadOnlyDictionary<string, Tensor> RunOriginal(Fixture fixture, string checkpointPath)
    {
        string source = $"{fixture.Directory}/fixture.json";
        var config = LxmertConfig.FromOriginal(fixture.Config, fixture.Json.TryGetProperty("visual_config", out var v) ? v : null, source);
        int answers = fixture.ConfigInt("num_answers", "constructor");
        using var model = new LxmertForQuestionAnswering(config, answers);
        ModelLoader.Load(model, checkpointPath, LxmertFamily.QuestionAnsweringKeyMap);
        model.eval();

        var ids = fixture.Input("input_ids");
        var types = fixture.OptionalInput("token_type_ids");
        var mask = fixture.OptionalInput("attention_mask");
        var feat = fixture.Input("feat");
        var pos = fixture.Input("pos");
        var (masked, logits) = model.forward(ids, feat, pos, mask, fixture.OptionalInput("visual_attention_mask"), types);
        var (unmasked, logitsNoMask) = model.forward(ids, feat, pos, mask, null, types);

        var outputs = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["lang_feats"] = masked.LanguageOutput,
            ["visn_feats"] = masked.VisionOutput,
            ["pooled_output"] = masked.PooledOutput,
            ["vqa_logits"] = logits,
            ["lang_feats_no_visual_mask"] = unmasked.LanguageOutput,
            ["visn_feats_no_visual_mask"] = unmasked.VisionOutput,
            ["pooled_output_no_visual_mask"] = unmasked.PooledOutput,
            ["vqa_logits_no_visual_mask"] = logitsNoMask,
            ["embedding_output"] = masked.EmbeddingOutput,
            ["visn_embedding_output"] = masked.Encoder.VisualEmbedding,
        };
        var e = masked.Encoder;
        for (int i = 0; i < e.LanguageLayers.Length; i++) outputs[$"l_layers.{i}"] = e.LanguageLayers[i];
        for (int i = 0; i < e.RelationLayers.Length; i++) outputs[$"r_layers.{i}"] = e.RelationLayers[i];
        for (int i = 0; i < e.CrossLayers.Length; i++)
        {
            outputs[$"x_layers.{i}.lang"] = e.CrossLayers[i].Lang;
            outputs[$"x_layers.{i}.visn"] = e.CrossLayers[i].Visn;
        }
        return outputs;
    }
}
