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

/// <summary>
/// Fixture family "hf-gpt2": transformers' GPT2LMHeadModel (tanh GELU, `transformer.*` keys, tied lm_head), with
/// Hugging Face's hidden-state convention (embeddings first, the last entry after ln_f).
/// </summary>
public sealed class HuggingFaceGpt2ParityRunner : IParityRunner
{
    public IReadOnlyList<string> Families { get; } = new[] { "hf-gpt2" };

    public IReadOnlyDictionary<string, Tensor> Run(Fixture fixture, string checkpointPath)
    {
        var config = ConfigJson.Parse<Gpt2Config>(fixture.Config, $"{fixture.Directory}/fixture.json config");
        using var model = new Gpt2LMHeadModel(config);
        using (var reader = Checkpoint.Open(checkpointPath))
            ModelLoader.Load(model, reader, Gpt2Family.KeyMapFor(reader.Entries));
        model.eval();

        var inputIds = fixture.Input("input_ids");
        var positions = arange(inputIds.shape[1], dtype: ScalarType.Int64).unsqueeze(0).expand(inputIds.shape[0], -1);
        var pass = model.forward(inputIds, targets: inputIds, keepHiddenStates: true); // targets only ask for every position's logits
        var outputs = new Dictionary<string, Tensor>
        {
            ["logits"] = pass.Logits,
            ["hidden_states.0"] = model.Embed(inputIds, positions),
            ["hidden_states_final_ln"] = model.FinalNorm(pass.HiddenStates[^1]),
        };
        for (int i = 0; i + 1 < pass.HiddenStates.Count; i++) outputs[$"hidden_states.{i + 1}"] = pass.HiddenStates[i];
        return outputs;
    }
}
