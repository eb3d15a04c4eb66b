using System.Text.Json;
using ModelZoo.Cli.Commands;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Flamingo;
using ModelZoo.Models.Generation;
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

    static long[] TokensOf(string output) => Json(output).GetProperty("tokens").EnumerateArray().Select(t => t.GetInt64()).ToArray();

    [Test]
    public void SeededSamplingGivesTheSameTokensTwice()
    {
        var args = new[] { "generate", "--model", "flamingo-tiny", "--image", Image("gray.png"), "--prompt-ids", "50258 464 3290 286", "--max-new-tokens", "8",
            "--sample", "--temperature", "1.3", "--top-k", "40", "--top-p", "0.9", "--seed", "11", "--json" };
        var (code, output, error) = CliRunner.Run(args);
        Assert.That(code, Is.EqualTo(0), error);
        var (code2, output2, error2) = CliRunner.Run(args);
        Assert.That(code2, Is.EqualTo(0), error2);
        var first = TokensOf(output);
        Assert.That(first.Length, Is.InRange(1, 8));
        Assert.That(TokensOf(output2), Is.EqualTo(first));
    }

    [Test]
    public void WeightsFromSafetensorsGiveWhatCSharpGenerates()
    {
        manual_seed(17);
        using var source = new FlamingoModel(FlamingoFamily.Tiny);
        GenerationTests.Sharpen(source, 0.05);
        var state = source.state_dict();
        var file = SafetensorsBuilder.Write(Path.Combine(directory, "flamingo-tiny.safetensors"), state);
        // the same model in three files: vision tower, decoder, the rest
        string Part(string name, Func<string, bool> take) =>
            SafetensorsBuilder.Write(Path.Combine(directory, name), state.Where(kv => take(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value));
        var parts = new[]
        {
            Part("vision.safetensors", k => k.StartsWith("vision_encoder.")),
            Part("lm.safetensors", k => k.StartsWith("lang_encoder.transformer.")),
            Part("trained.safetensors", k => k.StartsWith("perceiver.") || k.StartsWith("lang_encoder.gated_cross_attn_layers.")),
        };
        long[] prompt = { 50258, 464, 3290, 50257, 50258, 464 };

        using var model = ModelCatalog.Default.Create<FlamingoModel>("flamingo-tiny", new ModelCreateOptions { WeightsPath = file });
        var images = stack(new[] { GenerateImages.Load(Image("gray.png"), 32), GenerateImages.Load(Image("red.png"), 32) }).unsqueeze(1).unsqueeze(0);
        var expected = model.Generate(images, new[] { prompt }, new GenerationOptions { MaxNewTokens = 6 })[0].Tokens;

        string[] Args(params string[] weights) => new[] { "generate", "--model", "flamingo-tiny", "--image", Image("gray.png"), "--image", Image("red.png"),
            "--prompt-ids", string.Join(' ', prompt), "--max-new-tokens", "6", "--seed", "99", "--json" }.Concat(weights.SelectMany(w => new[] { "--weights", w })).ToArray();
        var (code, output, error) = CliRunner.Run(Args(file));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(Json(output).GetProperty("randomWeights").GetBoolean(), Is.False);
        Assert.That(TokensOf(output), Is.EqualTo(expected));
        var (multiCode, multi, multiError) = CliRunner.Run(Args(parts));
        Assert.That(multiCode, Is.EqualTo(0), multiError);
        Assert.That(TokensOf(multi), Is.EqualTo(expected), "--weights three times = the whole file");
        var (missingCode, _, missingError) = CliRunner.Run(Args(parts[0], parts[1]));
        Assert.That(missingCode, Is.EqualTo(1));
        Assert.That(missingError, Does.Contain("perceiver.latents"));
        var (randomCode, random, randomError) = CliRunner.Run(Args());
        Assert.That(randomCode, Is.EqualTo(0), randomError);
        Assert.That(TokensOf(random), Is.Not.EqualTo(expected), "without --weights: other (random) weights");
    }

    [TestCase("mpt-tiny")]
    [TestCase("llama-tiny")]
    public void MptAndLlamaPresetsGenerateFromIds(string preset)
    {
        long[] prompt = { 3, 99, 1000, 7, 31 };
        var (code, output, error) = CliRunner.Run("generate", "--model", preset, "--prompt-ids", string.Join(',', prompt), "--max-new-tokens", "5", "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var module = ModelCatalog.Default.Create(preset, new ModelCreateOptions { Seed = 0 });
        var decoder = (IDecoderLanguageModel)module;
        long[] stop = decoder is ModelZoo.Models.Llama.LlamaForCausalLM llama ? new long[] { llama.Config.EosTokenId!.Value } : Array.Empty<long>();
        var expected = TextGenerator.Generate(new DecoderGenerativeModel(decoder), new[] { prompt },
            new GenerationOptions { MaxNewTokens = 5, StopTokenIds = stop, PadTokenId = stop.Length > 0 ? stop[0] : 0 })[0].Tokens;
        Assert.That(TokensOf(output), Is.EqualTo(expected));

        var (textCode, _, textError) = CliRunner.Run("generate", "--model", preset, "--prompt", "Hello", "--max-new-tokens", "2");
        Assert.That(textCode, Is.EqualTo(1));
        Assert.That(textError, Does.Contain("--prompt-ids"));
        Assert.That(textError, preset.StartsWith("llama", StringComparison.Ordinal) ? Does.Contain("SentencePiece") : Does.Contain("--vocab"));
        var (rangeCode, _, rangeError) = CliRunner.Run("generate", "--model", preset, "--prompt-ids", "5 999999", "--max-new-tokens", "2");
        Assert.That(rangeCode, Is.EqualTo(1));
        Assert.That(rangeError, Does.Contain("999999"));
    }

    [Test]
    public void OpenFlamingoTextPromptsAskForTheModelsTokenizer()
    {
        // Checked before the 3B model is built: the bundled gpt2-flamingo ids do not fit an MPT decoder.
        var (code, _, error) = CliRunner.Run("generate", "--model", "openflamingo-3b-vitl-mpt1b", "--image", Image("gray.png"), "--prompt", "<image>An image of");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("--vocab").And.Contain("tokenizer.json").And.Contain("--prompt-ids").And.Contain("GPT-NeoX"));
        Assert.That(error, Does.Not.Contain("e.g. gpt2-flamingo"));
        var (infoCode, info, infoError) = CliRunner.Run("info", "openflamingo-3b-vitl-mpt1b");
        Assert.That(infoCode, Is.EqualTo(0), infoError);
        Assert.That(info, Does.Contain("3 files").And.Contain("ViT-L-14").And.Contain("mpt-1b-redpajama-200b").And.Contain("checkpoint.pt").And.Contain("QK LayerNorm"));
    }
}
