using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Clip;

/// <summary>CLIP's Transformer: a stack of pre-norm ResidualAttentionBlocks under "resblocks.N" (batch-first here).</summary>
public sealed class ClipTransformer : nn.Module
{
    // Submodules are registered explicitly under their checkpoint names; no reflection over fields.
    protected override void RegisterComponents() { }

    readonly ModuleList<PreNormTransformerLayer> resblocks;

    public ClipTransformer(int layers, PreNormLayerOptions options) : base("transformer")
    {
        resblocks = nn.ModuleList(Enumerable.Range(0, layers).Select(_ => new PreNormTransformerLayer(options)).ToArray());
        register_module("resblocks", resblocks);
    }

    public int Count => resblocks.Count;
    public PreNormTransformerLayer this[int index] => resblocks[index];

    /// <summary>x [B, L, D] → the output of every block (the last is the transformer output).</summary>
    public List<Tensor> forward(Tensor x, AttentionMask? mask = null)
    {
        var outputs = new List<Tensor>(resblocks.Count);
        foreach (var block in resblocks)
        {
            x = block.forward(x, mask);
            outputs.Add(x);
        }
        return outputs;
    }

    /// <summary>CLIP's initialisation of the text transformer (normal with the depth-scaled standard deviations).</summary>
    public void InitializeLikeClip()
    {
        if (resblocks.Count == 0) return;
        int width = resblocks[0].Options.Hidden;
        double attnStd = Math.Pow(width, -0.5);
        double projStd = attnStd * Math.Pow(2 * resblocks.Count, -0.5);
        double fcStd = Math.Pow(2 * width, -0.5);
        using var _ = no_grad();
        foreach (var block in resblocks)
        foreach (var (name, parameter) in block.named_parameters())
        {
            if (name == "attn.in_proj_weight") nn.init.normal_(parameter, 0, attnStd);
            else if (name == "attn.out_proj.weight" || name == "mlp.c_proj.weight") nn.init.normal_(parameter, 0, projStd);
            else if (name == "mlp.c_fc.weight") nn.init.normal_(parameter, 0, fcStd);
        }
    }
}

/// <summary>
/// What an image tower returns: the projected features plus what the reference hooks capture (ViT: the tokens
/// after ln_pre and every block's output; ResNet: the four stage outputs).
/// </summary>
public sealed record ClipImageOutput(Tensor Features, IReadOnlyList<Tensor> HiddenStates, IReadOnlyList<Tensor> Stages, Tensor? Embeddings = null);

/// <summary>The two CLIP image towers: ViT and ModifiedResNet.</summary>
public interface IClipImageTower
{
    /// <summary>image [B, 3, R, R] → features [B, embed_dim] (before L2 normalisation) with intermediate outputs.</summary>
    ClipImageOutput Encode(Tensor image);
    int InputResolution { get; }
    int OutputDim { get; }
}
