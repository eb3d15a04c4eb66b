namespace ModelZoo.Tests.Support;

/// <summary>Runs `modelzoo` in-process and captures its standard output and error.</summary>
public static class CliRunner
{
    static readonly object ConsoleLock = new();

    public static (int ExitCode, string Out, string Error) Run(params string[] args) => RunWithInput("", args);

    /// <summary>Runs with <paramref name="stdin"/> as standard input.</summary>
    public static (int ExitCode, string Out, string Error) RunWithInput(string stdin, params string[] args)
    {
        lock (ConsoleLock)
        {
            var (oldIn, oldOut, oldError) = (Console.In, Console.Out, Console.Error);
            var output = new StringWriter();
            var error = new StringWriter();
            Console.SetIn(new StringReader(stdin));
            Console.SetOut(output);
            Console.SetError(error);
            try
            {
                int code = ModelZoo.Cli.CliApp.Run(args);
                return (code, output.ToString(), error.ToString());
            }
            finally
            {
                Console.SetIn(oldIn);
                Console.SetOut(oldOut);
                Console.SetError(oldError);
            }
        }
    }
}
