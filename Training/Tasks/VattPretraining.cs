using ModelZoo.Evaluation.Data;
using ModelZoo.Evaluation.Retrieval;
using ModelZoo.Models.Common;
using ModelZoo.Models.Vatt;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Training.Tasks;

/// <summary>How VATT pre-training reads its clips.</summary>
public sealed record VattPretrainingOptions
{
    /// <summary>The clip size; null: the preset's own pre-training input (<see cref="VattClipShape.For"/>).</summary>
    public VattClipShape? Shape { get; init; }
    /// <summary>MIL-NCE candidates per clip: a clip with more captions contributes a random subset of this many each step.</summary>
    public int MaxCaptionsPerClip { get; init; } = 4;
    /// <summary>Words per caption (VATT's max_num_words).</summary>
    public int MaxWords { get; init; } = 16;
    public int EvalBatchSize { get; init; } = 16;
    /// <summary>The ffmpeg for video files (null: on PATH or $MODELZOO_FFMPEG).</summary>
    public string? Ffmpeg { get; init; }
}

/// <summary>
/// VATT's contrastive pre-training (VATT-MS and VATT-MA alike): each clip's video, audio and captions go through
/// the model; NCE between video and audio in the MMV video-audio space and MIL-NCE between the video and its
/// captions (all of them candidate positives) in the video-audio-text space, τ from the config, averaged
/// (<see cref="VattModel.Loss"/>). A manifest without audio trains the text term alone, one without captions the
/// audio term. DropToken and dropout draw from the torch generator, caption subsets from the task's SeededRandom:
/// both are checkpointed, so resumes are exact. Evaluation embeds every validation clip (no DropToken) and reports
/// retrieval recall both ways in each common space and the NCE / MIL-NCE of the whole validation set.
/// </summary>
public sealed class VattContrastivePretraining : ITrainingTask
{
    public const string TaskName = "vatt-contrastive";

    readonly VattModel _model;
    readonly VattWordVocabulary _vocabulary;
    readonly IReadOnlyList<VattClipEntry> _train, _validation;
    readonly VattPretrainingOptions _options;
    readonly VattClipReader _reader;
    readonly List<(int Step, double? VideoAudio, double? VideoText)> _terms = new();

    public VattContrastivePretraining(VattModel model, VattWordVocabulary vocabulary, IReadOnlyList<VattClipEntry> train,
                                      IReadOnlyList<VattClipEntry> validation, VattPretrainingOptions? options = null)
    {
        if (train.Count == 0) throw new ArgumentException("VATT pre-training needs training clips");
        _model = model;
        _vocabulary = vocabulary;
        _train = train;
        _validation = validation;
        _options = options ?? new VattPretrainingOptions();
        if (_options.MaxCaptionsPerClip <= 0 || _options.MaxWords <= 0 || _options.EvalBatchSize <= 0)
            throw new ArgumentException("VATT pre-training: captions per clip, words per caption and the evaluation batch must be positive");
        if (vocabulary.Count > model.Config.TxtVocabSize)
            throw new ArgumentException($"the word list has {vocabulary.Count} words but the model's table has {model.Config.TxtVocabSize} rows");
        Shape = _options.Shape ?? VattClipShape.For(model.Config);
        Shape.Validate(model.Config);
        _reader = new VattClipReader(Shape) { Ffmpeg = _options.Ffmpeg };
        HasAudio = train[0].Audio is not null;
        HasText = train[0].Captions.Count > 0;
        foreach (var clip in validation)
            if ((clip.Audio is not null) != HasAudio || (clip.Captions.Count > 0) != HasText)
                throw new InvalidDataException($"{clip.Source}: the validation clips must have the same modalities as the training clips " +
                                               $"(audio: {(HasAudio ? "yes" : "no")}, captions: {(HasText ? "yes" : "no")})");
    }

    public nn.Module Model => _model;
    public int TrainingExamples => _train.Count;
    public VattClipShape Shape { get; }
    public bool HasAudio { get; }
    public bool HasText { get; }
    public VattWordVocabulary Vocabulary => _vocabulary;

