using ModelZoo.Models.Lxmert;
using ModelZoo.Models.TwoStream;
using ModelZoo.Models.Vilbert;
using NUnit.Framework;
using static ModelZoo.Tests.TwoStream.TwoStreamTestKit;
using static TorchSharp.torch;

namespace ModelZoo.Tests.TwoStream;

public class RegionVqaTests : SingleThreadedTests
{
    // One 200x100 image with three detector boxes, one 50x40 image with two.
    static RegionVqaInput First(long[] tokens) => new(tokens,
        tensor(new float[,] { { 1, 2, 3, 4, 5, 6 }, { 0, 1, 0, 1, 0, 1 }, { 2, 2, 2, 2, 2, 2 } }),
        tensor(new float[,] { { 20, 10, 120, 60 }, { 0, 0, 200, 100 }, { 100, 50, 150, 100 } }), 200, 100);
    static RegionVqaInput Second(long[] tokens) => new(tokens,
        tensor(new float[,] { { -1, 0, 1, 0, -1, 0 }, { 3, 1, 4, 1, 5, 9 } }),
        tensor(new float[,] { { 5, 4, 25, 24 }, { 0, 20, 50, 40 } }), 50, 40);

    [Test]
    public void VilbertAddsTheWholeImageRegionAndFiveDimensionalLocations()
    {
        var inputs = new[] { First(new long[] { 2, 9, 8, 3 }) };
        var (features, locations, mask) = VilbertRegions.Batch(inputs, 6, 100, ScalarType.Float32, CPU);
        // Region 0: the mean of the detector features, at (0, 0, 1, 1) covering the whole area.
        Assert.That(MaxAbs(features[0, 0], tensor(new float[] { 1, 5 / 3f, 5 / 3f, 7 / 3f, 7 / 3f, 3 })), Is.LessThan(1e-6));
        Assert.That(MaxAbs(features[0, 1], tensor(new float[] { 1, 2, 3, 4, 5, 6 })), Is.EqualTo(0));
        // (20, 10, 120, 60) in 200x100: x/W, y/H and the area 100*50 / (200*100).
        var expected = tensor(new float[,] { { 0, 0, 1, 1, 1 }, { 0.1f, 0.1f, 0.6f, 0.6f, 0.25f }, { 0, 0, 1, 1, 1 }, { 0.5f, 0.5f, 0.75f, 1, 0.125f } });
        Assert.That(MaxAbs(locations[0], expected), Is.LessThan(1e-6));
        Assert.That(mask[0].data<long>().ToArray(), Is.EqualTo(new long[] { 1, 1, 1, 1 }));
        // The cut keeps the first regions but the whole-image feature still averages all of them.
        var (cutFeatures, cutLocations, _) = VilbertRegions.Batch(inputs, 6, 2, ScalarType.Float32, CPU);
        Assert.That(cutFeatures.shape, Is.EqualTo(new long[] { 1, 3, 6 }));
        Assert.That(MaxAbs(cutFeatures[0, 0], features[0, 0]), Is.EqualTo(0));
        Assert.That(MaxAbs(cutLocations[0], expected.narrow(0, 0, 3)), Is.LessThan(1e-6));
    }

    [Test]
    public void TheModelsBuildTheirBoxInputsWithTheFeatureFileFunctions()
    {
        // One implementation: the models' region inputs equal BoxFeatures on the same regions, bit for bit.
        var random = new Random(5);
        var r = new ModelZoo.Processing.Regions.RegionFeatures
        {
            ImageId = "1", ImageWidth = 333, ImageHeight = 217, BoxCount = 7, FeatureSize = 6,
            Features = Enumerable.Range(0, 42).Select(_ => (float)random.NextDouble() * 3).ToArray(),
            Boxes = Enumerable.Range(0, 7).SelectMany(_ => { float x = (float)random.NextDouble() * 150, y = (float)random.NextDouble() * 100; return new[] { x, y, x + 1.7f + (float)random.NextDouble() * 170, y + 3.1f + (float)random.NextDouble() * 110 }; }).ToArray(),
        };
        var regions = ModelZoo.Models.OneStream.DetectorRegions.From(r);
        var input = new RegionVqaInput(new long[] { 2, 9, 3 }, regions.Features, regions.Boxes!, regions.ImageWidth, regions.ImageHeight);

        var (features, locations, _) = VilbertRegions.Batch(new[] { input }, 6, 100, ScalarType.Float32, CPU);
        var (expectedFeatures, expectedLocations, count) = ModelZoo.Processing.Regions.BoxFeatures.Vilbert(r);
        Assert.That(features[0].data<float>().ToArray(), Is.EqualTo(expectedFeatures));
        Assert.That(locations[0].data<float>().ToArray(), Is.EqualTo(expectedLocations));
        Assert.That(count, Is.EqualTo(8));

        // LXMERT: the answer logits equal the model run on BoxFeatures.Lxmert of the same file.
        using var lxmert = TinyLxmert();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var logits = ((IRegionVqaModel)lxmert).AnswerLogits(new[] { input });
        var boxes = tensor(ModelZoo.Processing.Regions.BoxFeatures.Lxmert(r), new long[] { 1, 7, 4 });
        var (_, direct) = lxmert.forward(tensor(new long[,] { { 2, 9, 3 } }), regions.Features.unsqueeze(0), boxes, ones(1, 3, dtype: ScalarType.Int64), ones(1, 7, dtype: ScalarType.Int64));
        Assert.That(MaxAbs(logits, direct), Is.EqualTo(0));
        // UNITER's collate-side boxes are the same function as its feature-file boxes.
        var uniter = ModelZoo.Models.Uniter.UniterInputs.BoxFeatures(regions.Boxes!, r.ImageWidth, r.ImageHeight);
        Assert.That(uniter.data<float>().ToArray(), Is.EqualTo(ModelZoo.Processing.Regions.BoxFeatures.Uniter(r)));
    }

