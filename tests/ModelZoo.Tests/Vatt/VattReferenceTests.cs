using ModelZoo.Models.Vatt;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Vatt;

/// <summary>
/// Behaviour taken from google-research/vatt, checked against plain re-derivations: the T5 text transformer of
/// VATT-MS (t5.py), the spline-resized position tables (transformers.ExpandableEmbedding) and T5's relative buckets.
/// </summary>
public class VattReferenceTests
{
    [Test]
    public void RelativeBucketsFollowT5sFormula()
    {
        // 32 buckets, max distance 64: 16 per direction, distances below 8 exact, then 8 + ⌊ln(n/8) / ln 8 · 8⌋ up to 15;
        // keys after the query use buckets 16-31. Worked by hand: n = 12 → 8 + ⌊1.56⌋ = 9; n = 20 → 8 + ⌊3.53⌋ = 11;
        // n = 40 → 8 + ⌊6.19⌋ = 14; n = 63 → 8 + ⌊7.94⌋ = 15.
        using var buckets = RelativePositionBuckets.Compute(201, 201, 32, 64);
        long Bucket(int relative) => buckets[100, 100 + relative].item<long>();   // relative = key − query
        var expected = new (int Relative, long Bucket)[]
        {
            (0, 0), (-1, 1), (-7, 7), (-8, 8), (-12, 9), (-20, 11), (-40, 14), (-63, 15), (-64, 15), (-100, 15),
            (1, 17), (7, 23), (8, 24), (12, 25), (20, 27), (64, 31), (100, 31),
        };
        foreach (var (relative, bucket) in expected) Assert.That(Bucket(relative), Is.EqualTo(bucket), $"relative position {relative}");
        Assert.That(buckets.min().item<long>(), Is.EqualTo(0));
        Assert.That(buckets.max().item<long>(), Is.EqualTo(31));
    }

    static long HandBucket(long relative, int buckets, int maxDistance)
    {
        long n = -relative, result = 0;
        int half = buckets / 2, exact = half / 2;
        if (n < 0) { result += half; n = -n; }
        if (n < exact) return result + n;
        long large = exact + (long)(Math.Log(n / (double)exact) / Math.Log(maxDistance / (double)exact) * (half - exact));
        return result + Math.Min(large, half - 1);
    }

