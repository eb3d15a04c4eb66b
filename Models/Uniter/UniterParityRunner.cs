using ModelZoo.Models.Common;
using ModelZoo.Models.Parity;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Uniter;

/// <summary>
/// Fixture family "uniter": UniterForVisualQuestionAnswering built from the fixture's UniterConfig and constructor
/// (img_dim, num_answer), loaded strictly through the normal loader and the task key map.
/// </summary>
public sealed class UniterParityRunner : IParityRunner
{
    public IReadOnlyList<string> Families { get; } = new[] { "uniter" };

    public IReadOnlyDictionary<string, Tensor> Run(Fixture fixture, string checkpointPath)
    {
        var config = ConfigJson.Parse<UniterConfig>(fixture.Config, $"{fixture.Directory}/fixture.json config") with
        {
            ImgDim = fixture.ConfigInt("img_dim", "constructor"),
            NumAnswer = fixture.ConfigInt("num_answer", "constructor"),
        };
        using var model = new UniterForVisualQuestionAnswering(config);
        using (var reader = Checkpoint.Open(checkpointPath))
            ModelLoader.Load(model, reader, UniterFamily.TaskKeyMap("vqa_output"));
        model.eval();

        var output = model.Uniter.forward(fixture.Input("input_ids"), fixture.Input("position_ids"), fixture.Input("img_feat"),
            fixture.Input("img_pos_feat"), fixture.Input("attention_mask"), fixture.OptionalInput("gather_index"));
        var results = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["embedding_output"] = output.EmbeddingOutput,
            ["sequence_output"] = output.SequenceOutput,
            ["pooled_output"] = output.PooledOutput!,
            ["vqa_logits"] = model.AnswerLogits(output.PooledOutput!),
        };
        for (int i = 0; i < output.HiddenStates.Count; i++) results[$"encoded_layers.{i}"] = output.HiddenStates[i];
        return results;
    }
}
