using ModelZoo.Models.Common;
using ModelZoo.Models.Parity;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.VisualBert;

/// <summary>
/// Fixture family "hf-visualbert": Hugging Face VisualBertForQuestionAnswering loaded through the VisualBERT key
/// map. Outputs: hidden_states.0 (embeddings), hidden_states.i (layer i), last_hidden_state, pooler_output, vqa_logits.
/// </summary>
public sealed class VisualBertParityRunner : IParityRunner
{
    public IReadOnlyList<string> Families { get; } = new[] { "hf-visualbert" };

    public IReadOnlyDictionary<string, Tensor> Run(Fixture fixture, string checkpointPath)
    {
        var config = ConfigJson.Parse<VisualBertConfig>(fixture.Config, $"{fixture.Directory}/fixture.json config");
        using var model = new VisualBertForQuestionAnswering(config);
        using (var reader = Checkpoint.Open(checkpointPath))
            ModelLoader.Load(model, reader, VisualBertFamily.KeyMapFor(reader, preTraining: false));
        model.eval();

        var inputs = new VisualBertInputs(fixture.Input("input_ids"), fixture.OptionalInput("attention_mask"), fixture.Input("visual_embeds"),
            fixture.OptionalInput("visual_attention_mask"), fixture.OptionalInput("token_type_ids"), fixture.OptionalInput("visual_token_type_ids"));
        var output = model.VisualBert.forward(inputs);
        var results = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["last_hidden_state"] = output.SequenceOutput,
            ["pooler_output"] = output.PooledOutput!,
            ["vqa_logits"] = model.forward(inputs),
            ["hidden_states.0"] = output.EmbeddingOutput,
        };
        for (int i = 0; i < output.HiddenStates.Count; i++) results[$"hidden_states.{i + 1}"] = output.HiddenStates[i];
        return results;
    }
}
