using ModelZoo.Models.Flamingo;
using ModelZoo.Models.Generation;
using ModelZoo.Models.Gpt2;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Generation;

public class GenerationTests
{
    // Tiny models decode fastest on one thread (and a busy machine makes two spinning threads much slower).
    int threads;
    [OneTimeSetUp] public void OneThread() { threads = get_num_threads(); set_num_threads(1); }
    [OneTimeTearDown] public void RestoreThreads() => set_num_threads(threads);

    /// <summary>Random weights with enough spread that next-token distributions are peaked (no near-ties).</summary>
    internal static void Sharpen(nn.Module model, double std = 0.2)
    {
        using var _ = no_grad();
        foreach (var p in model.parameters()) p.add_(randn_like(p) * std);
    }

    static Gpt2LMHeadModel SmallLm(int vocab = 61, long seed = 21)
    {
        manual_seed(seed);
        var model = new Gpt2LMHeadModel(new Gpt2Config { VocabSize = vocab, NPositions = 64, NEmbd = 32, NLayer = 2, NHead = 4, ActivationFunction = "gelu_new" });
        Sharpen(model);
        model.eval();
        return model;
    }

    static readonly long[][] Prompts = { new long[] { 5, 17, 3, 44, 9, 12, 30 }, new long[] { 8 }, new long[] { 40, 2, 33, 7 } };

    static long[][] Tokens(IReadOnlyList<GeneratedSequence> result) => result.Select(r => r.Tokens).ToArray();

    [Test]
    public void GreedyWithTheCacheEqualsGreedyWithoutItForPromptsOfDifferentLengths()
    {
        using var model = SmallLm();
        var generator = new DecoderGenerativeModel(model);
        var cached = TextGenerator.Generate(generator, Prompts, new GenerationOptions { MaxNewTokens = 12, UseCache = true });
        var uncached = TextGenerator.Generate(generator, Prompts, new GenerationOptions { MaxNewTokens = 12, UseCache = false });
        Assert.That(Tokens(cached), Is.EqualTo(Tokens(uncached)));
        Assert.That(cached.All(r => r.Tokens.Length == 12), Is.True);
        for (int i = 0; i < Prompts.Length; i++) Assert.That(cached[i].LogProbability, Is.EqualTo(uncached[i].LogProbability).Within(1e-3));
        // Left padding does not change a row: each prompt alone gives the same tokens.
        for (int i = 0; i < Prompts.Length; i++)
            Assert.That(TextGenerator.Generate(generator, new[] { Prompts[i] }, new GenerationOptions { MaxNewTokens = 12 })[0].Tokens, Is.EqualTo(cached[i].Tokens), $"prompt {i}");
    }

    [Test]
    public void GreedyIsTheArgmaxOfAFullForwardPass()
    {
        using var model = SmallLm();
        var result = TextGenerator.Generate(new DecoderGenerativeModel(model), new[] { Prompts[0] }, new GenerationOptions { MaxNewTokens = 5 });
        var sequence = Prompts[0].ToList();
        using var _ = no_grad();
        foreach (var token in result[0].Tokens)
        {
            var logits = model.ForwardTokens(tensor(sequence.ToArray()).unsqueeze(0));
            Assert.That(logits[0, -1].argmax().item<long>(), Is.EqualTo(token));
            sequence.Add(token);
        }
    }

    [Test]
    public void RowsStopAtTheirStopTokenAndMinNewTokensHoldsItBack()
    {
        using var model = SmallLm();
        var generator = new DecoderGenerativeModel(model);
        var free = TextGenerator.Generate(generator, Prompts, new GenerationOptions { MaxNewTokens = 10 });
        long stopToken = free[0].Tokens[2];
        var stopped = TextGenerator.Generate(generator, Prompts, new GenerationOptions { MaxNewTokens = 10, StopTokenIds = new[] { stopToken }, PadTokenId = 60 });
        int first = Array.IndexOf(free[0].Tokens, stopToken);
        Assert.That(stopped[0].Tokens, Is.EqualTo(free[0].Tokens.Take(first + 1).ToArray()));
        Assert.That(stopped[0].Stopped, Is.True);
        for (int i = 1; i < Prompts.Length; i++)
        {
            int at = Array.IndexOf(free[i].Tokens, stopToken);
            Assert.That(stopped[i].Tokens, Is.EqualTo(at < 0 ? free[i].Tokens : free[i].Tokens.Take(at + 1).ToArray()), $"row {i} is independent of row 0 stopping");
        }
        var held = TextGenerator.Generate(generator, new[] { Prompts[0] }, new GenerationOptions { MaxNewTokens = 10, MinNewTokens = 5, StopTokenIds = new[] { stopToken } });
        Assert.That(held[0].Tokens.Take(5), Has.No.Member(stopToken));
    }

