using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Attention.Layers;

public enum Activation
{
    /// <summary>Exact GELU, x·Φ(x) (BERT, UNITER, ViLT, nanoGPT, OpenFlamingo).</summary>
    GeluErf,
    /// <summary>tanh approximation of GELU (OpenAI / Hugging Face GPT-2 "gelu_new").</summary>
    GeluTanh,
    /// <summary>x·sigmoid(1.702x) (CLIP).</summary>
    QuickGelu,
    Relu,
    Tanh,
}

public static class Activations
{
    public static Tensor Apply(Activation activation, Tensor x) => activation switch
    {
        Activation.GeluErf => nn.functional.gelu(x),
        Activation.GeluTanh => nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh),
        Activation.QuickGelu => x * nn.functional.sigmoid(1.702 * x),
        Activation.Relu => nn.functional.relu(x),
        Activation.Tanh => x.tanh(),
        _ => throw new ArgumentOutOfRangeException(nameof(activation), activation, null),
    };

    /// <summary>Reads the activation names used in config files ("gelu", "gelu_new", "quick_gelu", "relu", ...).</summary>
    public static Activation Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "gelu" or "gelu_erf" or "gelu_python" => Activation.GeluErf,
        "gelu_new" or "gelu_tanh" or "gelu_pytorch_tanh" or "gelu_fast" => Activation.GeluTanh,
        "quick_gelu" or "quickgelu" => Activation.QuickGelu,
        "relu" => Activation.Relu,
        "tanh" => Activation.Tanh,
        _ => throw new ArgumentException($"unknown activation '{name}' (known: gelu, gelu_new, quick_gelu, relu, tanh)"),
    };
}

/// <summary>An activation as a parameter-free module, for use inside Sequential heads.</summary>
public sealed class ActivationModule : nn.Module<Tensor, Tensor>
{
    public Activation Kind { get; }
    public ActivationModule(Activation kind) : base(kind.ToString()) => Kind = kind;
    public override Tensor forward(Tensor input) => Activations.Apply(Kind, input);
}
