using System.CommandLine;

namespace ModelZoo.Cli.Infrastructure;

/// <summary>A top-level `modelzoo` command. Implementations are found by reflection, so adding one edits no central list.</summary>
public interface ICliCommand
{
    Command Build();
}
