using System.Text.Json;
using ModelZoo.Cli.Commands;
using ModelZoo.Tests.Support;
using NUnit.Framework;
using SkiaSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Generation;

public class GenerateCommandTests
{
    string directory = "";
    int threads;

    [OneTimeSetUp]
    public void Images()
    {
        threads = get_num_threads();
        set_num_threads(1);
        directory = TestPaths.TempDirectory();
        Write("gray.png", 40, 20, new SKColor(128, 128, 128));
        Write("red.png", 24, 48, new SKColor(250, 10, 10));
        File.WriteAllText(Path.Combine(directory, "not-an-image.png"), "hello");
    }

    [OneTimeTearDown]
    public void Clean()
    {
        set_num_threads(threads);
        Directory.Delete(directory, true);
    }

    void Write(string name, int width, int height, SKColor color)
    {
        using var bitmap = new SKBitmap(width, height);
        bitmap.Erase(color);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(Path.Combine(directory, name), data.ToArray());
    }

    string Image(string name) => Path.Combine(directory, name);

    [Test]
    public void ImagesAreResizedCroppedAndNormalisedTheClipWay()
    {
        var gray = GenerateImages.Load(Image("gray.png"), 32);
        Assert.That(gray.shape, Is.EqualTo(new long[] { 3, 32, 32 }));
        var expected = new[] { (128 / 255f - 0.48145466f) / 0.26862954f, (128 / 255f - 0.4578275f) / 0.26130258f, (128 / 255f - 0.40821073f) / 0.27577711f };
        for (int c = 0; c < 3; c++)
            Assert.That((gray[c] - expected[c]).abs().max().item<float>(), Is.LessThan(1e-5f), $"channel {c}");
        var red = GenerateImages.Load(Image("red.png"), 32);
        Assert.That(red[0].mean().item<float>(), Is.GreaterThan(red[1].mean().item<float>() + 2), "RGB order: red stays in channel 0");
        Assert.That(Assert.Throws<InvalidDataException>(() => GenerateImages.Load(Image("not-an-image.png"), 32))!.Message, Does.Contain("not-an-image.png"));
        Assert.Throws<FileNotFoundException>(() => GenerateImages.Load(Image("missing.png"), 32));
    }

    static JsonElement Json(string output)
    {
        using var document = JsonDocument.Parse(output);
        return document.RootElement.Clone();
    }

    [Test]
    public void FlamingoTinyGeneratesFromIdsAndImagesWithAndWithoutTheCache()
    {
        string[] Args(params string[] extra) => new[] { "generate", "--model", "flamingo-tiny", "--image", Image("gray.png"), "--image", Image("red.png"),
            "--prompt-ids", "50258 464 3290 50257 50258 464", "--max-new-tokens", "6", "--json" }.Concat(extra).ToArray();
        var (code, output, error) = CliRunner.Run(Args());
        Assert.That(code, Is.EqualTo(0), error);
        var cached = Json(output);
        Assert.That(cached.GetProperty("randomWeights").GetBoolean(), Is.True);
        Assert.That(cached.GetProperty("images").GetInt32(), Is.EqualTo(2));
        var tokens = cached.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt64()).ToArray();
        Assert.That(tokens.Length, Is.InRange(1, 6));
        Assert.That(cached.GetProperty("completion").GetString(), Is.EqualTo(string.Join(' ', tokens)));

        var (code2, output2, error2) = CliRunner.Run(Args("--no-cache"));
        Assert.That(code2, Is.EqualTo(0), error2);
        Assert.That(Json(output2).GetProperty("tokens").EnumerateArray().Select(t => t.GetInt64()), Is.EqualTo(tokens), "same seed, same random weights, same tokens");

        var (code3, output3, error3) = CliRunner.Run(Args("--beams", "3"));
        Assert.That(code3, Is.EqualTo(0), error3);
        Assert.That(Json(output3).GetProperty("tokens").GetArrayLength(), Is.InRange(1, 6));
    }

    [Test]
    public void TextPromptsGoThroughTheTokenizer()
    {
        var (code, output, error) = CliRunner.Run("generate", "--model", "flamingo-tiny", "--image", Image("gray.png"),
            "--prompt", "<image>An image of", "--max-new-tokens", "4", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        var result = Json(output);
        var tokens = result.GetProperty("tokens").EnumerateArray().Select(t => (int)t.GetInt64()).ToArray();
        var tokenizer = ModelZoo.Tokenization.TokenizerFactory.Create("gpt2-flamingo");
        Assert.That(result.GetProperty("completion").GetString(), Is.EqualTo(tokenizer.Decode(tokens, skipSpecialTokens: true)));
        var (textCode, text, textError) = CliRunner.Run("generate", "--model", "flamingo-tiny", "--image", Image("gray.png"),
            "--prompt", "<image>An image of", "--max-new-tokens", "4");
        Assert.That(textCode, Is.EqualTo(0), textError);
        Assert.That(text.TrimEnd('\n'), Is.EqualTo(tokenizer.Decode(tokens, skipSpecialTokens: true)));
        Assert.That(textError, Does.Contain("new tokens in").And.Contain("random weights"));
    }

    [Test]
    public void Gpt2GeneratesFromText()
    {
        var (code, output, error) = CliRunner.Run("generate", "--model", "gpt2", "--prompt", "The capital of France is", "--max-new-tokens", "2", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        var result = Json(output);
        Assert.That(result.GetProperty("tokens").GetArrayLength(), Is.InRange(1, 2));
        Assert.That(result.GetProperty("images").GetInt32(), Is.EqualTo(0));
    }

    [TestCase("--image", "one image for two markers")]
    [TestCase("--prompt", "both prompt forms")]
    [TestCase("--bad-image", "not an image")]
    [TestCase("--text-model", "images for a text model")]
    public void BadRequestsAreOneClearErrorLine(string kind, string what)
    {
        var args = new List<string> { "generate", "--model", kind == "--text-model" ? "gpt2" : "flamingo-tiny", "--prompt-ids", "50258 5 50258 6", "--max-new-tokens", "2" };
        if (kind != "--image") args.AddRange(new[] { "--image", Image(kind == "--bad-image" ? "not-an-image.png" : "gray.png") });
        args.AddRange(new[] { "--image", Image("gray.png") });
        if (kind == "--prompt") args.AddRange(new[] { "--prompt", "<image>hi" });
        var (code, _, error) = CliRunner.Run(args.ToArray());
        Assert.That(code, Is.EqualTo(1), what);
        Assert.That(error, Does.StartWith("modelzoo: error: "), what);
        Assert.That(error.Trim().Split('\n'), Has.Length.EqualTo(1), what);
        var expected = kind switch
        {
            "--image" => "2 <image> marker(s)",
            "--prompt" => "one of them",
            "--bad-image" => "not-an-image.png",
            _ => "text-only",
        };
        Assert.That(error, Does.Contain(expected), what);
    }
}
