using System.CommandLine;
using System.Diagnostics;
using ModelZoo.Attention;
using ModelZoo.Cli.Infrastructure;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Flamingo;
using ModelZoo.Models.Generation;
using ModelZoo.Models.Gpt2;
using ModelZoo.Tokenization;
using static TorchSharp.torch;

namespace ModelZoo.Cli.Commands;

/// <summary>
/// `modelzoo generate`: continue an interleaved prompt ("&lt;image&gt;" markers, images in order) with a Flamingo
/// model, or a plain prompt with a decoder LM (GPT-2, MPT, LLaMA); greedy by default, or beam search / sampling.
/// </summary>
public sealed class GenerateCommand : ICliCommand
{
    public Command Build()
    {
        var model = new Option<string>("--model") { Description = "Preset (flamingo-tiny, gpt2, ...; see `modelzoo list`)", Required = true };
        var weights = new Option<string[]>("--weights")
        {
            Description = "Checkpoint file or folder; repeat it for a model stored in several files (OpenFlamingo: vision tower, LM, checkpoint.pt; see `modelzoo info`). " +
                          "Without it the preset's random weights are used (a demo, not a trained model)",
            AllowMultipleArgumentsPerToken = false, DefaultValueFactory = _ => Array.Empty<string>(),
        };
        var images = new Option<string[]>("--image") { Description = "Image file for each <image> in the prompt, in order", AllowMultipleArgumentsPerToken = false, DefaultValueFactory = _ => Array.Empty<string>() };
        var prompt = new Option<string?>("--prompt") { Description = "Text with <image> markers and <|endofchunk|> separators" };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "The prompt as token ids (space or comma separated) instead of text; the output is ids too" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "At most this many new tokens", DefaultValueFactory = _ => 20 };
        var beams = new Option<int>("--beams") { Description = "Beam search width (1 = greedy)", DefaultValueFactory = _ => 1 };
        var sample = new Option<bool>("--sample") { Description = "Sample instead of taking the most likely token" };
        var temperature = new Option<double>("--temperature") { DefaultValueFactory = _ => 1.0 };
        var topK = new Option<int>("--top-k") { Description = "Sample among the k most likely tokens (0 = all)", DefaultValueFactory = _ => 0 };
        var topP = new Option<double>("--top-p") { Description = "Sample from the smallest set of tokens with this much probability", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<long?>("--seed") { Description = "Seed for sampling and for random weights" };
        var noCache = new Option<bool>("--no-cache") { Description = "Rerun the whole sequence every step instead of using the key/value cache" };
        var threads = new Option<int?>("--threads") { Description = "torch intra-op threads (one is fastest for tiny models on a busy machine)" };
        var vocab = new Option<string?>("--vocab") { Description = "Byte-level BPE tokenizer files (tokenizer.json, or vocab.json with merges.txt: GPT-2, GPT-NeoX) instead of the bundled GPT-2 ones" };
        var device = CommonOptions.Device();
        var dtype = CommonOptions.Dtype();
        var json = CommonOptions.Json();
        var command = new Command("generate", "Continue an interleaved image-text prompt (Flamingo) or a text prompt (GPT-2, MPT, LLaMA)")
            { model, weights, images, prompt, promptIds, maxNew, beams, sample, temperature, topK, topP, seed, noCache, threads, vocab, device, dtype, json };
        command.Guard(parse =>
        {
            using var loadReports = LoadCommand.PrintLoadReports(); // one line per checkpoint load, to stderr
            var options = new GenerationOptions
            {
                MaxNewTokens = parse.GetValue(maxNew),
                NumBeams = parse.GetValue(beams),
                DoSample = parse.GetValue(sample),
                Temperature = parse.GetValue(temperature),
                TopK = parse.GetValue(topK),
                TopP = parse.GetValue(topP),
                Seed = parse.GetValue(seed),
                UseCache = !parse.GetValue(noCache),
            };
            options.Validate();
            var text = parse.GetValue(prompt);
            var ids = parse.GetValue(promptIds);
            if ((text is null) == (ids is null)) throw new ArgumentException("give the prompt as --prompt TEXT or as --prompt-ids IDS (one of them)");
            var request = new Request(parse.GetValue(model)!, parse.GetValue(weights) ?? Array.Empty<string>(), parse.GetValue(images) ?? Array.Empty<string>(), text,
                ids is null ? null : ParseIds(ids), options, parse.GetValue(vocab), parse.GetValue(device)!, parse.GetValue(dtype)!, parse.GetValue(seed));
            int previousThreads = get_num_threads();
            if (parse.GetValue(threads) is int n) set_num_threads(n);
            Result result;
            try { result = Run(request); }
            finally { set_num_threads(previousThreads); }
            if (parse.GetValue(json))
            {
                CliRun.PrintJson(result);
                return 0;
            }
            Console.WriteLine(result.Completion);
            Console.Error.WriteLine($"{result.Tokens.Length} new tokens in {result.Seconds:0.00} s ({result.Tokens.Length / Math.Max(result.Seconds, 1e-9):0.0} tokens/s)" +
                                    (result.Stopped ? ", stopped at a stop token" : "") +
                                    (result.RandomWeights ? "; random weights (pass --weights for a trained checkpoint)" : ""));
            return 0;
        });
        return command;
    }

