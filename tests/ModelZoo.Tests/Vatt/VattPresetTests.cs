using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Vatt;
using ModelZoo.Tests.Support;
using NUnit.Framework;

namespace ModelZoo.Tests.Vatt;

public class VattPresetTests
{
    static long Linear(long input, long output, bool bias = true) => input * output + (bias ? output : 0);

    /// <summary>Pre-norm layer: two LayerNorms, q/k/v/o with biases, GELU MLP with biases.</summary>
    static long Layer(long d, long ff) => 2 * 2 * d + 4 * Linear(d, d) + Linear(d, ff) + Linear(ff, d);

    static long Encoder(VattTransformerConfig t) => t.NumLayers * Layer(t.DModel, t.DFf) + 2 * t.DModel;

    /// <summary>
    /// T5 text layer (vatt t5.EncoderLayer): RMS norm (weight only), bias-free q/k/v [d, h·d_kv] and o [h·d_kv, d],
    /// a LayerNorm with bias, bias-free wi/wo.
    /// </summary>
    static long TextLayer(VattTransformerConfig t)
    {
        long d = t.DModel, inner = (long)t.NumHeads * t.DKv;
        return d + 3 * Linear(d, inner, false) + Linear(inner, d, false) + 2 * d + Linear(d, t.DFf, false) + Linear(t.DFf, d, false);
    }

    /// <summary>T5 text transformer: one relative bias table [buckets, heads] shared by the layers, a final RMS norm.</summary>
    static long TextEncoder(VattTransformerConfig t) => (long)t.NumRelativeBuckets * t.NumHeads + t.NumLayers * TextLayer(t) + t.DModel;

    /// <summary>Parameters of a VATT model worked out from its config.</summary>
    public static long Parameters(VattConfig c)
    {
        bool agnostic = c.Backbone == VattBackbone.ModalityAgnostic;
        long dv = agnostic ? c.Unified.DModel : c.Video.DModel;
        long da = agnostic ? c.Unified.DModel : c.Audio.DModel;
        long dt = agnostic ? c.Unified.DModel : c.Text.DModel;
        long pre(long d) => agnostic ? Linear(d, d) : 0;
        long video = Linear((long)c.VidTemporalPatchSize * c.VidSpatialPatchSize * c.VidSpatialPatchSize * 3, dv) + pre(dv)
                     + (c.MaxVidTemporalBuckets + 2L * c.MaxVidSpatialBuckets) * dv + 2 * dv;
        long audio = Linear(c.AudTemporalPatchSize, da) + pre(da) + (long)c.MaxAudTemporalBuckets * da + 2 * da;
        // VATT-MA: Dense + GELU and 16 position buckets with their LayerNorm; VATT-MS: a bias-free pre-projection, no positions.
        long text = (long)c.TxtVocabSize * c.TxtEmbeddingDim + (agnostic
            ? Linear(c.TxtEmbeddingDim, dt) + (long)c.MaxTxtTemporalBuckets * dt + 2 * dt
            : Linear(c.TxtEmbeddingDim, dt, false));
        // [AGG] vectors; VATT-MS text's sits among the word vectors (txt_embedding_dim wide).
        long agg = dv + da + (agnostic ? dt : c.TxtEmbeddingDim);
        long encoders = agnostic ? Encoder(c.Unified) : Encoder(c.Video) + Encoder(c.Audio) + TextEncoder(c.Text);
        long pooledV = dv, pooledA = da, pooledT = dt, post = 0;
        if (agnostic)
        {
            post = 3 * Linear(c.Unified.DModel, c.DPostProj);
            pooledV = pooledA = pooledT = c.DPostProj;
        }
        long va = c.VideoAudioDim, vat = c.VideoAudioTextDim;
        long spaces = Linear(pooledV, va, false) + 2 * va + Linear(va, va, false) + 2 * va + Linear(va, vat, false) + 2 * vat
                      + Linear(pooledA, va) + Linear(pooledT, vat);
        return video + audio + text + agg + encoders + post + spaces;
    }