    [Test]
    public void SamplingIsSeededAndItsTruncationsBehave()
    {
        using var model = SmallLm();
        var generator = new DecoderGenerativeModel(model);
        GenerationOptions Sampling(long seed) => new() { MaxNewTokens = 10, DoSample = true, Seed = seed, Temperature = 1.5 };
        var a = Tokens(TextGenerator.Generate(generator, Prompts, Sampling(1)));
        var b = Tokens(TextGenerator.Generate(generator, Prompts, Sampling(1)));
        var c = Tokens(TextGenerator.Generate(generator, Prompts, Sampling(2)));
        Assert.That(a, Is.EqualTo(b));
        Assert.That(a, Is.Not.EqualTo(c));
        var greedy = Tokens(TextGenerator.Generate(generator, Prompts, new GenerationOptions { MaxNewTokens = 10 }));
        Assert.That(Tokens(TextGenerator.Generate(generator, Prompts, Sampling(3) with { TopK = 1 })), Is.EqualTo(greedy));
        Assert.That(Tokens(TextGenerator.Generate(generator, Prompts, Sampling(4) with { TopP = 1e-6 })), Is.EqualTo(greedy));
        // top-k = 3: every sampled token is among the 3 most likely at its step
        var logits = randn(4, 61);
        var draws = Enumerable.Range(0, 50).Select(i => TextGenerator.SampleTokens(logits, new GenerationOptions { DoSample = true, TopK = 3 }, new torch.Generator((ulong)i))).ToList();
        var top3 = logits.topk(3).indexes;
        foreach (var draw in draws) Assert.That(top3.eq(draw.unsqueeze(1)).any(1).all().item<bool>(), Is.True);
    }

    [Test]
    public void TopPKeepsTheSmallestSetReachingP()
    {
        // Probabilities 0.1, 0.4, 0.2, 0.3 (row 0) and 0.3, 0.2, 0.1, 0.4 (row 1): sorted 0.4, 0.3, 0.2, 0.1 with 0, 0.4,
        // 0.7, 0.9 before each. p = 0.5 keeps 0.4 and 0.3 (0.4 alone is short of 0.5); p = 0.75 adds 0.2.
        var logits = tensor(new[,] { { 0.1f, 0.4f, 0.2f, 0.3f }, { 0.3f, 0.2f, 0.1f, 0.4f } }).log();
        long[][] Draws(double p) => Enumerable.Range(0, 300)
            .Select(i => TextGenerator.SampleTokens(logits, new GenerationOptions { DoSample = true, TopP = p }, new torch.Generator((ulong)i)).data<long>().ToArray()).ToArray();
        var half = Draws(0.5);
        Assert.That(half.Select(d => d[0]).Distinct().OrderBy(t => t), Is.EqualTo(new long[] { 1, 3 }));
        Assert.That(half.Select(d => d[1]).Distinct().OrderBy(t => t), Is.EqualTo(new long[] { 0, 3 }));
        // renormalised over the kept set: 0.4 / 0.7 ≈ 0.57
        Assert.That(half.Count(d => d[0] == 1) / 300.0, Is.InRange(0.45, 0.69));
        var threeQuarters = Draws(0.75);
        Assert.That(threeQuarters.Select(d => d[0]).Distinct().OrderBy(t => t), Is.EqualTo(new long[] { 1, 2, 3 }));
        Assert.That(threeQuarters.Select(d => d[1]).Distinct().OrderBy(t => t), Is.EqualTo(new long[] { 0, 1, 3 }));
    }

