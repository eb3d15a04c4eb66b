using ModelZoo.Attention;
using NUnit.Framework;
using static ModelZoo.Tests.TwoStream.TwoStreamTestKit;
using static TorchSharp.torch;

namespace ModelZoo.Tests.TwoStream;

public class CoAttentionModeTests
{
    [Test]
    public void FlattenedCoAttentionFollowsEvalModeSoDropoutIsOff()
    {
        var a = new MultiHeadAttentionOptions { QueryDim = 8, KeyValueDim = 6, InnerDim = 4, Heads = 2, Dropout = 0.5,
            Names = new AttentionNames { Query = "query1", Key = "key2", Value = "value2", Output = null } };
        var b = new MultiHeadAttentionOptions { QueryDim = 6, KeyValueDim = 8, InnerDim = 4, Heads = 2, Dropout = 0.5,
            Names = new AttentionNames { Query = "query2", Key = "key1", Value = "value1", Output = null } };
        using var co = new CoAttention(a, b, flatten: true);
        Assert.That(co.named_parameters().Select(p => p.name.Split('.')[0]).Distinct().OrderBy(n => n),
            Is.EqualTo(new[] { "key1", "key2", "query1", "query2", "value1", "value2" }));
        co.eval();
        Assert.That(co.AOverB.training || co.BOverA.training, Is.False);
        using var scope = NewDisposeScope();
        var x = randn(2, 5, 8);
        var y = randn(2, 3, 6);
        var first = co.forward(x, y);
        var second = co.forward(x, y);
        Assert.That(MaxAbs(first.A, second.A) + MaxAbs(first.B, second.B), Is.EqualTo(0), "eval mode is deterministic");
        co.train();
        Assert.That(co.AOverB.training && co.BOverA.training, Is.True);
    }
}
