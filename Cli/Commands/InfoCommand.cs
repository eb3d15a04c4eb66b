using System.CommandLine;
using System.Text.Json;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Common;

namespace ModelZoo.Cli.Commands;

public sealed class InfoCommand : ICliCommand
{
    public Command Build()
    {
        var name = new Argument<string>("name") { Description = "Preset name (see `modelzoo list`)" };
        var json = CommonOptions.Json();
        var command = new Command("info", "Describe a preset: family, exact parameter count, config, checkpoint formats, tokenizer") { name, json };
        command.Guard(parse =>
        {
            var description = ModelCatalog.Default.Describe(parse.GetValue(name)!);
            var preset = description.Preset;
            if (parse.GetValue(json))
            {
                CliRun.PrintJson(new Dictionary<string, object?>
                {
                    ["name"] = preset.Name,
                    ["family"] = preset.Family,
                    ["description"] = preset.Description,
                    ["parameters"] = description.Parameters,
                    ["buffers"] = description.Buffers,
                    ["parametersByModule"] = description.ParametersByTopModule,
                    ["heads"] = preset.Heads,
                    ["config"] = ConfigJson.ToElement(preset.Config),
                    ["checkpointFormats"] = preset.CheckpointFormats,
                    ["tokenizer"] = preset.Tokenizer,
                    ["weightsSource"] = preset.WeightsSource,
                    ["available"] = preset.Unavailable is null,
                    ["unavailableReason"] = preset.Unavailable,
                });
                return 0;
            }
            Console.WriteLine($"{preset.Name}  ({preset.Family})");
            if (preset.Description.Length > 0) Console.WriteLine(preset.Description);
            Console.WriteLine($"parameters: {description.Parameters:N0} ({description.Parameters})");
            foreach (var (module, count) in description.ParametersByTopModule) Console.WriteLine($"  {module}: {count:N0}");
            if (preset.Heads.Count > 0) Console.WriteLine("heads: " + string.Join(", ", preset.Heads));
            if (preset.Tokenizer is not null) Console.WriteLine("tokenizer: " + preset.Tokenizer);
            if (preset.WeightsSource is not null) Console.WriteLine("weights: " + preset.WeightsSource);
            Console.WriteLine("checkpoint formats:");
            foreach (var format in preset.CheckpointFormats) Console.WriteLine("  " + format);
            if (preset.Unavailable is not null) Console.WriteLine("NOT CREATABLE YET: " + preset.Unavailable);
            Console.WriteLine("config:");
            Console.WriteLine(ConfigJson.Serialize(preset.Config));
            return 0;
        });
        return command;
    }
}