    [TestCase("vatt-ms-base")]
    [TestCase("vatt-ms-medium")]
    [TestCase("vatt-ms-large")]
    [TestCase("vatt-ma-medium")]
    [TestCase("vatt-tiny")]
    [TestCase("vatt-ma-tiny")]
    public void PresetCountEqualsTheArithmeticOfItsConfig(string name)
    {
        var description = ModelCatalog.Default.Describe(name);
        Assert.That(description.Parameters, Is.EqualTo(Parameters((VattConfig)description.Preset.Config)));
    }

    [Test]
    public void PublishedSizesAreThePapersShapes()
    {
        var ms = VattFamily.MsBase;
        Assert.That((ms.Video.DModel, ms.Video.NumLayers, ms.Video.NumHeads, ms.Video.DFf), Is.EqualTo((768, 12, 12, 3072)));
        Assert.That((VattFamily.MsMedium.Video.DModel, VattFamily.MsMedium.Video.NumLayers, VattFamily.MsMedium.Video.NumHeads, VattFamily.MsMedium.Video.DFf), Is.EqualTo((1024, 12, 16, 4096)));
        Assert.That((VattFamily.MsLarge.Video.DModel, VattFamily.MsLarge.Video.NumLayers, VattFamily.MsLarge.Video.NumHeads, VattFamily.MsLarge.Video.DFf), Is.EqualTo((1024, 24, 16, 4096)));
        Assert.That((ms.Text.DModel, ms.Text.DKv, ms.Text.NumLayers, ms.Text.NumHeads, ms.Text.DFf), Is.EqualTo((512, 64, 6, 8, 2048)), "t5_small");
        Assert.That((ms.Text.NumRelativeBuckets, ms.Text.MaxRelativeDistance), Is.EqualTo((32, 64)));
        Assert.That((ms.VidTemporalPatchSize, ms.VidSpatialPatchSize, ms.AudTemporalPatchSize, ms.MaxAudTemporalBuckets), Is.EqualTo((4, 16, 128, 1200)));
        Assert.That((ms.VideoAudioDim, ms.VideoAudioTextDim, ms.DropTokenRate, ms.LayerNormEpsilon), Is.EqualTo((512, 256, 0.5, 1e-6)));
        // The transformer stacks alone, for reference: Base 85,054,464 (video) + 85,054,464 (audio); t5_small text:
        // 6 x (512 + 4 x 512² + 2 x 512 + 2 x 512 x 2048) + 32 x 8 + 512 = 18,884,352.
        Assert.That(12 * Layer(768, 3072), Is.EqualTo(85_054_464L));
        Assert.That(6 * (512 + 4 * 512L * 512 + 2 * 512 + 2 * 512L * 2048) + 32 * 8 + 512, Is.EqualTo(18_884_352L));
        Assert.That(TextEncoder(ms.Text), Is.EqualTo(18_884_352L));
    }

    [Test]
    public void RealInstancesCountLikeTheArithmetic()
    {
        foreach (var config in new[] { VattFamily.Tiny, VattFamily.MaTiny })
        {
            using var model = new VattModel(config);
            Assert.That(model.parameters().Sum(p => p.numel()), Is.EqualTo(Parameters(config)));
        }
    }

    // The counts docs/clip-vatt.md publishes, pinned: a change to a module or preset that moves them fails here.
    [TestCase("vatt-ms-base", 213_538_092L)]
    [TestCase("vatt-ms-medium", 280_566_572L)]
    [TestCase("vatt-ms-large", 431_721_260L)]
    [TestCase("vatt-ma-medium", 182_651_136L)]
    [TestCase("vatt-tiny", 205_696L)]
    [TestCase("vatt-ma-tiny", 145_040L)]
    public void DocumentedPresetCounts(string name, long parameters) =>
        Assert.That(ModelCatalog.Default.Describe(name).Parameters, Is.EqualTo(parameters));

    [TestCase("vatt-tiny")]
    [TestCase("vatt-ma-tiny")]
    public void InfoJsonCountsTheModelThatCreateReturns(string name)
    {
        var (code, output, error) = CliRunner.Run("info", name, "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(output);
        using var model = ModelCatalog.Default.Create(name);
        long created = model.parameters().Sum(p => p.numel());
        Assert.That(json.RootElement.GetProperty("parameters").GetInt64(), Is.EqualTo(created));
        Assert.That(created, Is.EqualTo(Parameters((VattConfig)ModelCatalog.Default.Get(name).Config)));
    }
}
