using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Attention;

/// <summary>Module-level checks of the attention layers: gradients, fused against math, the arrangements' API.</summary>
public class AttentionModuleTests
{
    [SetUp]
    public void Seed() => manual_seed(4321);

    static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    static readonly Tensor Padding = tensor(new[,] { { 1L, 1, 1, 1, 1 }, { 1L, 1, 1, 0, 0 } });

    /// <summary>A loss that depends on every output element with its own weight (a sum of squares after a LayerNorm would not).</summary>
    static Tensor Loss(params Tensor[] outputs) => outputs.Select(o => (o * randn_like(o)).sum()).Aggregate((a, b) => a + b);

    static void AssertEveryParameterHasAGradient(nn.Module module)
    {
        var parameters = module.named_parameters().ToList();
        Assert.That(parameters, Is.Not.Empty);
        foreach (var (name, parameter) in parameters)
        {
            Assert.That(parameter.grad, Is.Not.Null, name);
            Assert.That(parameter.grad!.isfinite().all().item<bool>(), Is.True, name);
            Assert.That(parameter.grad!.abs().sum().item<float>(), Is.GreaterThan(0f), name);
        }
    }

    [Test]
    public void GradientsReachEveryParameterOfABertLayer()
    {
        var layer = new BertLayer(new BertLayerOptions { Hidden = 16, Heads = 4, Intermediate = 32, HiddenDropout = 0, AttentionDropout = 0 });
        layer.train();
        Loss(layer.forward(randn(2, 5, 16), Padding)).backward();
        Assert.That(layer.named_parameters().Count(), Is.EqualTo(16));
        AssertEveryParameterHasAGradient(layer);
    }

    [Test]
    public void GradientsReachEveryParameterOfABertCrossAttentionBlock()
    {
        var block = new BertAttentionBlock(new BertLayerOptions { Hidden = 16, Heads = 4, Intermediate = 32, ContextDim = 12, HiddenDropout = 0, AttentionDropout = 0 }, "att");
        Loss(block.forward(randn(2, 3, 16), randn(2, 5, 12), AttentionMask.FromPadding(Padding))).backward();
        AssertEveryParameterHasAGradient(block);
    }

    static IEnumerable<TestCaseData> PreNormNamings()
    {
        yield return new TestCaseData("clip").SetArgDisplayNames("Clip");
        yield return new TestCaseData("timm").SetArgDisplayNames("Timm");
        yield return new TestCaseData("gpt2").SetArgDisplayNames("Gpt2");
    }

    static PreNormLayerNames Naming(string name) => name switch
    {
        "clip" => PreNormLayerNames.Clip,
        "timm" => PreNormLayerNames.Timm,
        _ => PreNormLayerNames.Gpt2,
    };

