using System.Reflection;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Parity;

/// <summary>
/// Runs a family's port on a fixture: loads the fixture checkpoint through the family's normal loader, feeds the
/// fixture inputs, and returns outputs named like the reference outputs. One runner per family.
/// </summary>
public interface IParityRunner
{
    /// <summary>The fixture.json "family" values this runner handles.</summary>
    IReadOnlyList<string> Families { get; }

    /// <summary>Outputs by reference name. <paramref name="checkpointPath"/> is the fixture's safetensors or its pickle copy.</summary>
    IReadOnlyDictionary<string, Tensor> Run(Fixture fixture, string checkpointPath);
}

public sealed record ParityOutput(string Name, double MaxAbsError, double Atol, double Rtol, bool Pass, string? Error = null);

public sealed record ParityResult(string Fixture, string Family, string Checkpoint, bool Pass, IReadOnlyList<ParityOutput> Outputs);

public static class ParityCheck
{
    static IReadOnlyList<IParityRunner>? _runners;

    /// <summary>Every runner defined in this library (found by reflection).</summary>
    public static IReadOnlyList<IParityRunner> Runners => _runners ??= typeof(ParityCheck).Assembly.GetTypes()
        .Where(t => typeof(IParityRunner).IsAssignableFrom(t) && !t.IsAbstract && t.GetConstructor(Type.EmptyTypes) is not null)
        .OrderBy(t => t.FullName, StringComparer.Ordinal)
        .Select(t => (IParityRunner)Activator.CreateInstance(t)!).ToList();

    public static IParityRunner RunnerFor(string family) =>
        Runners.FirstOrDefault(r => r.Families.Contains(family, StringComparer.OrdinalIgnoreCase))
        ?? throw new NotSupportedException($"no port handles fixture family '{family}' (supported: {string.Join(", ", Runners.SelectMany(r => r.Families).OrderBy(f => f))})");

    /// <summary>Checks every reference output; an output the port does not produce fails.</summary>
    public static ParityResult Check(string fixtureDirectory, bool usePickle = false)
    {
        using var fixture = new Fixture(fixtureDirectory);
        string checkpoint = usePickle
            ? fixture.PicklePath ?? throw new InvalidOperationException($"{fixtureDirectory}: this fixture has no pickle checkpoint")
            : fixture.CheckpointPath;
        var runner = RunnerFor(fixture.Family);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ours = runner.Run(fixture, checkpoint);
        var outputs = new List<ParityOutput>();
        foreach (var (name, expected) in fixture.Outputs.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            outputs.Add(Compare(name, ours.TryGetValue(name, out var actual) ? actual : null, expected, fixture.Atol, fixture.Rtol));
        return new ParityResult(fixtureDirectory, fixture.Family, checkpoint, outputs.All(o => o.Pass), outputs);
    }

    /// <summary>Pass if |ours − ref| ≤ atol + rtol·|ref| everywhere (and shapes agree).</summary>
    public static ParityOutput Compare(string name, Tensor? actual, Tensor expected, double atol, double rtol)
    {
        if (actual is null) return new ParityOutput(name, double.NaN, atol, rtol, false, "not produced by the port");
        if (!actual.shape.SequenceEqual(expected.shape))
            return new ParityOutput(name, double.NaN, atol, rtol, false,
                $"shape [{string.Join(", ", actual.shape)}] differs from the reference [{string.Join(", ", expected.shape)}]");
        using var a = actual.detach().cpu().to(ScalarType.Float64);
        using var e = expected.to(ScalarType.Float64);
        using var diff = (a - e).abs();
        double maxAbs = diff.numel() == 0 ? 0 : diff.max().item<double>();
        bool pass = diff.numel() == 0 || (diff <= atol + rtol * e.abs()).all().item<bool>();
        if (double.IsNaN(maxAbs)) pass = false;
        return new ParityOutput(name, maxAbs, atol, rtol, pass);
    }
}
