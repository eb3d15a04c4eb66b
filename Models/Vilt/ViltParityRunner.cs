using ModelZoo.Models.Parity;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Vilt;

/// <summary>
/// Fixture family "hf-vilt": Hugging Face ViltForQuestionAnswering (its config.json and key layout) loaded through
/// the ViLT key map. Outputs: hidden_states.0 (embeddings), hidden_states.i (block i, before the final norm),
/// last_hidden_state, pooler_output, vqa_logits.
/// </summary>
public sealed class ViltParityRunner : IParityRunner
{
    public IReadOnlyList<string> Families { get; } = new[] { "hf-vilt" };

    public IReadOnlyDictionary<string, Tensor> Run(Fixture fixture, string checkpointPath)
    {
        var config = ViltConfig.FromHuggingFace(fixture.Config, $"{fixture.Directory}/fixture.json config");
        var heads = new ViltHeads { VqaAnswers = config.NumLabels ?? throw new InvalidDataException($"{fixture.Directory}: the config has neither num_labels nor id2label") };
        using var model = new ViltModel(config, heads);
        using (var reader = Checkpoint.Open(checkpointPath))
            ModelLoader.Load(model, reader, ViltFamily.KeyMapFor(reader, heads));
        model.eval();

        var inputs = new ViltInputs(fixture.Input("input_ids"), fixture.OptionalInput("attention_mask"), fixture.Input("pixel_values"),
            fixture.OptionalInput("pixel_mask"), fixture.OptionalInput("token_type_ids"));
        var output = model.forward(inputs);
        var results = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["last_hidden_state"] = output.SequenceOutput,
            ["pooler_output"] = output.ClsFeats,
            ["vqa_logits"] = model.VqaLogits(inputs),
            ["hidden_states.0"] = output.EmbeddingOutput,
        };
        for (int i = 0; i < output.HiddenStates.Count; i++) results[$"hidden_states.{i + 1}"] = output.HiddenStates[i];
        return results;
    }
}
