using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Generation;

/// <summary>How to generate: greedy (default), sampling (temperature, top-k, top-p, seed) or beam search.</summary>
public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 20;
    /// <summary>Stop tokens are not allowed before this many new tokens.</summary>
    public int MinNewTokens { get; init; }
    /// <summary>Sample from the (tempered, truncated) distribution instead of taking the most likely token.</summary>
    public bool DoSample { get; init; }
    public double Temperature { get; init; } = 1.0;
    /// <summary>Keep only the k most likely tokens when sampling; 0 = all.</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set of tokens whose probability reaches p when sampling; 1 = all.</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>Seed for sampling (same seed, same tokens); null = nondeterministic.</summary>
    public long? Seed { get; init; }
    /// <summary>Beam search width; 1 = no beam search.</summary>
    public int NumBeams { get; init; } = 1;
    /// <summary>Finished beams are ranked by sum of log-probabilities / (new tokens ^ length_penalty).</summary>
    public double LengthPenalty { get; init; } = 1.0;
    /// <summary>Generation of a row ends after one of these tokens (it is kept in the output).</summary>
    public IReadOnlyList<long> StopTokenIds { get; init; } = Array.Empty<long>();
    /// <summary>Fills left padding and the slots of rows that have finished.</summary>
    public long PadTokenId { get; init; }
    /// <summary>Decode with a key/value cache (one new token per step) or rerun the whole sequence every step.</summary>
    public bool UseCache { get; init; } = true;

    public void Validate()
    {
        if (MaxNewTokens < 0) throw new ArgumentException($"max new tokens must be >= 0, got {MaxNewTokens}");
        if (NumBeams < 1) throw new ArgumentException($"beams must be >= 1, got {NumBeams}");
        if (NumBeams > 1 && DoSample) throw new ArgumentException("beam search and sampling cannot be combined");
        if (DoSample && !(Temperature > 0)) throw new ArgumentException($"temperature must be > 0, got {Temperature}");
        if (TopK < 0) throw new ArgumentException($"top-k must be >= 0, got {TopK}");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top-p must be in (0, 1], got {TopP}");
    }
}

/// <summary>The new tokens of one prompt (ending with the stop token when one was produced) and their total log-probability.</summary>
public sealed record GeneratedSequence(long[] Tokens, double LogProbability, bool Stopped);

/// <summary>
/// Batched generation for any <see cref="IGenerativeModel"/>: prompts of different lengths are left-padded, each
/// row stops on its own; greedy, sampling and beam search (which reorders the cache rows with its beams).
/// </summary>
public static class TextGenerator
{
    public static IReadOnlyList<GeneratedSequence> Generate(IGenerativeModel model, IReadOnlyList<IReadOnlyList<long>> prompts, GenerationOptions options)
    {
        options.Validate();
        if (prompts.Count == 0) return Array.Empty<GeneratedSequence>();
        for (int i = 0; i < prompts.Count; i++)
        {
            if (prompts[i].Count == 0) throw new ArgumentException($"prompt {i} is empty");
            foreach (var token in prompts[i])
                if (token < 0 || token >= model.VocabSize) throw new ArgumentException($"prompt {i} has token {token} outside the vocabulary of {model.VocabSize}");
        }
        int longest = prompts.Max(p => p.Count);
        if (model.MaxPositions is int max && longest + options.MaxNewTokens > max)
            throw new ArgumentException($"a prompt of {longest} tokens plus {options.MaxNewTokens} new tokens exceeds the {max} positions of this model");
        using var _ = no_grad();
        return options.NumBeams > 1 ? BeamSearch(model, prompts, options) : Sample(model, prompts, options);
    }

    /// <summary>Left-padded token rows and their mask as tensors, built from the prompt and the tokens so far.</summary>
    sealed class Rows(IReadOnlyList<IReadOnlyList<long>> prompts, IReadOnlyList<int> sources, long pad)
    {
        readonly int promptWidth = prompts.Max(p => p.Count);
        public List<List<long>> Generated { get; private set; } = sources.Select(_ => new List<long>()).ToList();
        public IReadOnlyList<int> Sources { get; private set; } = sources;
        public int Count => Sources.Count;
        public int Length => promptWidth + Generated[0].Count;

        public void Reorder(IReadOnlyList<int> rows, IReadOnlyList<long> tokens)
        {
            Generated = rows.Select((r, i) => new List<long>(Generated[r]) { tokens[i] }).ToList();
            Sources = rows.Select(r => Sources[r]).ToList();
        }

        public void Append(IReadOnlyList<long> tokens)
        {
            for (int i = 0; i < Count; i++) Generated[i].Add(tokens[i]);
        }

