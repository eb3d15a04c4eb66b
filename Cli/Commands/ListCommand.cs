using System.CommandLine;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Models.Catalog;

namespace ModelZoo.Cli.Commands;

public sealed class ListCommand : ICliCommand
{
    public Command Build()
    {
        var json = CommonOptions.Json();
        var family = new Option<string?>("--family") { Description = "Only presets of this family" };
        var command = new Command("list", "List the named model presets") { json, family };
        command.Guard(parse =>
        {
            var presets = ModelCatalog.Default.List()
                .Where(p => parse.GetValue(family) is not string f || p.Family.Equals(f, StringComparison.OrdinalIgnoreCase)).ToList();
            if (parse.GetValue(json))
            {
                CliRun.PrintJson(presets.Select(p => new { name = p.Name, family = p.Family, description = p.Description, available = p.Unavailable is null }).ToList());
                return 0;
            }
            var table = new Table("name", "family", "description");
            foreach (var p in presets) table.Add(p.Name, p.Family, p.Description + (p.Unavailable is null ? "" : " [not creatable yet]"));
            Console.Write(table);
            return 0;
        });
        return command;
    }
}
