using ModelZoo.Models.Common;
using ModelZoo.Models.Parity;
using ModelZoo.Weights;
using static TorchSharp.torch;

namespace ModelZoo.Models.Gpt2;

/// <summary>Fixture family "gpt2" (nanoGPT GPT with a Hugging Face GPT2Model-layout checkpoint).</summary>
public sealed class Gpt2ParityRunner : IParityRunner
{
    public IReadOnlyList<string> Families { get; } = new[] { "gpt2" };

    public IReadOnlyDictionary<string, Tensor> Run(Fixture fixture, string checkpointPath)
    {
        var config = ConfigJson.Parse<Gpt2Config>(fixture.Config, $"{fixture.Directory}/fixture.json config");
        using var model = new Gpt2LMHeadModel(config);
        using (var reader = Checkpoint.Open(checkpointPath))
            ModelLoader.Load(model, reader, Gpt2Family.KeyMapFor(reader.Entries));
        model.eval();

        var idx = fixture.Input("idx");
        var targets = fixture.Input("targets");
        var training = model.forward(idx, targets, ignoreIndex: -1, keepHiddenStates: true);
        var outputs = new Dictionary<string, Tensor>
        {
            ["logits"] = training.Logits,
            ["loss"] = training.Loss!,
            ["logits_last"] = model.forward(idx).Logits,
        };
        for (int i = 0; i < training.HiddenStates.Count; i++) outputs[$"hidden_states.h.{i}"] = training.HiddenStates[i];
        return outputs;
    }
}
