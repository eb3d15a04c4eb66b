using System.CommandLine;

namespace ModelZoo.Cli.Infrastructure;

/// <summary>Options shared by several commands, spelled the same everywhere.</summary>
public static class CommonOptions
{
    public static Option<bool> Json(string what = "Print JSON instead of text") => new("--json") { Description = what };

    public static Option<string> Device() => new("--device")
    {
        Description = "cpu, cuda or cuda:N (CUDA needs a build with -p:ModelZooTorchBackend=cuda, i.e. the TorchSharp-cuda-linux package; see README)",
        DefaultValueFactory = _ => "cpu",
    };

    public static Option<string> Dtype() => new("--dtype")
    {
        Description = "fp32, bf16 or fp16",
        DefaultValueFactory = _ => "fp32",
    };
}
