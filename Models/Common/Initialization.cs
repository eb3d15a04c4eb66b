using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Common;

/// <summary>Weight initialisation schemes of the reference implementations.</summary>
public static class Initialization
{
    /// <summary>BERT: Linear and Embedding weights N(0, range), biases 0, LayerNorm weight 1 and bias 0.</summary>
    public static void BertStyle(nn.Module model, double initializerRange)
    {
        using var _ = no_grad();
        foreach (var (_, module) in model.named_modules())
        {
            switch (module)
            {
                case Linear linear:
                    nn.init.normal_(linear.weight!, 0, initializerRange);
                    if (linear.bias is not null) nn.init.zeros_(linear.bias);
                    break;
                case Embedding embedding:
                    nn.init.normal_(embedding.weight!, 0, initializerRange);
                    break;
                case LayerNorm norm:
                    if (norm.weight is not null) nn.init.ones_(norm.weight);
                    if (norm.bias is not null) nn.init.zeros_(norm.bias);
                    break;
            }
        }
    }
}
