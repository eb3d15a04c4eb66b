using System.CommandLine;
using ModelZoo.Cli.Infrastructure;

namespace ModelZoo.Cli.Commands;

/// <summary>A `modelzoo bench NAME` benchmark. Implementations are found by reflection.</summary>
public interface IBenchmarkCommand
{
    Command Build();
}

public sealed class BenchCommand : ICliCommand
{
    public Command Build()
    {
        var command = new Command("bench", "Benchmarks that print a table with ratios measured side by side in one run");
        foreach (var bench in typeof(IBenchmarkCommand).Assembly.GetTypes()
                     .Where(t => typeof(IBenchmarkCommand).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
                     .Select(t => ((IBenchmarkCommand)Activator.CreateInstance(t)!).Build())
                     .OrderBy(c => c.Name, StringComparer.Ordinal))
            command.Add(bench);
        return command;
    }
}