    [Test]
    public void TheMsTextTowerIsT5AsThePlainMathComputesIt()
    {
        manual_seed(11);
        var config = VattFamily.Tiny;
        using var model = new VattModel(config);
        model.eval();
        var size = config.Text;
        var parameters = model.state_dict();
        Tensor P(string name) => parameters[name];

        // Structure: bias-free projections, RMS attention norm (weight only), LayerNorm with bias before the MLP.
        Assert.That(parameters.Keys, Does.Contain("text_encoder.relative_attention_bias.weight")
            .And.Contain("text_encoder.layers.1.attention.q.weight").And.Contain("text_encoder.layers.1.mlp_norm.bias")
            .And.Contain("text_encoder.final_norm.weight").And.Contain("text_tokenizer.pre_projection.weight"));
        Assert.That(parameters.Keys.Where(k => k.StartsWith("text_encoder.", StringComparison.Ordinal) && k.EndsWith(".bias", StringComparison.Ordinal)),
            Is.EqualTo(Enumerable.Range(0, size.NumLayers).Select(n => $"text_encoder.layers.{n}.mlp_norm.bias")));
        Assert.That(parameters.Keys, Does.Not.Contain("text_tokenizer.pre_projection.bias").And.Not.Contain("text_encoder.final_norm.bias"));
        Assert.That(P("text_encoder.relative_attention_bias.weight").shape, Is.EqualTo(new long[] { size.NumRelativeBuckets, size.NumHeads }));
        Assert.That(P("text_agg").shape, Is.EqualTo(new long[] { config.TxtEmbeddingDim }), "[AGG] joins the word vectors");
        Assert.That(parameters.Keys.Any(k => k.StartsWith("text_tokenizer.position_embeddings", StringComparison.Ordinal)), Is.False, "no absolute text positions");

        // 20 words: relative distances reach the logarithmic buckets.
        int batch = 2, length = 20;
        var ids = randint(1, config.TxtVocabSize, new long[] { batch, length });
        var padding = ones(batch, length, dtype: ScalarType.Bool);
        padding[1, 15..].fill_(false);
        using var _ = no_grad();
        var output = model.EncodeText(ids, padding);

        long d = size.DModel, heads = size.NumHeads, dk = size.DKv, total = length + 1;
        double eps = config.LayerNormEpsilon;
        Tensor Rms(Tensor x, string weight) => P(weight) * x / (x.pow(2).mean(new long[] { -1 }, keepdim: true) + eps).sqrt();
        Tensor Linear(Tensor x, string weight) => matmul(x, P(weight).t());
        Tensor Heads(Tensor x) => x.view(batch, total, heads, dk).transpose(1, 2);

        // LanguageModel: word vectors, [AGG] first, bias-free Dense + GELU.
        var words = P("text_tokenizer.word_embeddings.weight").index_select(0, ids.flatten()).view(batch, length, -1);
        var x = nn.functional.gelu(Linear(cat(new[] { P("text_agg").expand(batch, 1, -1), words }, 1), "text_tokenizer.pre_projection.weight"));
        // T5Encoder: the bias from layer 0's table in every layer, unscaled scores, -1e9 on padding.
        var bucketIds = new long[total * total];
        for (int i = 0; i < total; i++)
        for (int j = 0; j < total; j++) bucketIds[i * total + j] = HandBucket(j - i, size.NumRelativeBuckets, size.MaxRelativeDistance);
        var bias = P("text_encoder.relative_attention_bias.weight").index_select(0, tensor(bucketIds)).view(total, total, heads).permute(2, 0, 1).unsqueeze(0);
        var keyMask = (1 - cat(new[] { ones(batch, 1), padding.to(ScalarType.Float32) }, 1)) * -1e9;
        var scoreBias = bias + keyMask.view(batch, 1, 1, total);
        for (int n = 0; n < size.NumLayers; n++)
        {
            string layer = $"text_encoder.layers.{n}.";
            var h = Rms(x, layer + "attention_norm.weight");
            var q = Heads(Linear(h, layer + "attention.q.weight"));
            var k = Heads(Linear(h, layer + "attention.k.weight"));
            var v = Heads(Linear(h, layer + "attention.v.weight"));
            var weights = (matmul(q, k.transpose(2, 3)) + scoreBias).softmax(-1);
            var attended = matmul(weights, v).transpose(1, 2).reshape(batch, total, heads * dk);
            x = x + Linear(attended, layer + "attention.o.weight");
            h = nn.functional.layer_norm(x, new[] { d }, P(layer + "mlp_norm.weight"), P(layer + "mlp_norm.bias"), eps);
            x = x + Linear(nn.functional.gelu(Linear(h, layer + "mlp.wi.weight")), layer + "mlp.wo.weight");
        }
        x = Rms(x, "text_encoder.final_norm.weight");

        Assert.That((output.Pooled - x.select(1, 0)).abs().max().item<float>(), Is.LessThan(1e-5f));
        Assert.That((output.Tokens[0] - x[0, 1..]).abs().max().item<float>(), Is.LessThan(1e-5f));
        Assert.That((output.Tokens[1, ..15] - x[1, 1..16]).abs().max().item<float>(), Is.LessThan(1e-5f));
    }

