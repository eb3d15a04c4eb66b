using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Attention.Layers;

/// <summary>
/// Root-mean-square LayerNorm without centring or bias (T5's LayerNorm, LLaMA's RMSNorm):
/// x / √(mean(x²) + eps) · weight, computed in float32 and returned in the input's dtype. State-dict key: <c>weight</c>.
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    Parameter weight; // named as registered: Module.to() replaces parameters by name
    readonly double eps;

    public RmsNorm(int dim, double eps = 1e-6) : base("rms_norm")
    {
        if (dim <= 0) throw new ArgumentException($"RmsNorm width must be positive, got {dim}");
        this.eps = eps;
        weight = new Parameter(ones(dim));
        RegisterComponents();
    }

    public double Epsilon => eps;

    public override Tensor forward(Tensor x)
    {
        var x32 = x.to(ScalarType.Float32);
        var normed = x32 * (x32.pow(2).mean(new long[] { -1 }, keepdim: true) + eps).rsqrt();
        return weight * normed.to(x.dtype);
    }
}
