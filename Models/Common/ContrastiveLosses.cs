using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Common;

/// <summary>
/// Contrastive losses for dual and multi-modal encoders. Every one is computed with logsumexp, so large logits
/// (small temperatures) neither overflow nor underflow.
/// </summary>
public static class ContrastiveLosses
{
    /// <summary>Rows scaled to unit length (a zero row stays zero).</summary>
    public static Tensor Normalize(Tensor x) => nn.functional.normalize(x, p: 2, dim: -1);

    /// <summary>
    /// CLIP's symmetric InfoNCE over a square matrix of logits [N, N] (already scaled) whose diagonal holds the
    /// matching pairs: the mean of the cross-entropy of the rows and of the columns against the diagonal.
    /// </summary>
    public static Tensor SymmetricInfoNce(Tensor logits)
    {
        if (logits.dim() != 2 || logits.shape[0] != logits.shape[1])
            throw new ArgumentException($"symmetric InfoNCE needs square logits [N, N], got [{string.Join(", ", logits.shape)}]");
        var diagonal = logits.diagonal();
        var rows = (logits.logsumexp(1) - diagonal).mean();
        var columns = (logits.logsumexp(0) - diagonal).mean();
        return (rows + columns) / 2;
    }

    /// <summary>
    /// Symmetric InfoNCE of paired embeddings a [N, D], b [N, D]: cosine similarities times exp(<paramref name="logScale"/>)
    /// (the learnable log inverse temperature, CLIP's logit_scale).
    /// </summary>
    public static Tensor SymmetricInfoNce(Tensor a, Tensor b, Tensor logScale)
    {
        CheckPairs(a, b, "symmetric InfoNCE");
        return SymmetricInfoNce(logScale.exp() * matmul(Normalize(a), Normalize(b).t()));
    }

    /// <summary>
    /// NCE between paired embeddings as in MMV / VATT: with s_ij = cos(a_i, b_j) / τ, each pair i scores
    /// s_ii − log(Σ_j e^{s_ij} + Σ_j e^{s_ji}): negatives come from both directions (a_i against every b, every a
    /// against b_i), and the positive appears once in each. Mean over the batch.
    /// </summary>
    public static Tensor Nce(Tensor a, Tensor b, double temperature = 0.07)
    {
        CheckPairs(a, b, "NCE");
        CheckTemperature(temperature);
        var similarity = matmul(Normalize(a), Normalize(b).t()) / temperature;   // [B, B]
        var denominator = cat(new[] { similarity, similarity.t() }, 1).logsumexp(1);
        return (denominator - similarity.diagonal()).mean();
    }

    /// <summary>
    /// MIL-NCE (Miech et al. 2020, as VATT uses it for video-text): clip i has K candidate positives b[i, k]
    /// (narrations). With s_cjk = cos(a_c, b_jk) / τ, clip i scores log Σ_k e^{s_iik} − log(Σ_{j,k} e^{s_ijk} +
    /// Σ_{j,k} e^{s_jik}). <paramref name="positiveMask"/> [B, K] (true / 1 = a real candidate) leaves padding
    /// candidates out everywhere. a [B, D], b [B, K, D]. Mean over the batch.
    /// </summary>
    public static Tensor MilNce(Tensor a, Tensor b, Tensor? positiveMask = null, double temperature = 0.07)
    {
        if (a.dim() != 2 || b.dim() != 3 || b.shape[0] != a.shape[0] || b.shape[2] != a.shape[1])
            throw new ArgumentException($"MIL-NCE needs a [B, D] and b [B, K, D], got [{string.Join(", ", a.shape)}] and [{string.Join(", ", b.shape)}]");
        CheckTemperature(temperature);
        long batch = a.shape[0], candidates = b.shape[1];
        // s[c, j, k] = a_c · b_jk
        var similarity = matmul(Normalize(a), Normalize(b).reshape(batch * candidates, -1).t()).view(batch, batch, candidates) / temperature;
        if (positiveMask is not null)
        {
            if (!positiveMask.shape.SequenceEqual(new[] { batch, candidates }))
                throw new ArgumentException($"MIL-NCE positive mask must be [{batch}, {candidates}], got [{string.Join(", ", positiveMask.shape)}]");
            var valid = (positiveMask.dtype == ScalarType.Bool ? positiveMask : positiveMask.ne(0)).to(similarity.device);
            similarity = similarity.masked_fill(valid.logical_not().unsqueeze(0), float.NegativeInfinity);
        }
        var positives = similarity.diagonal(0, 0, 1).t().logsumexp(1);                        // [B]: log Σ_k e^{s_iik}
        var denominator = cat(new[] { similarity.reshape(batch, -1), similarity.transpose(0, 1).reshape(batch, -1) }, 1).logsumexp(1);
        return (denominator - positives).mean();
    }

    static void CheckPairs(Tensor a, Tensor b, string what)
    {
        if (a.dim() != 2 || b.dim() != 2 || a.shape[0] != b.shape[0] || a.shape[1] != b.shape[1])
            throw new ArgumentException($"{what} needs paired embeddings [N, D] and [N, D], got [{string.Join(", ", a.shape)}] and [{string.Join(", ", b.shape)}]");
    }

    static void CheckTemperature(double temperature)
    {
        if (!(temperature > 0)) throw new ArgumentException($"temperature must be positive, got {temperature}");
    }
}

/// <summary>
/// A learnable temperature stored as CLIP stores it: logit_scale = log(1/τ), initialised to log(1/0.07) and
/// clamped to at most log(100) (a temperature of 0.01) when used, as CLIP's training does.
/// </summary>
public sealed class LearnableTemperature : nn.Module
{
    protected override void RegisterComponents() { }

    Parameter logit_scale;

    public double MaxLogScale { get; }

    public LearnableTemperature(double initialTemperature = 0.07, double maxScale = 100) : base("temperature")
    {
        if (!(initialTemperature > 0)) throw new ArgumentException($"temperature must be positive, got {initialTemperature}");
        MaxLogScale = Math.Log(maxScale);
        logit_scale = new Parameter(tensor((float)Math.Log(1 / initialTemperature)));
        register_parameter("logit_scale", logit_scale);
    }

    /// <summary>The clamped log scale (differentiable below the clamp).</summary>
    public Tensor LogScale => logit_scale.clamp_max(MaxLogScale);

    public double Temperature => 1 / Math.Exp(LogScale.item<float>());

    /// <summary>Symmetric InfoNCE of paired embeddings with this temperature.</summary>
    public Tensor forward(Tensor a, Tensor b) => ContrastiveLosses.SymmetricInfoNce(a, b, LogScale);
}
