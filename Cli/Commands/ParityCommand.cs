using System.CommandLine;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Models.Parity;

namespace ModelZoo.Cli.Commands;

public sealed class ParityCommand : ICliCommand
{
    public Command Build()
    {
        var directory = new Argument<string>("fixture-dir") { Description = "A fixture folder: fixture.json, model.safetensors, inputs.safetensors, outputs.safetensors" };
        var json = CommonOptions.Json();
        var pickle = new Option<bool>("--pickle") { Description = "Load the fixture's PyTorch pickle copy (model.bin) instead of model.safetensors" };
        var command = new Command("parity", "Compare this library's port with reference outputs; exit 0 only if every output is within tolerance")
            { directory, json, pickle };
        command.Guard(parse =>
        {
            var result = ParityCheck.Check(parse.GetValue(directory)!, parse.GetValue(pickle));
            if (parse.GetValue(json))
            {
                CliRun.PrintJson(new
                {
                    pass = result.Pass,
                    family = result.Family,
                    checkpoint = result.Checkpoint,
                    // A missing or misshaped output has no error value: null, not the string "NaN".
                    outputs = result.Outputs.Select(o => new { name = o.Name, max_abs_error = double.IsNaN(o.MaxAbsError) ? (double?)null : o.MaxAbsError, atol = o.Atol, rtol = o.Rtol, pass = o.Pass, error = o.Error }),
                });
            }
            else
            {
                Console.WriteLine($"fixture {result.Fixture} (family {result.Family}, checkpoint {Path.GetFileName(result.Checkpoint)})");
                var table = new Table("output", "max abs error", "atol", "rtol", "result");
                foreach (var o in result.Outputs)
                    table.Add(o.Name, double.IsNaN(o.MaxAbsError) ? "-" : o.MaxAbsError.ToString("0.###e+0"), o.Atol, o.Rtol, o.Pass ? "pass" : "FAIL " + (o.Error ?? ""));
                Console.Write(table);
                Console.WriteLine(result.Pass ? $"PASS: all {result.Outputs.Count} outputs within tolerance" : $"FAIL: {result.Outputs.Count(o => !o.Pass)} of {result.Outputs.Count} outputs out of tolerance");
            }
            return result.Pass ? 0 : 1;
        });
        return command;
    }
}
