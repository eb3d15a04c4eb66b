using ModelZoo.Attention;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Attention;

public class AttentionCoreTests
{
    [SetUp]
    public void Seed() => manual_seed(1234);

    static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [Test]
    public void FusedMatchesMathOverRandomShapesAndMasks()
    {
        var random = new Random(7);
        for (int trial = 0; trial < 60; trial++)
        {
            using var scope = NewDisposeScope();
            int batch = random.Next(1, 4), heads = random.Next(1, 5), dim = random.Next(1, 5) * 4;
            int keys = random.Next(1, 12), queries = random.Next(1, keys + 1);
            var q = randn(batch, heads, queries, dim);
            var k = randn(batch, heads, keys, dim);
            var v = randn(batch, heads, keys, random.Next(1, 5) * 4);
            var mask = new AttentionMask
            {
                KeyPadding = random.Next(2) == 0 ? null : rand(batch, keys) > 0.3,
                Bias = random.Next(3) == 0 ? randn(1, heads, queries, keys) : null,
                Allowed = random.Next(3) == 0 ? rand(batch, 1, queries, keys) > 0.2 : null,
                Causal = random.Next(3) == 0,
            };
            double? scale = random.Next(4) == 0 ? 0.3 : null;
            var fused = AttentionCore.AttendHeads(q, k, v, mask, scale: scale, kernel: AttentionKernel.Fused);
            var reference = AttentionCore.AttendHeads(q, k, v, mask, scale: scale, kernel: AttentionKernel.Reference);
            Assert.That(fused.isnan().any().item<bool>(), Is.False, $"trial {trial}");
            Assert.That(MaxDiff(fused, reference), Is.LessThan(1e-5), $"trial {trial}: B{batch} H{heads} Lq{queries} Lk{keys} D{dim} {mask}");
        }
    }

    [TestCase(ProjectionLayout.Separate)]
    [TestCase(ProjectionLayout.SeparateQueryFusedKeyValue)]
    public void QueryAndKeyValueWidthsMayDiffer(ProjectionLayout layout)
    {
        // ViLBERT-like: text 24 wide attends over vision 40 wide through a 32-wide, 4-head co-attention space.
        var attention = new MultiHeadAttention(new MultiHeadAttentionOptions { QueryDim = 24, KeyValueDim = 40, InnerDim = 32, Heads = 4, Layout = layout });
        attention.eval();
        var text = randn(2, 5, 24);
        var vision = randn(2, 7, 40);
        var padding = tensor(new[,] { { 1L, 1, 1, 1, 1, 1, 1 }, { 1L, 1, 1, 0, 0, 0, 0 } });
        var fused = attention.forward(text, vision, AttentionMask.FromPadding(padding));
        attention.Kernel = AttentionKernel.Reference;
        var reference = attention.forward(text, vision, AttentionMask.FromPadding(padding));
        Assert.That(fused.shape, Is.EqualTo(new long[] { 2, 5, 24 }));
        Assert.That(MaxDiff(fused, reference), Is.LessThan(1e-5));
    }

    [Test]
    public void MaskedKeysHaveNoInfluence()
    {
        var attention = new MultiHeadAttention(new MultiHeadAttentionOptions { QueryDim = 16, Heads = 4 });
        attention.eval();
        var x = randn(2, 6, 16);
        var padding = tensor(new[,] { { true, true, true, true, false, false }, { true, true, false, false, false, false } });
        var before = attention.forward(x, null, AttentionMask.FromPadding(padding));
        var changed = x.clone();
        changed[0, 4] = randn(16) * 100;
        changed[1, TensorIndex.Slice(2)] = randn(4, 16) * 100;
        var after = attention.forward(x, changed, AttentionMask.FromPadding(padding));
        Assert.That(MaxDiff(before, after), Is.EqualTo(0.0).Within(1e-6));
    }

    [Test]
    public void FullyMaskedQueryRowsGiveZerosAndFiniteGradients()
    {
        var q = randn(1, 2, 3, 8, requires_grad: true);
        var k = randn(1, 2, 4, 8, requires_grad: true);
        var v = randn(1, 2, 4, 8, requires_grad: true);
        var allowed = ones(1, 1, 3, 4, dtype: ScalarType.Bool);
        allowed[0, 0, 1] = tensor(false); // query 1 sees no key at all
        foreach (var kernel in new[] { AttentionKernel.Fused, AttentionKernel.Reference })
        {
            var output = AttentionCore.AttendHeads(q, k, v, new AttentionMask { Allowed = allowed }, kernel: kernel);
            Assert.That(output.isnan().any().item<bool>(), Is.False, kernel.ToString());
            Assert.That(output[0, TensorIndex.Colon, 1].abs().max().item<float>(), Is.EqualTo(0f), kernel.ToString());
            Assert.That(output[0, TensorIndex.Colon, 0].abs().max().item<float>(), Is.GreaterThan(0f));
            output.sum().backward();
            foreach (var t in new[] { q, k, v })
            {
                Assert.That(t.grad!.isfinite().all().item<bool>(), Is.True);
                t.grad!.zero_();
            }
        }
    }

