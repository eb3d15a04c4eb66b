using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Attention.Layers;

/// <summary>State-dict names inside a pre-norm layer, per checkpoint family.</summary>
public sealed record PreNormLayerNames
{
    public string Norm1 { get; init; } = "ln_1";
    public string Attention { get; init; } = "attn";
    public string Norm2 { get; init; } = "ln_2";
    public string Mlp { get; init; } = "mlp";
    public string MlpIn { get; init; } = "c_fc";
    public string MlpOut { get; init; } = "c_proj";
    public AttentionNames AttentionNames { get; init; } = AttentionNames.TorchMultiheadAttention;
    public ProjectionLayout Layout { get; init; } = ProjectionLayout.FusedQkvParameters;

    /// <summary>openai/CLIP ResidualAttentionBlock: ln_1, attn.in_proj_*, attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj.</summary>
    public static PreNormLayerNames Clip { get; } = new();
    /// <summary>timm ViT Block (original ViLT): norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2.</summary>
    public static PreNormLayerNames Timm { get; } = new()
    {
        Norm1 = "norm1", Norm2 = "norm2", MlpIn = "fc1", MlpOut = "fc2",
        AttentionNames = AttentionNames.Timm, Layout = ProjectionLayout.FusedQkv,
    };
    /// <summary>Hugging Face GPT-2 Block (Conv1D weights transposed by the key map): ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj.</summary>
    public static PreNormLayerNames Gpt2 { get; } = new() { AttentionNames = AttentionNames.Gpt2, Layout = ProjectionLayout.FusedQkv };
}

public sealed record PreNormLayerOptions
{
    public required int Hidden { get; init; }
    public required int Heads { get; init; }
    public required int MlpDim { get; init; }
    public Activation Activation { get; init; } = Activation.GeluErf;
    public double LayerNormEps { get; init; } = 1e-5;
    public bool Bias { get; init; } = true;
    /// <summary>Bias of the q/k/v projections alone (timm / ViLT qkv_bias); defaults to <see cref="Bias"/>.</summary>
    public bool? QkvBias { get; init; }
    /// <summary>LayerNorms with a bias (nanoGPT bias=False and MPT no_bias drop it).</summary>
    public bool LayerNormBias { get; init; } = true;
    public double AttentionDropout { get; init; }
    public double ResidualDropout { get; init; }
    /// <summary>QK LayerNorm in the attention (MPT attn_qk_ln), with <see cref="LayerNormBias"/> and <see cref="LayerNormEps"/>.</summary>
    public bool QueryKeyNorm { get; init; }
    public PreNormLayerNames Names { get; init; } = PreNormLayerNames.Clip;
    /// <summary>The self-attention is the <see cref="MergedAttention"/> of one-stream models (ViLT); same weights and names.</summary>
    public bool Merged { get; init; }
}

/// <summary>Two Linear layers with an activation between (the transformer MLP).</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    // Submodules are registered explicitly under their checkpoint names; no reflection over fields.
    protected override void RegisterComponents() { }

    readonly Linear input, output;
    readonly Activation activation;

    public Mlp(int dim, int hidden, Activation activation, string inputName = "fc1", string outputName = "fc2", bool bias = true, int? outputDim = null) : base("mlp")
    {
        input = nn.Linear(dim, hidden, bias);
        output = nn.Linear(hidden, outputDim ?? dim, bias);
        this.activation = activation;
        register_module(inputName, input);
        register_module(outputName, output);
    }

    public override Tensor forward(Tensor x) => output.forward(Activations.Apply(activation, input.forward(x)));
}

/// <summary>Pre-norm transformer layer (ViT, CLIP, GPT-2, VATT): x + attn(LN(x)), then x + mlp(LN(x)).</summary>
public sealed class PreNormTransformerLayer : nn.Module
{
    // Submodules are registered explicitly under their checkpoint names; no reflection over fields.
    protected override void RegisterComponents() { }

    public MultiHeadAttention Attention { get; }
    readonly LayerNorm norm1, norm2;
    readonly Mlp mlp;

    public PreNormLayerOptions Options { get; }

    public PreNormTransformerLayer(PreNormLayerOptions options) : base("block")
    {
        Options = options;
        var names = options.Names;
        norm1 = nn.LayerNorm(options.Hidden, options.LayerNormEps, bias: options.LayerNormBias);
        var attention = new MultiHeadAttentionOptions
        {
            QueryDim = options.Hidden,
            Heads = options.Heads,
            Layout = names.Layout,
            Names = names.AttentionNames,
            ProjectionBias = options.QkvBias ?? options.Bias,
            OutputBias = options.Bias,
            Dropout = options.AttentionDropout,
            QueryKeyNorm = options.QueryKeyNorm,
            QueryKeyNormBias = options.LayerNormBias,
            QueryKeyNormEps = options.LayerNormEps,
        };
        Attention = options.Merged ? new MergedAttention(attention) : new MultiHeadAttention(attention);
        norm2 = nn.LayerNorm(options.Hidden, options.LayerNormEps, bias: options.LayerNormBias);
        mlp = new Mlp(options.Hidden, options.MlpDim, options.Activation, names.MlpIn, names.MlpOut, options.Bias);
        register_module(names.Norm1, norm1);
        register_module(names.Attention, Attention);
        register_module(names.Norm2, norm2);
        register_module(names.Mlp, mlp);
    }

    // Functional dropout on this module's own training flag (an unregistered Dropout child would miss eval()).
    Tensor ResidualDropout(Tensor x) => Options.ResidualDropout > 0 && training ? nn.functional.dropout(x, Options.ResidualDropout, training: true) : x;

    /// <summary>x [B, L, D]; mask over keys (padding, causal, bias).</summary>
    public Tensor forward(Tensor x, AttentionMask? mask = null)
    {
        x = x + ResidualDropout(Attention.forward(norm1.forward(x), null, mask));
        return x + ResidualDropout(mlp.forward(norm2.forward(x)));
    }

    /// <summary>Incremental decoding: new positions attend over the cache plus themselves.</summary>
    public Tensor ForwardCached(Tensor x, LayerKeyValueCache cache, AttentionMask? mask = null)
    {
        x = x + ResidualDropout(Attention.ForwardCached(norm1.forward(x), cache, mask));
        return x + ResidualDropout(mlp.forward(norm2.forward(x)));
    }
}
