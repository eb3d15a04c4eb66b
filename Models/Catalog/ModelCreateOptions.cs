using ModelZoo.Weights;

namespace ModelZoo.Models.Catalog;

public sealed record ModelCreateOptions
{
    /// <summary>cpu, cuda or cuda:N.</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>fp32, bf16 or fp16.</summary>
    public string Dtype { get; init; } = "fp32";
    /// <summary>Checkpoint file or directory to load; null = random initialisation.</summary>
    public string? WeightsPath { get; init; }
    /// <summary>
    /// A model stored in several files (e.g. OpenFlamingo: CLIP vision tower + decoder LM + checkpoint.pt with the trained
    /// parts), loaded after <see cref="WeightsPath"/> in this order, each through the preset's key map; with
    /// <see cref="Strict"/> their union must cover the model. A key in several files is taken from the last one (reported).
    /// </summary>
    public IReadOnlyList<string>? WeightsPaths { get; init; }
    /// <summary>Fail on missing, unexpected or mismatched keys (default). Non-strict loads what fits and reports the rest.</summary>
    public bool Strict { get; init; } = true;
    /// <summary>Seed for random initialisation.</summary>
    public long? Seed { get; init; }
    /// <summary>Receives the load report when weights are loaded.</summary>
    public Action<LoadReport>? OnLoadReport { get; init; }
    /// <summary>Called after each tensor loaded with (done, total).</summary>
    public Action<int, int>? OnLoadProgress { get; init; }
    /// <summary>Put the model in eval mode (default) or train mode.</summary>
    public bool Training { get; init; }

    public static ModelCreateOptions Default { get; } = new();
}
