using ModelZoo.Models.Catalog;
using ModelZoo.Models.Vatt;
using NUnit.Framework;

namespace ModelZoo.Tests.Vatt;

public class VattPresetTests
{
    static long Linear(long input, long output, bool bias = true) => input * output + (bias ? output : 0);

    /// <summary>Pre-norm layer: two LayerNorms, q/k/v/o with biases, GELU MLP with biases.</summary>
    static long Layer(long d, long ff) => 2 * 2 * d + 4 * Linear(d, d) + Linear(d, ff) + Linear(ff, d);

    static long Encoder(VattTransformerConfig t) => t.NumLayers * Layer(t.DModel, t.DFf) + 2 * t.DModel;

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
        long text = (long)c.TxtVocabSize * c.TxtEmbeddingDim + Linear(c.TxtEmbeddingDim, dt) + (long)c.MaxTxtTemporalBuckets * dt + 2 * dt;
        long agg = dv + da + dt;
        long encoders = agnostic ? Encoder(c.Unified) : Encoder(c.Video) + Encoder(c.Audio) + Encoder(c.Text);
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
        Assert.That((ms.Text.DModel, ms.Text.NumLayers, ms.Text.NumHeads, ms.Text.DFf), Is.EqualTo((512, 6, 8, 2048)));
        Assert.That((ms.VidTemporalPatchSize, ms.VidSpatialPatchSize, ms.AudTemporalPatchSize, ms.MaxAudTemporalBuckets), Is.EqualTo((4, 16, 128, 1200)));
        Assert.That((ms.VideoAudioDim, ms.VideoAudioTextDim, ms.DropTokenRate, ms.LayerNormEpsilon), Is.EqualTo((512, 256, 0.5, 1e-6)));
        // The transformer stacks alone, for reference: Base 85,054,464 (video) + 85,054,464 (audio) + 18,914,304 (text).
        Assert.That(12 * Layer(768, 3072), Is.EqualTo(85_054_464L));
        Assert.That(6 * Layer(512, 2048), Is.EqualTo(18_914_304L));
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
}
