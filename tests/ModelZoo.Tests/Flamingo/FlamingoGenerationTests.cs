using ModelZoo.Models.Flamingo;
using ModelZoo.Models.Generation;
using ModelZoo.Tests.Generation;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Flamingo;

public class FlamingoGenerationTests
{
    // Tiny models decode fastest on one thread (and a busy machine makes two spinning threads much slower).
    int threads;
    [OneTimeSetUp] public void OneThread() { threads = get_num_threads(); set_num_threads(1); }
    [OneTimeTearDown] public void RestoreThreads() => set_num_threads(threads);

    const long Media = FlamingoFamily.Gpt2Media, EndOfChunk = FlamingoFamily.Gpt2EndOfChunk;

    static FlamingoModel Model()
    {
        manual_seed(17);
        var model = new FlamingoModel(FlamingoFamily.Tiny);
        GenerationTests.Sharpen(model, 0.3);
        using (no_grad())
            foreach (var (_, block) in model.LanguageModel.CrossAttention.Blocks) { block.AttentionGate.fill_(0.8f); block.FeedForwardGate.fill_(0.6f); }
        model.eval();
        return model;
    }

    // Two images per prompt at most; the second prompt has one image (its second slot stays zero).
    static readonly long[][] Prompts =
    {
        new[] { Media, 464, 3290, 318, EndOfChunk, Media, 464 },
        new[] { Media, 32, 4286, 286 },
        new[] { 40, 588, Media, 11, 262, 3797, 318, 257, 1332 },
    };

    static Tensor Images()
    {
        manual_seed(5);
        var images = randn(new long[] { 3, 2, 1, 3, 32, 32 });
        images[1, 1] = zeros(1, 3, 32, 32);
        images[2, 1] = zeros(1, 3, 32, 32);
        return images;
    }

    static long[][] Tokens(IReadOnlyList<GeneratedSequence> result) => result.Select(r => r.Tokens).ToArray();

    [Test]
    public void GreedyWithTheCacheEqualsGreedyWithoutItForABatchOfDifferentLengths()
    {
        using var model = Model();
        var images = Images();
        var options = new GenerationOptions { MaxNewTokens = 10, StopTokenIds = new[] { -1L } };
        var cached = model.Generate(images, Prompts, options);
        var uncached = model.Generate(images, Prompts, options with { UseCache = false });
        Assert.That(Tokens(cached), Is.EqualTo(Tokens(uncached)));
        Assert.That(cached.All(r => r.Tokens.Length == 10), Is.True);
        // each prompt alone (no padding, only its own images) gives the same tokens
        for (int i = 0; i < Prompts.Length; i++)
            Assert.That(model.Generate(images.narrow(0, i, 1), new[] { Prompts[i] }, options)[0].Tokens, Is.EqualTo(cached[i].Tokens), $"prompt {i}");
        // and the images matter
        var other = model.Generate(randn(images.shape), Prompts, options);
        Assert.That(Tokens(other), Is.Not.EqualTo(Tokens(cached)));
    }

    [Test]
    public void BeamSearchReordersCacheAndMediaRowsConsistently()
    {
        using var model = Model();
        var images = Images();
        var options = new GenerationOptions { MaxNewTokens = 6, NumBeams = 3 };
        var cached = model.Generate(images, Prompts, options);
        var uncached = model.Generate(images, Prompts, options with { UseCache = false });
        Assert.That(Tokens(cached), Is.EqualTo(Tokens(uncached)));
        for (int i = 0; i < Prompts.Length; i++) Assert.That(cached[i].LogProbability, Is.EqualTo(uncached[i].LogProbability).Within(1e-3));
    }

    [Test]
    public void MediaIsEncodedOncePerCallAndNothingLeaks()
    {
        using var model = Model();
        var images = Images();
        model.Generate(images, Prompts, new GenerationOptions { MaxNewTokens = 5, NumBeams = 2 });
        int before = model.MediaEncodings;
        long live = GenerationTests.LiveTensors();
        model.Generate(images, Prompts, new GenerationOptions { MaxNewTokens = 8, NumBeams = 2 });
        model.Generate(images, Prompts, new GenerationOptions { MaxNewTokens = 8, DoSample = true, Seed = 4 });
        Assert.That(model.MediaEncodings - before, Is.EqualTo(2), "one vision + perceiver pass per generate call, not per token");
        Assert.That(GenerationTests.LiveTensors(), Is.EqualTo(live));
    }

    [Test]
    public void DefaultsStopAtEndOfChunkOrEosAndPadWithThePadToken()
    {
        using var model = Model();
        var options = model.WithDefaults(new GenerationOptions());
        Assert.That(options.StopTokenIds, Is.EqualTo(new[] { EndOfChunk, (long)FlamingoFamily.Gpt2Eos }));
        Assert.That(options.PadTokenId, Is.EqualTo(FlamingoFamily.Gpt2Pad));
        Assert.That(model.WithDefaults(new GenerationOptions { StopTokenIds = new[] { 5L } }).StopTokenIds, Is.EqualTo(new[] { 5L }));
        // a stop token ends its row: take the 3rd greedy token as the stop token
        var free = model.Generate(Images(), Prompts, new GenerationOptions { MaxNewTokens = 6, StopTokenIds = new[] { -1L } });
        long stop = free[0].Tokens[2];
        var stopped = model.Generate(Images(), Prompts, new GenerationOptions { MaxNewTokens = 6, StopTokenIds = new[] { stop } });
        Assert.That(stopped[0].Tokens, Is.EqualTo(free[0].Tokens.Take(Array.IndexOf(free[0].Tokens, stop) + 1).ToArray()));
        Assert.That(stopped[0].Stopped, Is.True);
    }
}
