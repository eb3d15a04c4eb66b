using ModelZoo.Attention;
using ModelZoo.Models.Catalog;
using NUnit.Framework;
using static TorchSharp.torch;

namespace ModelZoo.Tests.OneStream;

/// <summary>The one-stream families run their encoders on the Attention project's merged arrangement.</summary>
public class MergedArrangementTests
{
    static List<(string Name, Type Type)> Attentions(string preset)
    {
        using var model = ModelCatalog.Default.Create(preset);
        return model.named_modules().Where(m => m.module is MultiHeadAttention).Select(m => (m.name, m.module.GetType())).ToList();
    }

    [TestCase("uniter-tiny-vqa", 2)]
    [TestCase("visualbert-tiny", 2)]
    [TestCase("vilt-tiny", 2)]
    public void EveryEncoderLayerAttendsThroughMergedAttention(string preset, int layers)
    {
        var attentions = Attentions(preset);
        Assert.That(attentions, Has.Count.EqualTo(layers), string.Join(", ", attentions.Select(a => a.Name)));
        Assert.That(attentions.Select(a => a.Type), Has.All.EqualTo(typeof(MergedAttention)), string.Join(", ", attentions));
    }

    [Test]
    public void TextOnlyAndTwoStreamModelsKeepPlainAttention()
    {
        Assert.That(Attentions("bert-tiny").Select(a => a.Type), Has.All.EqualTo(typeof(MultiHeadAttention)));
        Assert.That(Attentions("clip-tiny").Select(a => a.Type), Has.None.EqualTo(typeof(MergedAttention)));
    }
}