        /// <summary>The last <paramref name="count"/> columns of the token matrix [R, count], and the mask over all columns [R, Length].</summary>
        public (Tensor Tokens, Tensor Mask) Tensors(int count, Device device)
        {
            int length = Length;
            var ids = new long[Count, count];
            var mask = new long[Count, length];
            for (int r = 0; r < Count; r++)
            {
                var prompt = prompts[Sources[r]];
                int padding = promptWidth - prompt.Count;
                for (int c = 0; c < length; c++)
                {
                    long token = c < padding ? pad : c < promptWidth ? prompt[c - padding] : Generated[r][c - promptWidth];
                    mask[r, c] = c < padding ? 0 : 1;
                    if (c >= length - count) ids[r, c - (length - count)] = token;
                }
            }
            return (tensor(ids, device: device), tensor(mask, device: device));
        }
    }

    static IReadOnlyList<GeneratedSequence> Sample(IGenerativeModel model, IReadOnlyList<IReadOnlyList<long>> prompts, GenerationOptions options)
    {
        int batch = prompts.Count;
        var rows = new Rows(prompts, Enumerable.Range(0, batch).ToList(), options.PadTokenId);
        var stop = new HashSet<long>(options.StopTokenIds);
        var finished = new bool[batch];
        var logProbability = new double[batch];
        using var generator = options.DoSample && options.Seed is long seed ? new torch.Generator((ulong)seed) : null;
        using var sources = arange(batch, dtype: ScalarType.Int64);
        using var state = model.Begin(sources, options.UseCache);
        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            using var scope = NewDisposeScope();
            int fresh = options.UseCache && step > 0 ? 1 : rows.Length;
            var (tokens, mask) = rows.Tensors(fresh, model.Device);
            var logits = model.NextTokenLogits(state, tokens, mask).to(ScalarType.Float32).cpu();
            if (step < options.MinNewTokens) logits = SuppressStop(logits, stop);
            var logProbs = logits.log_softmax(-1);
            var next = options.DoSample ? SampleTokens(logits, options, generator) : logits.argmax(-1);
            var chosen = next.data<long>().ToArray();
            var chosenLogProbs = logProbs.gather(1, next.unsqueeze(1)).squeeze(1).data<float>().ToArray();
            for (int r = 0; r < batch; r++)
            {
                if (finished[r]) { chosen[r] = options.PadTokenId; continue; }
                logProbability[r] += chosenLogProbs[r];
                if (stop.Contains(chosen[r])) finished[r] = true;
            }
            rows.Append(chosen);
            if (finished.All(f => f)) break;
        }
        return Enumerable.Range(0, batch).Select(r =>
        {
            var tokens = rows.Generated[r];
            int end = tokens.FindIndex(t => stop.Contains(t));
            var kept = end >= 0 ? tokens.Take(end + 1).ToArray() : tokens.ToArray();
            return new GeneratedSequence(kept, logProbability[r], end >= 0);
        }).ToList();
    }

    static Tensor SuppressStop(Tensor logits, HashSet<long> stop)
    {
        if (stop.Count == 0) return logits;
        var ids = tensor(stop.Where(s => s >= 0 && s < logits.shape[1]).ToArray());
        return logits.index_fill(1, ids, float.NegativeInfinity);
    }

    /// <summary>Temperature, then top-k, then top-p (nucleus; the most likely token always stays), then one draw per row.</summary>
    public static Tensor SampleTokens(Tensor logits, GenerationOptions options, torch.Generator? generator)
    {
        logits = logits / options.Temperature;
        if (options.TopK > 0 && options.TopK < logits.shape[1])
        {
            var kth = logits.topk(options.TopK).values.narrow(1, options.TopK - 1, 1);
            logits = logits.masked_fill(logits.lt(kth), float.NegativeInfinity);
        }
        if (options.TopP < 1.0)
        {
            var (sorted, order) = logits.sort(-1, descending: true);
            var probs = sorted.softmax(-1);
            var before = probs.cumsum(-1) - probs;            // probability mass of the better tokens
            var drop = before.ge(options.TopP);                // the first token has 0 before it: always kept
            var dropUnsorted = zeros_like(drop).scatter(1, order, drop);
            logits = logits.masked_fill(dropUnsorted, float.NegativeInfinity);
        }
        return logits.softmax(-1).multinomial(1, generator: generator).squeeze(1);
    }

    sealed record Hypothesis(long[] Tokens, double LogProbability, double Score);

    static IReadOnlyList<GeneratedSequence> BeamSearch(IGenerativeModel model, IReadOnlyList<IReadOnlyList<long>> prompts, GenerationOptions options)
    {
        int batch = prompts.Count, beams = options.NumBeams, vocab = model.VocabSize;
        var stop = new HashSet<long>(options.StopTokenIds);
        var rows = new Rows(prompts, Enumerable.Range(0, batch * beams).Select(r => r / beams).ToList(), options.PadTokenId);
        // Only the first beam of each prompt is live at the start, so the first step does not pick the same token K times.
        var scores = Enumerable.Range(0, batch * beams).Select(r => r % beams == 0 ? 0.0 : double.NegativeInfinity).ToArray();
        var hypotheses = Enumerable.Range(0, batch).Select(_ => new List<Hypothesis>()).ToArray();
        var done = new bool[batch];
        double Normalize(double logProbability, int length) => logProbability / Math.Pow(Math.Max(1, length), options.LengthPenalty);

        void AddHypothesis(int b, long[] tokens, double logProbability)
        {
            var list = hypotheses[b];
            list.Add(new Hypothesis(tokens, logProbability, Normalize(logProbability, tokens.Length)));
            list.Sort((x, y) => y.Score.CompareTo(x.Score));
            if (list.Count > beams) list.RemoveAt(list.Count - 1);
        }

        using var sources = tensor(rows.Sources.Select(s => (long)s).ToArray());
        using var state = model.Begin(sources, options.UseCache);
        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            using var scope = NewDisposeScope();
            int fresh = options.UseCache && step > 0 ? 1 : rows.Length;
            var (tokens, mask) = rows.Tensors(fresh, model.Device);
            var logits = model.NextTokenLogits(state, tokens, mask).to(ScalarType.Float32).cpu();
            if (step < options.MinNewTokens) logits = SuppressStop(logits, stop);
            var logProbs = logits.log_softmax(-1).to(ScalarType.Float64) + tensor(scores).unsqueeze(1);
            int candidates = Math.Min(2 * beams, beams * vocab);
            var (topValues, topIndices) = logProbs.view(batch, beams * vocab).topk(candidates);
            var values = topValues.data<double>().ToArray();
            var indices = topIndices.data<long>().ToArray();

            var nextRows = new List<int>(batch * beams);
            var nextTokens = new List<long>(batch * beams);
            var nextScores = new List<double>(batch * beams);
            int newLength = step + 1;
            for (int b = 0; b < batch; b++)
            {
                if (done[b])
                {
                    for (int k = 0; k < beams; k++) { nextRows.Add(b * beams); nextTokens.Add(options.PadTokenId); nextScores.Add(double.NegativeInfinity); }
                    continue;
                }
                int taken = 0;
                for (int c = 0; c < candidates && taken < beams; c++)
                {
                    double value = values[b * candidates + c];
                    if (double.IsNegativeInfinity(value)) break;
                    long index = indices[b * candidates + c];
                    int row = b * beams + (int)(index / vocab);
                    long token = index % vocab;
                    if (stop.Contains(token))
                    {
                        if (c < beams) AddHypothesis(b, rows.Generated[row].Append(token).ToArray(), value);
                        continue;
                    }
                    nextRows.Add(row); nextTokens.Add(token); nextScores.Add(value);
                    taken++;
                }
                for (; taken < beams; taken++) { nextRows.Add(b * beams); nextTokens.Add(options.PadTokenId); nextScores.Add(double.NegativeInfinity); }
                // Done when K hypotheses exist and no open beam can beat the worst of them any more.
                double bestOpen = nextScores.Skip(b * beams).Take(beams).Max();
                if (hypotheses[b].Count >= beams && (double.IsNegativeInfinity(bestOpen) || Normalize(bestOpen, newLength) <= hypotheses[b][^1].Score))
                    done[b] = true;
            }
            rows.Reorder(nextRows, nextTokens);
            scores = nextScores.ToArray();
            if (done.All(d => d)) break;
            using var select = tensor(nextRows.Select(r => (long)r).ToArray());
            state.SelectRows(select.to(model.Device));
        }
        for (int b = 0; b < batch; b++)
        {
            if (done[b]) continue;
            for (int k = 0; k < beams; k++)
            {
                int row = b * beams + k;
                if (!double.IsNegativeInfinity(scores[row])) AddHypothesis(b, rows.Generated[row].ToArray(), scores[row]);
            }
        }
        return hypotheses.Select(list =>
        {
            if (list.Count == 0) return new GeneratedSequence(Array.Empty<long>(), 0, false);
            var best = list[0];
            return new GeneratedSequence(best.Tokens, best.LogProbability, best.Tokens.Length > 0 && stop.Contains(best.Tokens[^1]));
        }).ToList();
    }
}
