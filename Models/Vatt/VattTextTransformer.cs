using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Vatt;

/// <summary>A VATT transformer over a sequence whose first token is [AGG]: [B, 1 + N, D] and a key padding mask → [B, 1 + N, D].</summary>
public interface IVattTransformer
{
    Tensor forward(Tensor x, Tensor? padding);
}

/// <summary>
/// T5's relative position buckets (bidirectional): half of the buckets for keys before the query and half for keys
/// after; within each half, distances below a quarter of the buckets get their own bucket and longer ones share
/// logarithmically wider buckets up to <c>max_distance</c>, beyond which they all fall in the last one.
/// </summary>
public static class RelativePositionBuckets
{
    /// <summary>[queries, keys] int64 bucket of key j seen from query i.</summary>
    public static Tensor Compute(long queries, long keys, int buckets, int maxDistance, Device? device = null)
    {
        using var scope = NewDisposeScope();
        var relative = arange(keys, dtype: ScalarType.Int64, device: device).unsqueeze(0) - arange(queries, dtype: ScalarType.Int64, device: device).unsqueeze(1);
        var n = relative.neg();                   // > 0: the key is before the query
        int half = buckets / 2;
        var bucket = n.lt(0).to(ScalarType.Int64) * half;
        n = n.abs();
        int exact = half / 2;
        // Computed in float32 and truncated, as the reference does (clamped at 1 to keep log finite; those are exact anyway).
        var scaled = (n.clamp_min(1).to(ScalarType.Float32) / exact).log() / (float)Math.Log(maxDistance / (double)exact) * (half - exact);
        var large = (scaled.to(ScalarType.Int64) + exact).clamp_max(half - 1);
        return (bucket + where(n.lt(exact), n, large)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// One layer of VATT-MS's T5 text transformer (google-research vatt t5.EncoderLayer): x + attn(RMSNorm(x)) with
/// bias-free q/k/v/o, unscaled scores plus the shared relative position bias; then x + MLP(LayerNorm(x)) with a
/// bias-free erf-GELU MLP. The reference's feed-forward norm is a standard LayerNorm (with a bias), the attention
/// norm T5's RMS norm.
/// </summary>
public sealed class VattTextLayer : nn.Module
{
    protected override void RegisterComponents() { }

    readonly RmsNorm attention_norm;
    readonly MultiHeadAttention attention;
    readonly LayerNorm mlp_norm;
    readonly Mlp mlp;
    readonly Dropout dropout;

    public VattTextLayer(VattTransformerConfig size, double layerNormEps, double dropoutRate) : base("layer")
    {
        attention_norm = new RmsNorm(size.DModel, layerNormEps);
        attention = new MultiHeadAttention(new MultiHeadAttentionOptions
        {
            QueryDim = size.DModel,
            Heads = size.NumHeads,
            HeadDim = size.DKv,
            ProjectionBias = false,
            Scale = 1.0,   // T5 does not scale q·k
            Dropout = dropoutRate,
            Layout = ProjectionLayout.Separate,
            Names = VattConfig.LayerNames.AttentionNames,
        });
        mlp_norm = nn.LayerNorm(size.DModel, layerNormEps);
        mlp = new Mlp(size.DModel, size.DFf, Activation.GeluErf, "wi", "wo", bias: false);
        dropout = nn.Dropout(dropoutRate);
        register_module("attention_norm", attention_norm);
        register_module("attention", attention);
        register_module("mlp_norm", mlp_norm);
        register_module("mlp", mlp);
        register_module("dropout", dropout);
    }

    /// <summary>x [B, L, D]; the mask carries padding and the relative position bias.</summary>
    public Tensor forward(Tensor x, AttentionMask mask)
    {
        x = x + dropout.forward(attention.forward(attention_norm.forward(x), null, mask));
        return x + dropout.forward(mlp.forward(mlp_norm.forward(x)));
    }
}

/// <summary>
/// VATT-MS's text transformer (google-research vatt t5.T5Encoder, config t5_small): dropout on the input, layers
/// sharing one relative attention bias table [num_relative_buckets, heads] (the reference keeps it in layer 0 and
/// reuses its bias in every layer), a final RMS norm and dropout. No absolute positions.
/// </summary>
public sealed class VattTextTransformer : nn.Module, IVattTransformer
{
    protected override void RegisterComponents() { }

    readonly Embedding relative_attention_bias;
    readonly ModuleList<VattTextLayer> layers;
    readonly RmsNorm final_norm;
    readonly Dropout dropout;

    public VattTransformerConfig Size { get; }

    public VattTextTransformer(VattConfig config, VattTransformerConfig size) : base("text_encoder")
    {
        Size = size;
        relative_attention_bias = nn.Embedding(size.NumRelativeBuckets, size.NumHeads);
        using (no_grad()) nn.init.uniform_(relative_attention_bias.weight!, -0.05, 0.05); // Keras Embedding's default
        layers = nn.ModuleList(Enumerable.Range(0, size.NumLayers).Select(_ => new VattTextLayer(size, config.LayerNormEpsilon, config.DropoutRate)).ToArray());
        final_norm = new RmsNorm(size.DModel, config.LayerNormEpsilon);
        dropout = nn.Dropout(config.DropoutRate);
        register_module("relative_attention_bias", relative_attention_bias);
        register_module("layers", layers);
        register_module("final_norm", final_norm);
        register_module("dropout", dropout);
    }

    /// <summary>The additive attention bias [1, heads, L, L] for a sequence of <paramref name="length"/>.</summary>
    public Tensor PositionBias(long length, Device device)
    {
        using var scope = NewDisposeScope();
        var buckets = RelativePositionBuckets.Compute(length, length, Size.NumRelativeBuckets, Size.MaxRelativeDistance, device);
        return relative_attention_bias.forward(buckets).permute(2, 0, 1).unsqueeze(0).MoveToOuterDisposeScope();
    }

    /// <summary>x [B, L, D] ([AGG] first), padding [B, L] (true = token) or null → [B, L, D].</summary>
    public Tensor forward(Tensor x, Tensor? padding)
    {
        var mask = new AttentionMask { KeyPadding = padding, Bias = PositionBias(x.shape[1], x.device) };
        x = dropout.forward(x);
        foreach (var layer in layers) x = layer.forward(x, mask);
        return dropout.forward(final_norm.forward(x));
    }
}
