using System.CommandLine;
using ModelZoo.Cli.Infrastructure;

namespace ModelZoo.Cli;

/// <summary>The `modelzoo` command line: every <see cref="ICliCommand"/> in this assembly under one root.</summary>
public static class CliApp
{
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("modelzoo: multimodal transformers (CLIP, UNITER, VisualBERT, ViLT, ViLBERT, LXMERT, VATT, Flamingo) on TorchSharp.");
        foreach (var command in typeof(ICliCommand).Assembly.GetTypes()
                     .Where(t => typeof(ICliCommand).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
                     .Select(t => ((ICliCommand)Activator.CreateInstance(t)!).Build())
                     .OrderBy(c => c.Name, StringComparer.Ordinal))
            root.Add(command);
        return root;
    }

    public static int Run(string[] args) => BuildRoot().Parse(args).Invoke();
}