    /// <summary>A natural cubic spline through (j / B, y_j), continued linearly past the last knot: solved as a tridiagonal system.</summary>
    static double[] NaturalSpline(double[] y, long size)
    {
        int n = y.Length;
        double h = 1.0 / n;
        var m = new double[n]; // second derivatives, zero at both ends
        if (n > 2)
        {
            int inner = n - 2;
            var diagonal = new double[inner];
            var rhs = new double[inner];
            for (int i = 0; i < inner; i++)
            {
                diagonal[i] = 4 * h / 6;
                rhs[i] = (y[i + 2] - 2 * y[i + 1] + y[i]) / h;
            }
            double off = h / 6;
            for (int i = 1; i < inner; i++)
            {
                double f = off / diagonal[i - 1];
                diagonal[i] -= f * off;
                rhs[i] -= f * rhs[i - 1];
            }
            for (int i = inner - 1; i >= 0; i--)
                m[i + 1] = (rhs[i] - (i + 1 < inner ? off * m[i + 2] : 0)) / diagonal[i];
        }
        var result = new double[size];
        for (long q = 0; q < size; q++)
        {
            double x = q / (double)size;
            int i = Math.Min((int)Math.Floor(x / h), n - 2);
            double left = i * h, right = left + h;
            if (x > (n - 1) * h)
            {
                double slope = (y[n - 1] - y[n - 2]) / h + h * (m[n - 2] + 2 * m[n - 1]) / 6;
                result[q] = y[n - 1] + slope * (x - (n - 1) * h);
                continue;
            }
            result[q] = m[i] * Math.Pow(right - x, 3) / (6 * h) + m[i + 1] * Math.Pow(x - left, 3) / (6 * h)
                        + (y[i] / h - m[i] * h / 6) * (right - x) + (y[i + 1] / h - m[i + 1] * h / 6) * (x - left);
        }
        return result;
    }

    [TestCase(5, 12)]   // longer input: interpolated and extrapolated
    [TestCase(8, 5)]    // shorter input: the reference also resamples (no prefix)
    [TestCase(7, 9)]
    [TestCase(2, 6)]
    public void PositionTablesAreResizedByTheNaturalCubicSpline(int buckets, int size)
    {
        var table = randn(buckets, 3, dtype: ScalarType.Float64);
        using var resized = PositionInterpolation.Resize(table, size);
        Assert.That(resized.shape, Is.EqualTo(new long[] { size, 3 }));
        for (int column = 0; column < 3; column++)
        {
            var expected = NaturalSpline(table[.., column].data<double>().ToArray(), size);
            var actual = resized[.., column].data<double>().ToArray();
            Assert.That(actual, Is.EqualTo(expected).Within(1e-9), $"column {column}");
        }
    }

    [Test]
    public void ResizingKeepsTheTableAtItsOwnSizeAndItsRowsWhereTheGridsMeet()
    {
        var table = randn(8, 4);
        Assert.That(PositionInterpolation.Resize(table, 8).equal(table).all().item<bool>(), Is.True);
        // 4 positions read x = 0, 1/4, 2/4, 3/4: rows 0, 2, 4, 6 of an 8-row table.
        var half = PositionInterpolation.Resize(table, 4);
        Assert.That((half - table.index_select(0, tensor(new long[] { 0, 2, 4, 6 }))).abs().max().item<float>(), Is.LessThan(1e-5f));
        // A table linear in its position stays linear, beyond its last row too.
        var linear = (arange(8, dtype: ScalarType.Float32) / 8).unsqueeze(1) * tensor(new float[] { 2, -3 }) + tensor(new float[] { 1, 0.5f });
        var longer = PositionInterpolation.Resize(linear, 20);
        var expected = (arange(20, dtype: ScalarType.Float32) / 20).unsqueeze(1) * tensor(new float[] { 2, -3 }) + tensor(new float[] { 1, 0.5f });
        Assert.That((longer - expected).abs().max().item<float>(), Is.LessThan(1e-5f));
        // One bucket: every position reads it.
        var single = randn(1, 4);
        Assert.That((PositionInterpolation.Resize(single, 3) - single).abs().max().item<float>(), Is.EqualTo(0f));
    }