    [Test]
    public void RowsWhoseBiasIsAllMinusInfinityGiveZerosAndFiniteGradients()
    {
        var q = randn(2, 2, 3, 8, requires_grad: true);
        var k = randn(2, 2, 4, 8, requires_grad: true);
        var v = randn(2, 2, 4, 8, requires_grad: true);
        foreach (bool withPadding in new[] { false, true })
        {
            var bias = randn(2, 1, 3, 4);
            bias[0, 0, 1] = tensor(float.NegativeInfinity); // batch 0, query 1: every key is -inf
            bias[1, 0, 2, TensorIndex.Slice(2)] = tensor(float.NegativeInfinity); // batch 1, query 2: keys 2..3 are -inf ...
            // ... and with padding, batch 1's keys 0..1 are padding: query 2 there has no usable key either.
            var padding = withPadding ? tensor(new[,] { { true, true, true, true }, { false, false, true, true } }) : null;
            var mask = new AttentionMask { Bias = bias, KeyPadding = padding };
            foreach (var kernel in new[] { AttentionKernel.Fused, AttentionKernel.Reference })
            {
                string what = $"{kernel}, padding {withPadding}";
                var output = AttentionCore.AttendHeads(q, k, v, mask, kernel: kernel);
                Assert.That(output.isnan().any().item<bool>(), Is.False, what);
                Assert.That(output[0, TensorIndex.Colon, 1].abs().max().item<float>(), Is.EqualTo(0f), what);
                if (withPadding) Assert.That(output[1, TensorIndex.Colon, 2].abs().max().item<float>(), Is.EqualTo(0f), what);
                else Assert.That(output[1, TensorIndex.Colon, 2].abs().max().item<float>(), Is.GreaterThan(0f), what);
                Assert.That(output[0, TensorIndex.Colon, 0].abs().max().item<float>(), Is.GreaterThan(0f), what);
                // Rows with keys are unchanged by the fix: compare with the rows computed alone.
                var alone = AttentionCore.AttendHeads(q[0, TensorIndex.Colon, TensorIndex.Slice(0, 1)], k[0], v[0],
                    new AttentionMask { Bias = bias[0, TensorIndex.Colon, TensorIndex.Slice(0, 1)] }, kernel: kernel);
                Assert.That(MaxDiff(output[0, TensorIndex.Colon, TensorIndex.Slice(0, 1)], alone), Is.LessThan(1e-6), what);
                output.sum().backward();
                foreach (var t in new[] { q, k, v })
                {
                    Assert.That(t.grad!.isfinite().all().item<bool>(), Is.True, what);
                    t.grad!.zero_();
                }
            }
        }
    }

    [Test]
    public void CausalMaskWithFewerQueriesThanKeysAlignsToTheEnd()
    {
        var q = randn(1, 1, 2, 4);
        var k = randn(1, 1, 5, 4);
        var v = randn(1, 1, 5, 4);
        var last = AttentionCore.AttendHeads(q, k, v, AttentionMask.CausalOnly);
        // query 0 is position 3: it sees keys 0..3; query 1 is position 4: it sees all.
        var first = AttentionCore.AttendHeads(q.narrow(2, 0, 1), k.narrow(2, 0, 4), v.narrow(2, 0, 4));
        var second = AttentionCore.AttendHeads(q.narrow(2, 1, 1), k, v);
        Assert.That(MaxDiff(last.narrow(2, 0, 1), first), Is.LessThan(1e-6));
        Assert.That(MaxDiff(last.narrow(2, 1, 1), second), Is.LessThan(1e-6));
    }

    [Test]
    public void DropoutAppliesOnlyInTraining()
    {
        var attention = new MultiHeadAttention(new MultiHeadAttentionOptions { QueryDim = 16, Heads = 2, Dropout = 0.5 });
        var x = randn(2, 8, 16);
        attention.eval();
        Assert.That(MaxDiff(attention.forward(x), attention.forward(x)), Is.EqualTo(0.0));
        attention.train();
        Assert.That(MaxDiff(attention.forward(x), attention.forward(x)), Is.GreaterThan(1e-3));
    }

