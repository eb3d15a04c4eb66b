using ModelZoo.Models.Parity;
using ModelZoo.Weights;
using static TorchSharp.torch;

namespace ModelZoo.Models.Clip;

/// <summary>
/// Fixtures "clip-vit" / "clip-rn" (openai/CLIP's CLIP class, its constructor arguments as the config) and "hf-clip"
/// (transformers' CLIPModel with its config.json and key names, loaded through the Hugging Face key map).
/// </summary>
public sealed class ClipParityRunner : IParityRunner
{
    public IReadOnlyList<string> Families { get; } = new[] { "clip-vit", "clip-rn", "hf-clip" };

    public IReadOnlyDictionary<string, Tensor> Run(Fixture fixture, string checkpointPath)
    {
        var config = ClipConfig.Parse(fixture.Config, Path.Combine(fixture.Directory, "fixture.json"));
        using var model = new ClipModel(config);
        using (var reader = Checkpoint.Open(checkpointPath))
            ModelLoader.Load(model, reader, ClipKeyMaps.For(reader));
        model.eval();

        bool huggingFace = fixture.Family == "hf-clip";
        var image = fixture.Input(huggingFace ? "pixel_values" : "image");
        var text = fixture.Input(huggingFace ? "input_ids" : "text");
        var output = model.forward(image, text);
        var results = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["logits_per_image"] = output.LogitsPerImage,
            ["logits_per_text"] = output.LogitsPerText,
            ["image_features"] = output.Image.Features,
            ["text_features"] = output.Text.Features,
        };
        if (huggingFace)
        {
            // transformers counts the embeddings as hidden state 0 (vision: after pre_layrnorm).
            results["text_hidden_states.0"] = output.Text.Embeddings;
            for (int i = 0; i < output.Text.HiddenStates.Count; i++) results[$"text_hidden_states.{i + 1}"] = output.Text.HiddenStates[i];
            if (output.Image.Embeddings is not null) results["vision_hidden_states.0"] = output.Image.Embeddings;
            for (int i = 0; i < output.Image.HiddenStates.Count; i++) results[$"vision_hidden_states.{i + 1}"] = output.Image.HiddenStates[i];
            return results;
        }
        for (int i = 0; i < output.Text.HiddenStates.Count; i++) results[$"text_hidden_states.{i}"] = output.Text.HiddenStates[i];
        for (int i = 0; i < output.Image.HiddenStates.Count; i++) results[$"visual_hidden_states.{i}"] = output.Image.HiddenStates[i];
        for (int i = 0; i < output.Image.Stages.Count; i++) results[$"visual_layer{i + 1}"] = output.Image.Stages[i];
        return results;
    }
}
