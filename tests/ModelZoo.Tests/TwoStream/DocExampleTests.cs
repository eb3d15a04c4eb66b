using ModelZoo.Models.Lxmert;
using ModelZoo.Models.TwoStream;
using ModelZoo.Tests.Support;
using ModelZoo.Tokenization;
using ModelZoo.Tokenization.Bert;
using ModelZoo.Weights;
using NUnit.Framework;
using static TorchSharp.torch;

namespace ModelZoo.Tests.TwoStream;

/// <summary>The C# example of docs/two-stream.md, line for line, on a small LXMERT instead of the 214M-parameter preset.</summary>
public class DocExampleTests : SingleThreadedTests
{
    [Test]
    public void TheVqaExampleRuns()
    {
        var dir = TestPaths.TempDirectory();
        try
        {
            var file = Path.Combine(dir, "val2014_000000262148.safetensors");
            SafetensorsBuilder.Write(file, new Dictionary<string, Tensor> { ["features"] = rand(7, 2048), ["boxes"] = tensor(new float[,] { { 10, 20, 300, 400 } }).expand(7, 4).contiguous() });
            var answers = Enumerable.Range(0, 3129).Select(i => $"answer {i}").ToArray();

            using var model = new LxmertForQuestionAnswering(new LxmertConfig { LLayers = 1, XLayers = 1, RLayers = 1, HiddenSize = 64, NumAttentionHeads = 4, IntermediateSize = 64 }, 3129);
            model.eval();
            var vqa = (IRegionVqaModel)model;
            var question = BertWordPieceTokenizer.BaseUncased().Encode("what is the man holding?", new() { MaxLength = vqa.MaxQuestionTokens, Padding = Padding.None });
            using var regions = new SafetensorsReader(file);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var logits = vqa.AnswerLogits(new[] { new RegionVqaInput(question.InputIds.Select(i => (long)i).ToArray(), regions.Read("features"), regions.Read("boxes"), 640, 480) });
            var answer = answers[(int)logits.argmax(1).item<long>()];
            Assert.That(answer, Does.StartWith("answer "));
            Assert.That(question.InputIds, Is.EqualTo(new[] { 101, 2054, 2003, 1996, 2158, 3173, 1029, 102 }));
        }
        finally { Directory.Delete(dir, true); }
    }
}