    [Test]
    public void ResizeMatricesAreCachedPerDtypeAndDeviceAndEvictedOnesDisposed()
    {
        // Sizes no other test uses (the cache is shared by the process).
        const long buckets = 3, size = 1001;
        List<Tensor> Cached(long s, ScalarType dtype) => PositionInterpolation.CacheSnapshot()
            .Where(e => e.Key.Buckets == buckets && e.Key.Size == s && e.Key.Dtype == dtype && e.Key.DeviceType == DeviceType.CPU).Select(e => e.Matrix).ToList();
        using var t32 = randn(buckets, 2);
        using var t64 = randn(buckets, 2, dtype: ScalarType.Float64);
        using var first = PositionInterpolation.Resize(t32, size);
        var float32 = Cached(size, ScalarType.Float32);
        Assert.That(float32, Has.Count.EqualTo(1), "the float32 matrix is cached as float32 (no conversion per forward pass)");
        Assert.That(float32[0].dtype, Is.EqualTo(ScalarType.Float32));
        using var again = PositionInterpolation.Resize(t32, size);
        Assert.That(Cached(size, ScalarType.Float32).Single(), Is.SameAs(float32[0]), "reused, not rebuilt");
        Assert.That(again.equal(first).all().item<bool>(), Is.True);
        using var wide = PositionInterpolation.Resize(t64, size);
        Assert.That(Cached(size, ScalarType.Float64).Single().dtype, Is.EqualTo(ScalarType.Float64), "float64 is its own entry");

        // A caller's handle outlives eviction; the evicted cache entries themselves are disposed.
        using var kept = PositionInterpolation.Matrix(buckets, size, ScalarType.Float32, CPU);
        var expected = kept.clone();
        for (int i = 0; i < 70; i++)
        {
            using var m = PositionInterpolation.Matrix(buckets, 2000 + i);
        }
        Assert.That(float32[0].IsInvalid, Is.True, "the evicted float32 matrix was disposed");
        Assert.That(PositionInterpolation.CacheSnapshot(), Has.Count.LessThanOrEqualTo(64));
        Assert.That(kept.equal(expected).all().item<bool>(), Is.True, "the caller's handle still reads the matrix");
        using var rebuilt = PositionInterpolation.Resize(t32, size);
        Assert.That(rebuilt.equal(first).all().item<bool>(), Is.True);
    }

    [Test]
    public void GradientsReachTheLearnedRowsThroughTheResize()
    {
        var table = randn(6, 2).requires_grad_(true);
        PositionInterpolation.Resize(table, 15).pow(2).sum().backward();
        Assert.That(table.grad, Is.Not.Null);
        Assert.That(table.grad!.abs().min().item<float>(), Is.GreaterThan(0f));
    }

    [Test]
    public void InputsLongerThanTheBucketsUseResizedPositions()
    {
        using var model = new VattModel(VattFamily.Tiny);   // 4 temporal / 4 spatial video buckets, 64 audio buckets
        model.eval();
        using var _ = no_grad();
        var video = model.EncodeVideo(rand(new long[] { 1, 10, 48, 16, 3 }));   // 5 x 6 x 2 voxels
        Assert.That(video.Grid, Is.EqualTo(new long[] { 5, 6, 2 }));
        Assert.That(video.Tokens.shape, Is.EqualTo(new long[] { 1, 60, 64 }));
        Assert.That(video.Pooled.isfinite().all().item<bool>(), Is.True);
        var audio = model.EncodeAudio(randn(1, 32 * 100));
        Assert.That(audio.Tokens.shape, Is.EqualTo(new long[] { 1, 100, 64 }));

        // The video positions: per axis, the resized table read at each token's index, summed.
        var embeddings = new AxisPositionEmbeddings(8, new[] { ("temporal", 4), ("vertical", 3) }, 1e-6, 0);
        var positions = embeddings.Positions(new long[] { 6, 2 }, "test");
        var parameters = embeddings.state_dict();
        var temporal = PositionInterpolation.Resize(parameters["temporal_position_embeddings.weight"], 6);
        var vertical = PositionInterpolation.Resize(parameters["vertical_position_embeddings.weight"], 2);
        for (int t = 0; t < 6; t++)
        for (int v = 0; v < 2; v++)
            Assert.That((positions[t * 2 + v] - temporal[t] - vertical[v]).abs().max().item<float>(), Is.LessThan(1e-6f));
    }
}
