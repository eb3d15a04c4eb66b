using ModelZoo.Models.Parity;
using ModelZoo.Weights;
using static TorchSharp.torch;

namespace ModelZoo.Models.Clip;

/// <summary>Fixtures "clip-vit" and "clip-rn": openai/CLIP's CLIP class, its constructor arguments as the config.</summary>
public sealed class ClipParityRunner : IParityRunner
{
    public IReadOnlyList<string> Families { get; } = new[] { "clip-vit", "clip-rn" };

    public IReadOnlyDictionary<string, Tensor> Run(Fixture fixture, string checkpointPath)
    {
        var config = ClipConfig.Parse(fixture.Config, Path.Combine(fixture.Directory, "fixture.json"));
        using var model = new ClipModel(config);
        using (var reader = Checkpoint.Open(checkpointPath))
            ModelLoader.Load(model, reader, ClipKeyMaps.For(reader));
        model.eval();

        var image = fixture.Input("image");
        var text = fixture.Input("text");
        var output = model.forward(image, text);
        var results = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["logits_per_image"] = output.LogitsPerImage,
            ["logits_per_text"] = output.LogitsPerText,
            ["image_features"] = output.Image.Features,
            ["text_features"] = output.Text.Features,
        };
        for (int i = 0; i < output.Text.HiddenStates.Count; i++) results[$"text_hidden_states.{i}"] = output.Text.HiddenStates[i];
        for (int i = 0; i < output.Image.HiddenStates.Count; i++) results[$"visual_hidden_states.{i}"] = output.Image.HiddenStates[i];
        for (int i = 0; i < output.Image.Stages.Count; i++) results[$"visual_layer{i + 1}"] = output.Image.Stages[i];
        return results;
    }
}