    /// <summary>The loss terms of every micro-batch so far: (step, video-audio NCE, video-text MIL-NCE).</summary>
    public IReadOnlyList<(int Step, double? VideoAudio, double? VideoText)> Terms => _terms;

    public Tensor Loss(IReadOnlyList<int> batch, TrainingContext context)
    {
        var indices = batch.ToList();
        // Contrastive terms need negatives (and BatchNorm two examples): a lone clip (an epoch's short last batch) borrows another.
        if (indices.Count == 1 && _train.Count > 1)
        {
            int other = context.Random.NextInt(_train.Count - 1);
            indices.Add(other >= indices[0] ? other + 1 : other);
        }
        var clips = indices.Select(i => _train[i]).ToList();
        var (frames, audio, words, padding, mask, perClip) = Inputs(clips, context.Random, context.ComputeDtype);
        var output = _model.forward(frames, audio, words, padding);
        var loss = _model.Loss(output, perClip, mask);
        _terms.Add((context.Step, loss.VideoAudio?.to(ScalarType.Float32).item<float>(), loss.VideoText?.to(ScalarType.Float32).item<float>()));
        return loss.Total.to(ScalarType.Float32);
    }

    /// <summary>Model inputs of some clips: frames [B, T, H, W, 3], audio [B, S], words [B·K, L] with padding, caption mask [B, K], K.</summary>
    (Tensor Frames, Tensor? Audio, Tensor? Words, Tensor? Padding, Tensor? Mask, int PerClip) Inputs(
        IReadOnlyList<VattClipEntry> clips, SeededRandom? random, ScalarType dtype)
    {
        var device = _model.parameters().First().device;
        var frames = stack(clips.Select(_reader.Frames).ToArray()).to(dtype, device);
        var audio = HasAudio ? stack(clips.Select(_reader.Audio).ToArray()).to(dtype, device) : null;
        if (!HasText) return (frames, audio, null, null, null, 1);
        var chosen = clips.Select(c => ChooseCaptions(c.Captions, random)).ToList();
        int perClip = chosen.Max(c => c.Count);
        var rows = new List<IReadOnlyList<int>>();
        var mask = new bool[clips.Count * perClip];
        for (int c = 0; c < clips.Count; c++)
            for (int k = 0; k < perClip; k++)
            {
                bool real = k < chosen[c].Count;
                mask[c * perClip + k] = real;
                rows.Add(real ? _vocabulary.Encode(chosen[c][k], _options.MaxWords) : new List<int>());
            }
        int length = Math.Max(1, rows.Max(r => r.Count));
        var (ids, padding) = Batching.PadSequences(rows, VattWordVocabulary.PadId, length);
        return (frames, audio, ids.to(device), padding.ne(0).to(device), tensor(mask, new long[] { clips.Count, perClip }).to(device), perClip);
    }

