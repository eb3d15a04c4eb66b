using System.CommandLine;
using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Weights;

namespace ModelZoo.Cli.Infrastructure;

/// <summary>Runs a command body and turns the errors users can cause into one clear line on stderr and exit code 1.</summary>
public static class CliRun
{
    public static void Guard(this Command command, Func<ParseResult, int> body) =>
        command.SetAction(parseResult => Run(() => body(parseResult)));

    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (IsUserError(e))
        {
            Error(e.Message);
            return 1;
        }
        catch (Exception e)
        {
            Error($"{e.GetType().Name}: {e.Message}");
            if (Environment.GetEnvironmentVariable("MODELZOO_DEBUG") == "1") Console.Error.WriteLine(e);
            else Console.Error.WriteLine("(set MODELZOO_DEBUG=1 for the stack trace)");
            return 1;
        }
    }

    static bool IsUserError(Exception e) => e is CheckpointException or UnknownModelException or ArgumentException or InvalidDataException
        or NotSupportedException or FileNotFoundException or DirectoryNotFoundException or IOException or JsonException
        or UnauthorizedAccessException or KeyNotFoundException or InvalidOperationException or FormatException;

    public static void Error(string message) => Console.Error.WriteLine("modelzoo: error: " + message);

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static void PrintJson(object value) => Console.WriteLine(JsonSerializer.Serialize(value, value.GetType(), Json));
}