    static long[] ParseIds(string text)
    {
        var parts = text.Split(new[] { ' ', ',', '\t', '\n' }, StringSplitOptions.RemoveEmptyEntries);
        var ids = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out ids[i]) || ids[i] < 0)
                throw new ArgumentException($"--prompt-ids: '{parts[i]}' is not a token id");
        if (ids.Length == 0) throw new ArgumentException("--prompt-ids is empty");
        return ids;
    }

    /// <summary>A prompt as text (tokenized with the model's tokenizer) or as ids.</summary>
    public sealed record Request(string Model, IReadOnlyList<string> Weights, IReadOnlyList<string> Images, string? Prompt, long[]? PromptIds, GenerationOptions Options,
                                 string? Vocab, string Device, string Dtype, long? Seed);

    /// <summary>Completion is text when the prompt was text, else the ids joined by spaces.</summary>
    public sealed record Result(string Model, string? Prompt, string Completion, long[] Tokens, bool Stopped, double LogProbability,
                                double Seconds, bool RandomWeights, int Images);

    public static Result Run(Request request)
    {
        var catalog = ModelCatalog.Default;
        var preset = catalog.Get(request.Model);
        if (preset.Unavailable is not null) throw new NotSupportedException($"model '{preset.Name}' cannot be created yet: {preset.Unavailable}");
        if (preset.Family != "flamingo" && request.Images.Count > 0)
            throw new ArgumentException($"'{preset.Name}' is a text-only model ({preset.Family}): --image is for Flamingo models");
        // The tokenizer is checked before the model is built (an OpenFlamingo preset takes minutes and gigabytes to build).
        if (request.Prompt is not null && preset.Config is FlamingoConfig flamingoConfig)
            FlamingoPrompts.CheckTokenizer(GenerateTokenizers.Create("gpt2-flamingo", request.Vocab), flamingoConfig);
        if (request.Prompt is not null && preset.Config is ModelZoo.Models.Llama.LlamaConfig)
            throw new ArgumentException($"'{preset.Name}' uses LLaMA's SentencePiece tokenizer, which this library does not read: give the prompt as --prompt-ids");
        if (request.Prompt is not null && request.Vocab is null && preset.Config is ModelZoo.Models.Mpt.MptConfig)
            throw new ArgumentException($"no tokenizer is bundled for '{preset.Name}' ({preset.Tokenizer ?? preset.Family}): pass --vocab with the model's tokenizer.json, or give the prompt as --prompt-ids");
        using var module = catalog.Create(preset.Name, new ModelCreateOptions
        {
            WeightsPaths = request.Weights, Device = request.Device, Dtype = request.Dtype, Seed = request.Seed ?? 0,
        });
        return module switch
        {
            FlamingoModel flamingo => RunFlamingo(flamingo, request),
            IDecoderLanguageModel decoder => RunDecoder(decoder, preset, request),
            _ => throw new NotSupportedException($"model '{preset.Name}' ({preset.Family}) does not generate text; use a flamingo, gpt2, mpt or llama preset"),
        };
    }

    static Result RunFlamingo(FlamingoModel model, Request request)
    {
        var config = model.Config;
        var tokenizer = request.Prompt is null ? null : GenerateTokenizers.Create("gpt2-flamingo", request.Vocab);
        var ids = tokenizer is null ? request.PromptIds! : FlamingoPrompts.Encode(tokenizer, config, request.Prompt!);
        int markers = tokenizer is null ? ids.Count(i => i == config.MediaTokenId) : FlamingoPrompts.CountImages(request.Prompt!);
        if (markers != request.Images.Count)
            throw new ArgumentException($"the prompt has {markers} {FlamingoPrompts.Image} marker(s) (id {config.MediaTokenId}) but {request.Images.Count} --image file(s) were given");
        Tensor? images = null;
        using var scope = NewDisposeScope();
        if (markers > 0)
        {
            int size = config.VisionEncoder.ImageSize;
            var loaded = request.Images.Select(path => GenerateImages.Load(path, size)).ToArray();
            images = stack(loaded).unsqueeze(1).unsqueeze(0)                  // [1, T, 1, 3, S, S]
                .to(model.Decoder.TokenEmbeddingWeightDtype()).to(model.Decoder.Device());
        }
        var watch = Stopwatch.StartNew();
        var generated = model.Generate(images, new[] { ids }, request.Options)[0];
        watch.Stop();
        return new Result(request.Model, request.Prompt, Completion(tokenizer, generated.Tokens), generated.Tokens, generated.Stopped, generated.LogProbability,
            watch.Elapsed.TotalSeconds, request.Weights.Count == 0, markers);
    }

    /// <summary>A text-only decoder LM: GPT-2 (bundled tokenizer), MPT or LLaMA (--vocab with the model's tokenizer, or --prompt-ids).</summary>
    static Result RunDecoder(IDecoderLanguageModel model, ModelPreset preset, Request request)
    {
        if (request.Images.Count > 0) throw new ArgumentException($"'{request.Model}' is a text-only model: --image is for Flamingo models");
        var tokenizer = request.Prompt is null ? null : GenerateTokenizers.Create("gpt2", request.Vocab);
        var ids = tokenizer is null ? request.PromptIds! : tokenizer.EncodeToIds(request.Prompt!).Select(i => (long)i).ToArray();
        if (ids.Length == 0) throw new ArgumentException("the prompt is empty");
        if (ids.Max() >= model.VocabSize) throw new ArgumentException($"token id {ids.Max()} is outside '{preset.Name}''s vocabulary of {model.VocabSize}");
        var eos = model switch
        {
            Gpt2LMHeadModel gpt2 => gpt2.Config.EosTokenId,
            ModelZoo.Models.Llama.LlamaForCausalLM llama => llama.Config.EosTokenId,
            _ => null,
        } ?? tokenizer?.SpecialTokens.End;
        var options = request.Options with
        {
            StopTokenIds = request.Options.StopTokenIds.Count > 0 ? request.Options.StopTokenIds : eos is int e ? new[] { (long)e } : Array.Empty<long>(),
            PadTokenId = eos ?? 0,
        };
        var watch = Stopwatch.StartNew();
        var generated = TextGenerator.Generate(new DecoderGenerativeModel(model), new[] { ids }, options)[0];
        watch.Stop();
        return new Result(request.Model, request.Prompt, Completion(tokenizer, generated.Tokens), generated.Tokens, generated.Stopped, generated.LogProbability,
            watch.Elapsed.TotalSeconds, request.Weights.Count == 0, 0);
    }

    static string Completion(ITextTokenizer? tokenizer, long[] tokens) =>
        tokenizer is null ? string.Join(' ', tokens) : tokenizer.Decode(tokens.Select(t => (int)t), skipSpecialTokens: true);
}