    [TestCase(ProjectionLayout.Separate)]
    [TestCase(ProjectionLayout.FusedQkv)]
    [TestCase(ProjectionLayout.FusedQkvParameters)]
    [TestCase(ProjectionLayout.SeparateQueryFusedKeyValue)]
    public void GradientsReachEveryParameter(ProjectionLayout layout)
    {
        var attention = new MultiHeadAttention(new MultiHeadAttentionOptions { QueryDim = 16, Heads = 4, Layout = layout });
        var x = randn(2, 5, 16);
        attention.forward(x, null, AttentionMask.FromPadding(tensor(new[,] { { 1L, 1, 1, 1, 1 }, { 1L, 1, 1, 0, 0 } }))).pow(2).sum().backward();
        var parameters = attention.named_parameters().ToList();
        Assert.That(parameters, Is.Not.Empty);
        foreach (var (name, parameter) in parameters)
        {
            Assert.That(parameter.grad, Is.Not.Null, name);
            Assert.That(parameter.grad!.abs().sum().item<float>(), Is.GreaterThan(0f), name);
        }
    }

    [Test]
    public void RunsInBFloat16CloseToFloat32()
    {
        var attention = new MultiHeadAttention(new MultiHeadAttentionOptions { QueryDim = 32, Heads = 4 });
        attention.eval();
        var x = randn(2, 9, 32);
        var padding = tensor(new[,] { { 1L, 1, 1, 1, 1, 1, 1, 1, 1 }, { 1L, 1, 1, 1, 0, 0, 0, 0, 0 } });
        var full = attention.forward(x, null, new AttentionMask { KeyPadding = padding, Causal = true });
        attention.to(ScalarType.BFloat16);
        var half = attention.forward(x.to(ScalarType.BFloat16), null, new AttentionMask { KeyPadding = padding, Causal = true });
        Assert.That(half.dtype, Is.EqualTo(ScalarType.BFloat16));
        Assert.That(MaxDiff(half.to(ScalarType.Float32), full), Is.LessThan(5e-2));
    }

    [Test]
    public void KeyValueCacheGivesTheSameOutputsAsTheFullCausalPass()
    {
        var attention = new MultiHeadAttention(new MultiHeadAttentionOptions { QueryDim = 16, Heads = 4 });
        attention.eval();
        var x = randn(2, 7, 16);
        var full = attention.forward(x, null, AttentionMask.CausalOnly);
        using var cache = new LayerKeyValueCache();
        var prefix = attention.ForwardCached(x.narrow(1, 0, 4), cache, AttentionMask.CausalOnly);
        var steps = new List<Tensor> { prefix };
        for (int t = 4; t < 7; t++) steps.Add(attention.ForwardCached(x.narrow(1, t, 1), cache, AttentionMask.CausalOnly));
        Assert.That(cache.Length, Is.EqualTo(7));
        Assert.That(MaxDiff(cat(steps.ToArray(), 1), full), Is.LessThan(1e-5));
    }

    [Test]
    public void ProjectionNamesFollowTheLayout()
    {
        Assert.That(Keys(new MultiHeadAttention(new MultiHeadAttentionOptions { QueryDim = 8, Heads = 2, Names = AttentionNames.Bert })),
            Is.EquivalentTo(new[] { "query.weight", "query.bias", "key.weight", "key.bias", "value.weight", "value.bias" }));
        Assert.That(Keys(new MultiHeadAttention(new MultiHeadAttentionOptions { QueryDim = 8, Heads = 2, Layout = ProjectionLayout.FusedQkvParameters, Names = AttentionNames.TorchMultiheadAttention })),
            Is.EquivalentTo(new[] { "in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias" }));
        Assert.That(Keys(new MultiHeadAttention(new MultiHeadAttentionOptions { QueryDim = 8, KeyValueDim = 6, HeadDim = 4, Heads = 2, ProjectionBias = false, Layout = ProjectionLayout.SeparateQueryFusedKeyValue, Names = AttentionNames.Flamingo })),
            Is.EquivalentTo(new[] { "to_q.weight", "to_kv.weight", "to_out.weight" }));
    }

    static IEnumerable<string> Keys(nn.Module module) => module.state_dict().Keys;
}
