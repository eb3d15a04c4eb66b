using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Attention.Layers;

// Post-norm (BERT-style) transformer layer. Module names follow the original BERT code, so UNITER, VisualBERT,
// ViLBERT and LXMERT checkpoints load without renaming:
//   attention.self.{query,key,value}  attention.output.{dense,LayerNorm}  intermediate.dense  output.{dense,LayerNorm}

/// <summary>Dense, dropout, then LayerNorm(x + residual): BERT's SelfOutput / Output.</summary>
public sealed class BertResidualOutput : nn.Module
{
    readonly Linear dense;
    readonly LayerNorm LayerNorm;
    readonly Dropout dropout;

    public BertResidualOutput(int inputDim, int hiddenDim, double layerNormEps = 1e-12, double dropoutRate = 0.1) : base("output")
    {
        dense = nn.Linear(inputDim, hiddenDim);
        LayerNorm = nn.LayerNorm(hiddenDim, layerNormEps);
        dropout = nn.Dropout(dropoutRate);
        RegisterComponents();
    }

    public Tensor forward(Tensor hidden, Tensor residual) => LayerNorm.forward(dropout.forward(dense.forward(hidden)) + residual);
}

/// <summary>Dense then activation: BERT's Intermediate.</summary>
public sealed class BertIntermediate : nn.Module<Tensor, Tensor>
{
    readonly Linear dense;
    readonly Activation activation;

    public BertIntermediate(int hiddenDim, int intermediateDim, Activation activation = Activation.GeluErf) : base("intermediate")
    {
        dense = nn.Linear(hiddenDim, intermediateDim);
        this.activation = activation;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Activations.Apply(activation, dense.forward(x));
}

/// <summary>Shape of a BERT-style layer.</summary>
public sealed record BertLayerOptions
{
    public required int Hidden { get; init; }
    public required int Heads { get; init; }
    public required int Intermediate { get; init; }
    /// <summary>Width of the keys/values when the attention is cross-attention (LXMERT); defaults to Hidden.</summary>
    public int? ContextDim { get; init; }
    /// <summary>Width of q/k/v inside the attention; defaults to Hidden.</summary>
    public int? AttentionInnerDim { get; init; }
    public Activation Activation { get; init; } = Activation.GeluErf;
    public double LayerNormEps { get; init; } = 1e-12;
    public double HiddenDropout { get; init; } = 0.1;
    public double AttentionDropout { get; init; } = 0.1;
    /// <summary>
    /// The self-attention is the <see cref="MergedAttention"/> of one-stream models (text and visual tokens in one
    /// sequence: UNITER, VisualBERT); same weights and names, the arrangement made explicit.
    /// </summary>
    public bool Merged { get; init; }
}

/// <summary>
/// Attention (self- or cross-) followed by dense + LayerNorm with the residual: BERT's Attention, LXMERT's
/// SelfattLayer and CrossattLayer. The attention submodule is "self" (BERT) or e.g. "att" (LXMERT cross layers).
/// </summary>
public sealed class BertAttentionBlock : nn.Module
{
    // Submodules are registered explicitly under their checkpoint names; no reflection over fields.
    protected override void RegisterComponents() { }

    public MultiHeadAttention Attention { get; }
    readonly BertResidualOutput output;

    public BertAttentionBlock(BertLayerOptions options, string attentionName = "self") : base("attention")
    {
        int inner = options.AttentionInnerDim ?? options.Hidden;
        var attention = new MultiHeadAttentionOptions
        {
            QueryDim = options.Hidden,
            KeyValueDim = options.ContextDim ?? options.Hidden,
            InnerDim = inner,
            Heads = options.Heads,
            Names = AttentionNames.Bert,
            Dropout = options.AttentionDropout,
        };
        if (options.Merged && options.ContextDim is not null) throw new ArgumentException("merged attention is self-attention over one sequence: no ContextDim");
        Attention = options.Merged ? new MergedAttention(attention) : new MultiHeadAttention(attention);
        output = new BertResidualOutput(inner, options.Hidden, options.LayerNormEps, options.HiddenDropout);
        register_module(attentionName, Attention);
        register_module("output", output);
    }

    /// <summary>x [B, L, H]; context (null = self-attention) [B, Lc, C]; mask over the keys.</summary>
    public Tensor forward(Tensor x, Tensor? context = null, AttentionMask? mask = null) =>
        output.forward(Attention.forward(x, context, mask), x);
}

/// <summary>A full post-norm BERT layer: attention block, intermediate, output.</summary>
public sealed class BertLayer : nn.Module
{
    readonly BertAttentionBlock attention;
    readonly BertIntermediate intermediate;
    readonly BertResidualOutput output;

    public BertLayerOptions Options { get; }

    public BertLayer(BertLayerOptions options) : base("layer")
    {
        Options = options;
        attention = new BertAttentionBlock(options with { ContextDim = null });
        intermediate = new BertIntermediate(options.Hidden, options.Intermediate, options.Activation);
        output = new BertResidualOutput(options.Intermediate, options.Hidden, options.LayerNormEps, options.HiddenDropout);
        RegisterComponents();
    }

    public Tensor forward(Tensor x, AttentionMask? mask = null)
    {
        var attended = attention.forward(x, null, mask);
        return output.forward(intermediate.forward(attended), attended);
    }

    /// <summary>x [B, L, H] with a key padding mask [B, L] (true / 1 = real token).</summary>
    public Tensor forward(Tensor x, Tensor? padding) => forward(x, AttentionMask.FromPadding(padding));
}