    [Test]
    public void BeamSearchWithTheVocabularyAsWidthFindsTheBestSequenceAndTheCacheAgrees()
    {
        using var model = SmallLm(vocab: 7, seed: 4);
        var generator = new DecoderGenerativeModel(model);
        long[] prompt = { 1, 4, 2 };
        var beam = TextGenerator.Generate(generator, new[] { prompt }, new GenerationOptions { MaxNewTokens = 2, NumBeams = 7 })[0];
        // exhaustive: best log p(t1) + log p(t2 | t1)
        using var _ = no_grad();
        double best = double.NegativeInfinity; long[] bestTokens = Array.Empty<long>();
        var first = model.ForwardTokens(tensor(prompt).unsqueeze(0))[0, -1].log_softmax(-1);
        for (long t1 = 0; t1 < 7; t1++)
        {
            var second = model.ForwardTokens(tensor(prompt.Append(t1).ToArray()).unsqueeze(0))[0, -1].log_softmax(-1);
            for (long t2 = 0; t2 < 7; t2++)
            {
                double score = first[t1].item<float>() + second[t2].item<float>();
                if (score > best) { best = score; bestTokens = new[] { t1, t2 }; }
            }
        }
        Assert.That(beam.Tokens, Is.EqualTo(bestTokens));
        Assert.That(beam.LogProbability, Is.EqualTo(best).Within(1e-4));

        var options = new GenerationOptions { MaxNewTokens = 8, NumBeams = 3, StopTokenIds = new long[] { 6 } };
        var cached = Tokens(TextGenerator.Generate(generator, Prompts.Select(p => p.Select(t => t % 7).ToArray()).ToArray(), options));
        var uncached = Tokens(TextGenerator.Generate(generator, Prompts.Select(p => p.Select(t => t % 7).ToArray()).ToArray(), options with { UseCache = false }));
        Assert.That(cached, Is.EqualTo(uncached), "beam search reorders the cache rows like the sequences");
        var greedy = Tokens(TextGenerator.Generate(generator, new[] { prompt }, new GenerationOptions { MaxNewTokens = 6 }));
        Assert.That(Tokens(TextGenerator.Generate(generator, new[] { prompt }, new GenerationOptions { MaxNewTokens = 6, NumBeams = 1 })), Is.EqualTo(greedy));
    }

    [Test]
    public void BadOptionsAndPromptsAreClearErrors()
    {
        using var model = SmallLm();
        var generator = new DecoderGenerativeModel(model);
        Assert.That(Assert.Throws<ArgumentException>(() => TextGenerator.Generate(generator, new[] { new long[] { 3, 99 } }, new GenerationOptions()))!.Message, Does.Contain("token 99"));
        Assert.That(Assert.Throws<ArgumentException>(() => TextGenerator.Generate(generator, new[] { Array.Empty<long>() }, new GenerationOptions()))!.Message, Does.Contain("empty"));
        Assert.Throws<ArgumentException>(() => TextGenerator.Generate(generator, Prompts, new GenerationOptions { NumBeams = 2, DoSample = true }));
        Assert.Throws<ArgumentException>(() => TextGenerator.Generate(generator, Prompts, new GenerationOptions { DoSample = true, TopP = 0 }));
        Assert.That(Assert.Throws<ArgumentException>(() => TextGenerator.Generate(generator, Prompts, new GenerationOptions { MaxNewTokens = 60 }))!.Message, Does.Contain("64 positions"));
    }

    /// <summary>Tensors alive on this thread (created and not disposed), after finalizers ran.</summary>
    internal static long LiveTensors()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
    }

    [Test]
    public void RepeatedGenerationLeavesNoTensorsBehind()
    {
        using var model = SmallLm();
        var generator = new DecoderGenerativeModel(model);
        void Run()
        {
            TextGenerator.Generate(generator, Prompts, new GenerationOptions { MaxNewTokens = 6, NumBeams = 2 });
            TextGenerator.Generate(generator, Prompts, new GenerationOptions { MaxNewTokens = 6, DoSample = true, Seed = 1, TopK = 5, TopP = 0.9 });
            TextGenerator.Generate(generator, Prompts, new GenerationOptions { MaxNewTokens = 6, UseCache = false });
        }
        Run();
        long before = LiveTensors();
        for (int i = 0; i < 5; i++) Run();
        Assert.That(LiveTensors(), Is.EqualTo(before));
    }
}
