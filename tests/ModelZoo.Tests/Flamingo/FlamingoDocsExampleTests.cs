using ModelZoo.Models.Catalog;
using ModelZoo.Models.Flamingo;
using ModelZoo.Models.Generation;
using ModelZoo.Processing.Images;
using ModelZoo.Tests.Support;
using ModelZoo.Tokenization;
using NUnit.Framework;
using SkiaSharp;

namespace ModelZoo.Tests.Flamingo;

public class FlamingoDocsExampleTests
{
    [Test]
    public void TheCSharpExampleOfTheDocsRuns()
    {
        var directory = TestPaths.TempDirectory();
        try
        {
            foreach (var (name, color) in new[] { ("cat.jpg", new SKColor(200, 120, 40)), ("sink.jpg", new SKColor(220, 220, 230)) })
            {
                using var bitmap = new SKBitmap(50, 40);
                bitmap.Erase(color);
                using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
                File.WriteAllBytes(Path.Combine(directory, name), data.ToArray());
            }
            string cat = Path.Combine(directory, "cat.jpg"), sink = Path.Combine(directory, "sink.jpg");

            // docs/flamingo.md, "C#", line for line (file names aside)
            using var model = ModelCatalog.Default.Create<FlamingoModel>("flamingo-tiny");
            var tokenizer = TokenizerFactory.Create("gpt2-flamingo");
            var prompt = FlamingoPrompts.FewShotVqa(new[] { ("What is on the table?", "a cat") }, "What color is the sink?");
            long[] ids = FlamingoPrompts.Encode(tokenizer, model.Config, prompt);
            var images = new ClipImageProcessor(model.Config.VisionEncoder.ImageSize).ProcessFiles(new[] { cat, sink }).Pixels;
            var result = model.Generate(images.unsqueeze(1).unsqueeze(0), new[] { ids }, new GenerationOptions { MaxNewTokens = 10, NumBeams = 3 });
            var text = tokenizer.Decode(result[0].Tokens.Select(t => (int)t), skipSpecialTokens: true);

            Assert.That(result[0].Tokens.Length, Is.InRange(1, 10));
            Assert.That(text, Is.Not.Null);
        }
        finally { Directory.Delete(directory, true); }
    }
}