    static VilbertForVLTasks TinyVilbert()
    {
        manual_seed(21);
        var model = new VilbertForVLTasks(new VilbertConfig
        {
            VocabSize = 30, HiddenSize = 16, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 24, MaxPositionEmbeddings = 30,
            VFeatureSize = 6, VHiddenSize = 12, VNumHiddenLayers = 2, VNumAttentionHeads = 2, VIntermediateSize = 20, BiHiddenSize = 8,
            BiNumAttentionHeads = 2, VBiattentionId = new[] { 1 }, TBiattentionId = new[] { 1 }, TaskSpecificTokens = true, InitializerRange = 0.2,
        });
        model.eval();
        return model;
    }

    static LxmertForQuestionAnswering TinyLxmert()
    {
        manual_seed(22);
        var model = new LxmertForQuestionAnswering(new LxmertConfig
        {
            VocabSize = 30, HiddenSize = 16, NumAttentionHeads = 4, IntermediateSize = 24, MaxPositionEmbeddings = 30,
            LLayers = 1, XLayers = 2, RLayers = 1, VisualFeatDim = 6, InitializerRange = 0.2,
        }, 11);
        model.eval();
        return model;
    }

    [Test]
    public void VilbertAnswersEqualTheModelOnHandBuiltInputsAndBatchingChangesNothing()
    {
        using var model = TinyVilbert();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var q1 = First(new long[] { 2, 9, 8, 3 });
        var q2 = Second(new long[] { 2, 5, 6, 7, 11, 3 });
        var logits = ((IRegionVqaModel)model).AnswerLogits(new[] { q1, q2 });
        Assert.That(logits.shape, Is.EqualTo(new long[] { 2, 3129 }));

        // Question 1 by hand: task token 1 (VQA), region 0 = mean feature at (0, 0, 1, 1, 1).
        var features = cat(new[] { q1.Features.mean(new long[] { 0 }, keepdim: true), q1.Features }, 0).unsqueeze(0);
        var locations = tensor(new float[,] { { 0, 0, 1, 1, 1 }, { 0.1f, 0.1f, 0.6f, 0.6f, 0.25f }, { 0, 0, 1, 1, 1 }, { 0.5f, 0.5f, 0.75f, 1, 0.125f } }).unsqueeze(0);
        var manual = model.forward(tensor(new long[,] { { 2, 9, 8, 3 } }), features, locations, taskIds: tensor(new long[,] { { 1 } }));
        Assert.That(MaxAbs(logits.narrow(0, 0, 1), manual.VilPrediction), Is.LessThan(2e-5));

        var alone = ((IRegionVqaModel)model).AnswerLogits(new[] { q2 });
        Assert.That(MaxAbs(logits.narrow(0, 1, 1), alone), Is.LessThan(2e-5));
        model.VqaHead = VilbertVqaHead.Gqa;
        Assert.That(((IRegionVqaModel)model).AnswerLogits(new[] { q1 }).shape, Is.EqualTo(new long[] { 1, 1533 }));
    }

    [Test]
    public void LxmertAnswersEqualTheModelOnHandBuiltInputsAndBatchingChangesNothing()
    {
        using var model = TinyLxmert();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var q1 = First(new long[] { 2, 9, 8, 3 });
        var q2 = Second(new long[] { 2, 5, 6, 7, 11, 3 });
        var logits = ((IRegionVqaModel)model).AnswerLogits(new[] { q1, q2 });
        Assert.That(logits.shape, Is.EqualTo(new long[] { 2, 11 }));
        var boxes = tensor(new float[,] { { 0.1f, 0.1f, 0.6f, 0.6f }, { 0, 0, 1, 1 }, { 0.5f, 0.5f, 0.75f, 1 } }).unsqueeze(0);
        var (_, manual) = model.forward(tensor(new long[,] { { 2, 9, 8, 3 } }), q1.Features.unsqueeze(0), boxes);
        Assert.That(MaxAbs(logits.narrow(0, 0, 1), manual), Is.LessThan(2e-5));
        Assert.That(MaxAbs(logits.narrow(0, 1, 1), ((IRegionVqaModel)model).AnswerLogits(new[] { q2 })), Is.LessThan(2e-5));
    }

    [Test]
    public void BadQuestionsAndRegionsAreClearErrors()
    {
        using var model = TinyLxmert();
        using var scope = NewDisposeScope();
        IRegionVqaModel vqa = model;
        var e = Assert.Throws<ArgumentException>(() => vqa.AnswerLogits(new[] { First(Enumerable.Repeat(5L, 21).ToArray()) }));
        Assert.That(e!.Message, Does.Contain("21 tokens").And.Contain("20"));
        var wrong = First(new long[] { 2, 3 }) with { Features = zeros(3, 5) };
        e = Assert.Throws<ArgumentException>(() => vqa.AnswerLogits(new[] { wrong }));
        Assert.That(e!.Message, Does.Contain("[regions, 6]").And.Contain("[3, 5]"));
        e = Assert.Throws<ArgumentException>(() => vqa.AnswerLogits(new[] { First(new long[] { 2, 3 }) with { ImageWidth = 0 } }));
        Assert.That(e!.Message, Does.Contain("image size"));
        Assert.Throws<ArgumentException>(() => vqa.AnswerLogits(Array.Empty<RegionVqaInput>()));
    }
}
