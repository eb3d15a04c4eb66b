using ModelZoo.Models.Common;
using ModelZoo.Models.Parity;
using ModelZoo.Weights;
using static TorchSharp.torch;

namespace ModelZoo.Models.Flamingo;

/// <summary>Fixture family "openflamingo-perceiver": PerceiverResampler on x [b, T, F, v, D].</summary>
public sealed class PerceiverParityRunner : IParityRunner
{
    public IReadOnlyList<string> Families { get; } = new[] { "openflamingo-perceiver" };

    public IReadOnlyDictionary<string, Tensor> Run(Fixture fixture, string checkpointPath)
    {
        var config = ConfigJson.Parse<PerceiverConfig>(fixture.Config, $"{fixture.Directory}/fixture.json config");
        using var model = new PerceiverResampler(config);
        ModelLoader.Load(model, checkpointPath);
        model.eval();
        var trace = new PerceiverTrace();
        var outputs = new Dictionary<string, Tensor> { ["output"] = model.forward(fixture.Input("x"), trace) };
        for (int i = 0; i < trace.Attention.Count; i++)
        {
            outputs[$"layers.{i}.0"] = trace.Attention[i];
            outputs[$"layers.{i}.1"] = trace.FeedForward[i];
        }
        return outputs;
    }
}

/// <summary>Fixture family "openflamingo-xattn": GatedCrossAttentionBlock in immediate or all-media mode.</summary>
public sealed class CrossAttentionParityRunner : IParityRunner
{
    public IReadOnlyList<string> Families { get; } = new[] { "openflamingo-xattn" };

    public IReadOnlyDictionary<string, Tensor> Run(Fixture fixture, string checkpointPath)
    {
        var config = ConfigJson.Parse<CrossAttentionConfig>(fixture.Config, $"{fixture.Directory}/fixture.json config");
        using var block = new GatedCrossAttentionBlock(config);
        ModelLoader.Load(block, checkpointPath);
        block.eval();
        var x = fixture.Input("x");
        var media = fixture.Input("media");
        var locations = fixture.Input("media_locations");
        var trace = new CrossAttentionTrace();
        var output = block.forward(x, media, locations, useCachedMedia: false, trace);
        return new Dictionary<string, Tensor>
        {
            ["output"] = output,
            ["attn_out"] = trace.Attention!,
            ["ff_out"] = trace.FeedForward!,
            ["output_use_cached_media"] = block.forward(x, media, locations, useCachedMedia: true),
        };
    }
}
