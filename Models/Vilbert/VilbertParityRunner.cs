using ModelZoo.Models.Common;
using ModelZoo.Models.Parity;
using ModelZoo.Weights;
using static TorchSharp.torch;

namespace ModelZoo.Models.Vilbert;

/// <summary>Fixture family "vilbert": VILBertForVLTasks built from the fixture's BertConfig.to_dict(), loaded strictly.</summary>
public sealed class VilbertParityRunner : IParityRunner
{
    public IReadOnlyList<string> Families { get; } = new[] { "vilbert" };

    public IReadOnlyDictionary<string, Tensor> Run(Fixture fixture, string checkpointPath)
    {
        var config = ConfigJson.Parse<VilbertConfig>(fixture.Config, $"{fixture.Directory}/fixture.json config").Validated($"{fixture.Directory}/fixture.json");
        int numLabels = fixture.Json.TryGetProperty("constructor", out var c) && c.TryGetProperty("num_labels", out var n) ? n.GetInt32() : VilbertConfig.VqaAnswers;
        using var model = new VilbertForVLTasks(config, numLabels);
        ModelLoader.Load(model, checkpointPath, VilbertFamily.TaskKeyMap);
        model.eval();

        var o = model.forward(fixture.Input("input_txt"), fixture.Input("input_imgs"), fixture.Input("image_loc"),
            fixture.OptionalInput("token_type_ids"), fixture.OptionalInput("attention_mask"), fixture.OptionalInput("image_attention_mask"),
            fixture.OptionalInput("task_ids"));
        var b = o.Backbone;
        var outputs = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["sequence_output_t"] = b.SequenceOutputText,
            ["sequence_output_v"] = b.SequenceOutputVisual,
            ["pooled_output_t"] = b.PooledOutputText,
            ["pooled_output_v"] = b.PooledOutputVisual,
            ["embedding_output_t"] = b.EmbeddingOutputText,
            ["embedding_output_v"] = b.EmbeddingOutputVisual,
            ["vil_prediction"] = o.VilPrediction,
            ["vil_prediction_gqa"] = o.VilPredictionGqa,
            ["vil_logit"] = o.VilLogit,
            // The reference returns the alignment head here when the batch is odd.
            ["vil_binary_prediction"] = o.VilBinaryPrediction ?? o.AlignmentPrediction,
            ["vil_tri_prediction"] = o.VilTriPrediction,
            ["vision_prediction"] = o.VisionPrediction,
            ["vision_logit"] = o.VisionLogit,
            ["linguisic_prediction"] = o.LinguisticPrediction,
            ["linguisic_logit"] = o.LinguisticLogit,
        };
        var e = b.Encoder;
        for (int i = 0; i < e.TextLayers.Length; i++) if (e.TextLayers[i] is Tensor t) outputs[$"t_layer.{i}"] = t;
        for (int i = 0; i < e.VisualLayers.Length; i++) if (e.VisualLayers[i] is Tensor v) outputs[$"v_layer.{i}"] = v;
        for (int i = 0; i < e.CoLayers.Length; i++)
            if (e.CoLayers[i] is { } pair) { outputs[$"c_layer.{i}.t"] = pair.Text; outputs[$"c_layer.{i}.v"] = pair.Visual; }
        return outputs;
    }
}
