using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Attention;

// The four ways modalities meet in multimodal transformers, each a thin arrangement of MultiHeadAttention.

/// <summary>Modality-specific: queries, keys and values from one stream (CLIP towers, VATT-MS, single-stream layers).</summary>
public class ModalitySpecificAttention : MultiHeadAttention
{
    public ModalitySpecificAttention(MultiHeadAttentionOptions options) : base(options, nameof(ModalitySpecificAttention)) { }

    /// <summary>
    /// Self-attention of x [B, L, D] over itself; padding [B, L] (true = real token); causal for decoders. A named
    /// method, not a forward overload: an overload forward(x, padding) would shadow the inherited forward(query,
    /// keyValue) so that forward(x, kv) silently read kv as a padding mask.
    /// </summary>
    public Tensor SelfAttend(Tensor x, Tensor? padding = null, bool causal = false) =>
        forward(x, null, new AttentionMask { KeyPadding = padding, Causal = causal });
}

/// <summary>Merged: one joint sequence of several modalities; every query sees every real key (UNITER, ViLT, VATT-MA).</summary>
public class MergedAttention : MultiHeadAttention
{
    public MergedAttention(MultiHeadAttentionOptions options) : base(options, nameof(MergedAttention)) { }

    /// <summary>Concatenates streams [B, Li, D] and their padding masks [B, Li] (null = all real) along the sequence.</summary>
    public static (Tensor Joint, Tensor Padding) Merge(IReadOnlyList<Tensor> streams, IReadOnlyList<Tensor?>? paddings = null)
    {
        if (streams.Count == 0) throw new ArgumentException("no streams to merge");
        var masks = new Tensor[streams.Count];
        for (int i = 0; i < streams.Count; i++)
        {
            var given = paddings is null || i >= paddings.Count ? null : paddings[i];
            masks[i] = given is null
                ? ones(streams[i].shape[0], streams[i].shape[1], dtype: ScalarType.Bool, device: streams[i].device)
                : (given.dtype == ScalarType.Bool ? given : given.ne(0));
        }
        return (cat(streams.ToArray(), 1), cat(masks, 1));
    }

    /// <summary>Splits a joint sequence back into the lengths of the original streams.</summary>
    public static Tensor[] Split(Tensor joint, IReadOnlyList<Tensor> streams) =>
        joint.split(streams.Select(s => s.shape[1]).ToArray(), 1);

    /// <summary>Self-attention over the merged sequence; returns one output per stream.</summary>
    public Tensor[] forward(IReadOnlyList<Tensor> streams, IReadOnlyList<Tensor?>? paddings)
    {
        var (joint, padding) = Merge(streams, paddings);
        return Split(forward(joint, null, AttentionMask.FromPadding(padding)), streams);
    }
}

/// <summary>Asymmetric: one direction only, queries from one modality over keys/values of another (Flamingo, Perceiver).</summary>
public class AsymmetricAttention : MultiHeadAttention
{
    public AsymmetricAttention(MultiHeadAttentionOptions options) : base(options, nameof(AsymmetricAttention)) { }

    /// <summary>queries [B, Lq, Dq] over context [B, Lc, Dkv]; contextPadding [B, Lc]; allowed broadcastable to [B, H, Lq, Lc].</summary>
    public Tensor forward(Tensor queries, Tensor context, Tensor? contextPadding, Tensor? allowed = null) =>
        forward(queries, context, new AttentionMask { KeyPadding = contextPadding, Allowed = allowed });
}

/// <summary>
/// Co-attention: two streams exchange at once; A's queries attend over B and B's over A (ViLBERT co-TRM, LXMERT
/// cross layer). The two directions have their own weights, or share one attention (LXMERT).
/// </summary>
public class CoAttention : nn.Module
{
    // Submodules are registered explicitly under their checkpoint names; no reflection over fields.
    protected override void RegisterComponents() { }

    public MultiHeadAttention AOverB { get; }
    public MultiHeadAttention BOverA { get; }
    public bool Shared { get; }

    /// <summary>
    /// Two directions with their own weights. With <paramref name="flatten"/> the projections of both directions are
    /// registered directly on this module under their own names (ViLBERT's biattention.query1 ... value2), else
    /// under <paramref name="aOverBName"/> / <paramref name="bOverAName"/>.
    /// </summary>
    public CoAttention(MultiHeadAttentionOptions aOverB, MultiHeadAttentionOptions bOverA, bool flatten = false,
                       string aOverBName = "a_over_b", string bOverAName = "b_over_a") : base(nameof(CoAttention))
    {
        if (aOverB.QueryDim != bOverA.ResolvedKeyValueDim || bOverA.QueryDim != aOverB.ResolvedKeyValueDim)
            throw new ArgumentException($"co-attention widths do not match: A {aOverB.QueryDim} vs {bOverA.ResolvedKeyValueDim}, B {bOverA.QueryDim} vs {aOverB.ResolvedKeyValueDim}");
        AOverB = new MultiHeadAttention(aOverB);
        BOverA = new MultiHeadAttention(bOverA);
        if (flatten)
        {
            foreach (var (name, module) in AOverB.Projections().Concat(BOverA.Projections()).ToList())
                register_module(name, module);
        }
        else
        {
            register_module(aOverBName, AOverB);
            register_module(bOverAName, BOverA);
        }
    }

    /// <summary>One attention used in both directions (same weights), registered under <paramref name="name"/>.</summary>
    public CoAttention(MultiHeadAttentionOptions shared, string name = "attention") : base(nameof(CoAttention))
    {
        AOverB = BOverA = new MultiHeadAttention(shared);
        Shared = true;
        register_module(name, AOverB);
    }

    /// <summary>
    /// Train/eval reaches both directions even when only their projections are registered (flattened names), so
    /// attention dropout is off in eval mode.
    /// </summary>
    public override void train(bool on = true)
    {
        base.train(on);
        AOverB.train(on);
        if (!Shared) BOverA.train(on);
    }

    /// <summary>a [B, La, Da], b [B, Lb, Db] with padding masks → (a attended over b, b attended over a).</summary>
    public (Tensor A, Tensor B) forward(Tensor a, Tensor b, Tensor? aPadding = null, Tensor? bPadding = null) =>
        (AOverB.forward(a, b, AttentionMask.FromPadding(bPadding)), BOverA.forward(b, a, AttentionMask.FromPadding(aPadding)));
}

public static class AttentionModuleExtensions
{
    /// <summary>Switches every attention in a model between the fused kernel and the reference math path.</summary>
    public static T WithAttentionKernel<T>(this T model, AttentionKernel kernel) where T : nn.Module
    {
        foreach (var (_, module) in model.named_modules())
            Apply(module, kernel);
        Apply(model, kernel);
        return model;
    }

    static void Apply(nn.Module module, AttentionKernel kernel)
    {
        if (module is MultiHeadAttention attention) attention.Kernel = kernel;
        if (module is CoAttention co) { co.AOverB.Kernel = kernel; co.BOverA.Kernel = kernel; }
    }
}