    List<string> ChooseCaptions(IReadOnlyList<string> captions, SeededRandom? random)
    {
        if (captions.Count <= _options.MaxCaptionsPerClip) return captions.ToList();
        if (random is null) return captions.Take(_options.MaxCaptionsPerClip).ToList();
        var order = captions.ToList();
        for (int i = 0; i < _options.MaxCaptionsPerClip; i++)
        {
            int j = i + random.NextInt(order.Count - i);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order.Take(_options.MaxCaptionsPerClip).ToList();
    }

    public IReadOnlyDictionary<string, double> Evaluate(TrainingContext context)
    {
        var metrics = new Dictionary<string, double>();
        if (_validation.Count == 0) return metrics;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (videoToAudio, videoToText, audioToVideo, textToVideo, captionMask) = Embed(_validation, context.ComputeDtype);
        var recalls = new List<double>();
        void Add(string from, string to, RetrievalRecall recall)
        {
            // RetrievalRecall's "text retrieval" ranks the second modality for each clip; its "image retrieval" ranks clips.
            metrics[$"{from}_to_{to}_r1"] = recall.TxtR1;
            metrics[$"{from}_to_{to}_r5"] = recall.TxtR5;
            metrics[$"{from}_to_{to}_r10"] = recall.TxtR10;
            metrics[$"{to}_to_{from}_r1"] = recall.ImgR1;
            metrics[$"{to}_to_{from}_r5"] = recall.ImgR5;
            metrics[$"{to}_to_{from}_r10"] = recall.ImgR10;
            recalls.Add(recall.RMean);
        }
        int clips = _validation.Count;
        if (audioToVideo is not null)
        {
            var scores = ContrastiveLosses.Normalize(audioToVideo).matmul(ContrastiveLosses.Normalize(videoToAudio).t());
            Add("video", "audio", RetrievalMetrics.Compute(scores, RetrievalMapping.FromCaptionImages(Enumerable.Range(0, clips).ToList(), clips)));
            metrics["val_nce"] = ContrastiveLosses.Nce(videoToAudio, audioToVideo, _model.Config.Temperature).item<float>();
        }
        if (textToVideo is not null && captionMask is not null)
        {
            int perClip = (int)captionMask.shape[1];
            var real = captionMask.reshape(-1).data<bool>().ToArray();
            var owner = Enumerable.Range(0, real.Length).Where(i => real[i]).Select(i => i / perClip).ToList();
            var kept = tensor(Enumerable.Range(0, real.Length).Where(i => real[i]).Select(i => (long)i).ToArray());
            var scores = ContrastiveLosses.Normalize(textToVideo.index_select(0, kept)).matmul(ContrastiveLosses.Normalize(videoToText).t());
            Add("video", "text", RetrievalMetrics.Compute(scores, RetrievalMapping.FromCaptionImages(owner, clips)));
            metrics["val_mil_nce"] = ContrastiveLosses.MilNce(videoToText, textToVideo.view(clips, perClip, -1), captionMask, _model.Config.Temperature).item<float>();
        }
        metrics["r_mean"] = recalls.Average();
        return metrics;
    }

    /// <summary>Common-space embeddings of clips (float32, on the CPU), in batches; captions [clips·K, D] with a mask [clips, K].</summary>
    (Tensor VideoToAudio, Tensor VideoToText, Tensor? AudioToVideo, Tensor? TextToVideo, Tensor? CaptionMask) Embed(IReadOnlyList<VattClipEntry> clips, ScalarType dtype)
    {
        int perClip = HasText ? Math.Min(_options.MaxCaptionsPerClip, clips.Max(c => c.Captions.Count)) : 1;
        var videoToAudio = new List<Tensor>();
        var videoToText = new List<Tensor>();
        var audioToVideo = new List<Tensor>();
        var textToVideo = new List<Tensor>();
        var masks = new List<Tensor>();
        for (int start = 0; start < clips.Count; start += _options.EvalBatchSize)
        {
            var chunk = clips.Skip(start).Take(_options.EvalBatchSize).ToList();
            var (frames, audio, words, padding, mask, k) = Inputs(chunk, null, dtype);
            var output = _model.forward(frames, audio, words, padding);
            videoToAudio.Add(output.VideoToAudio!.to(ScalarType.Float32).cpu());
            videoToText.Add(output.VideoToText!.to(ScalarType.Float32).cpu());
            if (output.AudioToVideo is not null) audioToVideo.Add(output.AudioToVideo.to(ScalarType.Float32).cpu());
            if (output.TextToVideo is not null)
            {
                // Pad every chunk to the same K candidates per clip.
                var text = output.TextToVideo.to(ScalarType.Float32).cpu().view(chunk.Count, k, -1);
                var m = mask!.cpu();
                if (k < perClip)
                {
                    text = cat(new[] { text, zeros(chunk.Count, perClip - k, text.shape[2]) }, 1);
                    m = cat(new[] { m, zeros(new long[] { chunk.Count, perClip - k }, dtype: ScalarType.Bool) }, 1);
                }
                textToVideo.Add(text.reshape(chunk.Count * perClip, -1));
                masks.Add(m);
            }
        }
        return (cat(videoToAudio, 0), cat(videoToText, 0), audioToVideo.Count > 0 ? cat(audioToVideo, 0) : null,
            textToVideo.Count > 0 ? cat(textToVideo, 0) : null, masks.Count > 0 ? cat(masks, 0) : null);
    }
}