    [TestCaseSource(nameof(PreNormNamings))]
    public void GradientsReachEveryParameterOfAPreNormLayer(string naming)
    {
        var layer = new PreNormTransformerLayer(new PreNormLayerOptions { Hidden = 16, Heads = 4, MlpDim = 32, Names = Naming(naming), Activation = Activation.QuickGelu });
        layer.train();
        bool causal = naming == "gpt2";
        Loss(layer.forward(randn(2, 5, 16), new AttentionMask { KeyPadding = Padding, Causal = causal })).backward();
        Assert.That(layer.named_parameters().Count(), Is.EqualTo(12), string.Join(", ", layer.named_parameters().Select(p => p.name)));
        AssertEveryParameterHasAGradient(layer);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void GradientsReachEveryParameterOfACoAttention(bool flatten)
    {
        var co = new CoAttention(
            new MultiHeadAttentionOptions { QueryDim = 12, KeyValueDim = 20, InnerDim = 16, Heads = 2, Names = AttentionNames.Bert with { Query = "query2", Key = "key1", Value = "value1" } },
            new MultiHeadAttentionOptions { QueryDim = 20, KeyValueDim = 12, InnerDim = 16, Heads = 2, Names = AttentionNames.Bert with { Query = "query1", Key = "key2", Value = "value2" } },
            flatten);
        var (a, b) = co.forward(randn(2, 5, 12), randn(2, 4, 20), Padding, Padding.narrow(1, 1, 4));
        Loss(a, b).backward();
        Assert.That(co.named_parameters().Count(), Is.EqualTo(12));
        AssertEveryParameterHasAGradient(co);
    }

    [Test]
    public void GradientsReachEveryParameterOfASharedCoAttention()
    {
        var co = new CoAttention(new MultiHeadAttentionOptions { QueryDim = 16, Heads = 4 }, "att");
        var (a, b) = co.forward(randn(2, 5, 16), randn(2, 3, 16), Padding, null);
        Loss(a, b).backward();
        AssertEveryParameterHasAGradient(co);
    }

    [Test]
    public void FusedMatchesMathForRandomMultiHeadAttentionShapes()
    {
        var random = new Random(11);
        for (int trial = 0; trial < 40; trial++)
        {
            using var scope = NewDisposeScope();
            int heads = random.Next(1, 5), headDim = random.Next(1, 5) * 4;
            int queryDim = random.Next(1, 9) * 4;
            bool cross = random.Next(2) == 0;
            int kvDim = cross ? random.Next(1, 9) * 4 : queryDim;
            var layouts = cross && kvDim != queryDim
                ? new[] { ProjectionLayout.Separate, ProjectionLayout.SeparateQueryFusedKeyValue }
                : cross
                    ? new[] { ProjectionLayout.Separate, ProjectionLayout.SeparateQueryFusedKeyValue, ProjectionLayout.FusedQkvParameters }
                    : Enum.GetValues<ProjectionLayout>();
            var options = new MultiHeadAttentionOptions
            {
                QueryDim = queryDim, KeyValueDim = kvDim, InnerDim = heads * headDim, Heads = heads,
                OutputDim = random.Next(2) == 0 ? null : random.Next(1, 9) * 4,
                ProjectionBias = random.Next(3) != 0,
                Layout = layouts[random.Next(layouts.Length)],
                Names = random.Next(4) == 0 ? AttentionNames.Bert : AttentionNames.HuggingFace,
                Scale = random.Next(4) == 0 ? 0.25 : null,
            };
            var attention = new MultiHeadAttention(options);
            attention.eval();
            int batch = random.Next(1, 4), queries = random.Next(1, 10), keys = cross ? random.Next(1, 10) : queries;
            var x = randn(batch, queries, queryDim);
            Tensor? context = cross ? randn(batch, keys, kvDim) : null;
            var mask = new AttentionMask
            {
                KeyPadding = random.Next(2) == 0 ? null : rand(batch, keys) > 0.3,
                Bias = random.Next(3) == 0 ? randn(1, heads, queries, keys) : null,
                Causal = !cross && random.Next(3) == 0,
            };
            attention.Kernel = AttentionKernel.Fused;
            var fused = attention.forward(x, context, mask);
            attention.Kernel = AttentionKernel.Reference;
            var reference = attention.forward(x, context, mask);
            string what = $"trial {trial}: {options} B{batch} Lq{queries} Lk{keys} {mask}";
            Assert.That(fused.shape, Is.EqualTo(new long[] { batch, queries, options.ResolvedOutputDim }), what);
            Assert.That(fused.isnan().any().item<bool>(), Is.False, what);
            Assert.That(MaxDiff(fused, reference), Is.LessThan(1e-5), what);
        }
    }

    [Test]
    public void ModalitySpecificAttentionKeepsTheInheritedCrossAttentionForward()
    {
        var msa = new ModalitySpecificAttention(new MultiHeadAttentionOptions { QueryDim = 16, Heads = 4 });
        msa.eval();
        var x = randn(2, 5, 16);
        var kv = randn(2, 5, 16);
        var plain = new MultiHeadAttention(msa.Options);
        plain.load_state_dict(msa.state_dict());
        plain.eval();
        // forward(x, kv) attends over kv (it used to bind to an overload that read kv as a padding mask).
        Assert.That(MaxDiff(msa.forward(x, kv), plain.forward(x, kv)), Is.LessThan(1e-6));
        Assert.That(MaxDiff(msa.forward(x, kv), msa.forward(x)), Is.GreaterThan(1e-3));
        // SelfAttend is self-attention with a padding mask and optional causality.
        Assert.That(MaxDiff(msa.SelfAttend(x, Padding), plain.forward(x, null, AttentionMask.FromPadding(Padding))), Is.LessThan(1e-6));
        Assert.That(MaxDiff(msa.SelfAttend(x, Padding, causal: true),
            plain.forward(x, null, new AttentionMask { KeyPadding = Padding, Causal = true })), Is.LessThan(1e-6));
        Assert.That(MaxDiff(msa.SelfAttend(x), plain.forward(x)), Is.LessThan(1e-6));
    }
}
