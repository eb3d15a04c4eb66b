using System.Text.Json;
using ModelZoo.Attention;
using ModelZoo.Evaluation.Data;
using ModelZoo.Models.Vatt;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Training.Tasks;

/// <summary>What a pre-training run produced: the trainer's result, the last validation metrics, and where it saved.</summary>
public sealed record PretrainingResult(string Task, TrainingResult Training, IReadOnlyDictionary<string, double> Validation, int TrainingExamples, int ValidationExamples, string OutputDirectory);

/// <summary>
/// `modelzoo pretrain` (and `modelzoo finetune` with these tasks): contrastive pre-training with the library's
/// trainer. clip-contrastive trains any dual encoder (CLIP presets, demo-clip) with CLIP's symmetric InfoNCE on
/// image-caption data; vatt-contrastive trains VATT-MS / VATT-MA presets with NCE + MIL-NCE on a clip manifest.
/// The output folder holds model.safetensors (the model's own state dict, float32: it loads back with
/// <c>--weights</c>), task.json, metrics.jsonl and checkpoints/; clip-contrastive's task.json says "retrieval", so
/// `modelzoo eval --task retrieval` and `modelzoo finetune --task retrieval` read the folder; VATT adds words.txt.
/// </summary>
public static class ContrastivePretraining
{
    public static IReadOnlyList<string> Tasks { get; } = new[] { ContrastiveImageTextPretraining.TaskName, VattContrastivePretraining.TaskName };

    public static bool IsTask(string task) => Tasks.Contains(task);

    public static PretrainingResult Run(string model, string task, string trainData, string? validationData, string outputDirectory, TrainerOptions options,
        string? weights = null, string device = "cpu", string? resume = null, VattPretrainingOptions? vattOptions = null)
    {
        if (!IsTask(task)) throw new ArgumentException($"unknown pre-training task '{task}' ({string.Join(" or ", Tasks)})");
        Directory.CreateDirectory(outputDirectory);
        options = options with { OutputDirectory = outputDirectory };
        return task == ContrastiveImageTextPretraining.TaskName
            ? RunClip(model, trainData, validationData, outputDirectory, options, weights, device, resume)
            : RunVatt(model, trainData, validationData, outputDirectory, options, weights, device, resume, vattOptions ?? new VattPretrainingOptions());
    }

    static PretrainingResult RunClip(string model, string trainData, string? validationData, string outputDirectory, TrainerOptions options,
        string? weights, string device, string? resume)
    {
        const string task = ContrastiveImageTextPretraining.TaskName;
        var (provider, preset) = FindProvider(model, "retrieval", task, "a dual encoder (CLIP presets, demo-clip)");
        var train = ContrastiveImageTextPretraining.ReadData(trainData);
        var validation = validationData is null ? new List<CaptionItem>() : ContrastiveImageTextPretraining.ReadData(validationData);
        using var retrieval = provider.CreateRetrieval(new TaskModelRequest
        {
            Model = model, Preset = preset, WeightsPath = weights, Device = device, Seed = options.Seed,
            TrainingTexts = train.SelectMany(i => i.Captions).ToList(),
        });
        if (retrieval is not IDualEncoder dual)
            throw new NotSupportedException($"'{model}' is a cross encoder; {task} needs a dual encoder (CLIP presets, demo-clip)");
        retrieval.Module.to(TorchRuntime.ParseDevice(device));
        var pretraining = new ContrastiveImageTextPretraining(dual, train, validation.Take(1000).ToList());
        var result = new Trainer(options with { Label = task }).Fit(pretraining, resume);
        pretraining.ClampLogitScale();
        // "retrieval": the folder is a dual encoder that `modelzoo eval --task retrieval` and `finetune --weights` read.
        Save(outputDirectory, retrieval.Module, new FineTunedModel(model, "retrieval", provider.Describe(retrieval), null, options.Precision));
        return new PretrainingResult(task, result, LastEvaluation(result), train.Count, Math.Min(validation.Count, 1000), outputDirectory);
    }

    static PretrainingResult RunVatt(string model, string trainData, string? validationData, string outputDirectory, TrainerOptions options,
        string? weights, string device, string? resume, VattPretrainingOptions vattOptions)
    {
        const string task = VattContrastivePretraining.TaskName;
        var (provider, preset) = FindProvider(model, task, task, "a VATT preset (vatt-ms-base, vatt-ma-medium, vatt-tiny, ...)");
        var train = VattManifest.Read(trainData);
        var validation = validationData is null ? new List<VattClipEntry>() : VattManifest.Read(validationData);
        if (provider is not VattTaskModels vattModels) throw new NotSupportedException($"{task}: '{model}' is adapted by {provider.GetType().Name}, which builds no VATT model");
        using var vatt = vattModels.CreateModel(new TaskModelRequest { Model = model, Preset = preset, WeightsPath = weights, Device = device, Seed = options.Seed });
        var vocabulary = WordListBeside(weights) is string words
            ? VattWordVocabulary.Load(words, vatt.Config.TxtVocabSize)
            : VattWordVocabulary.Build(train.SelectMany(c => c.Captions), vatt.Config.TxtVocabSize);
        var pretraining = new VattContrastivePretraining(vatt, vocabulary, train, validation.Take(1000).ToList(), vattOptions);
        var result = new Trainer(options with { Label = task }).Fit(pretraining, resume);
        Save(outputDirectory, vatt, new FineTunedModel(model, task, JsonSerializer.SerializeToElement(new
        {
            vocabulary = VattWordVocabulary.FileName, frames = pretraining.Shape.Frames, height = pretraining.Shape.Height, width = pretraining.Shape.Width,
            fps = pretraining.Shape.FramesPerSecond, sample_rate = pretraining.Shape.SampleRate, audio_samples = pretraining.Shape.AudioSamples,
        }), null, options.Precision));
        vocabulary.Save(Path.Combine(outputDirectory, VattWordVocabulary.FileName));
        return new PretrainingResult(task, result, LastEvaluation(result), train.Count, Math.Min(validation.Count, 1000), outputDirectory);
    }

    static (ITaskModelProvider Provider, Models.Catalog.ModelPreset? Preset) FindProvider(string model, string adapterTask, string task, string what)
    {
        try { return TaskModels.Find(model, adapterTask); }
        catch (NotSupportedException e) when (!e.Message.StartsWith("no task adapter", StringComparison.Ordinal))
        {
            throw new NotSupportedException($"{task} needs {what}; {e.Message}", e);
        }
    }

    /// <summary>words.txt in the weights folder, or beside the weights file (a previous pre-training's output).</summary>
    static string? WordListBeside(string? weights)
    {
        if (weights is null) return null;
        string folder = Directory.Exists(weights) ? weights : Path.GetDirectoryName(Path.GetFullPath(weights)) ?? ".";
        string path = Path.Combine(folder, VattWordVocabulary.FileName);
        return File.Exists(path) ? path : null;
    }

    static IReadOnlyDictionary<string, double> LastEvaluation(TrainingResult result) =>
        result.Evaluations.Count > 0 && result.Evaluations[^1].Step == result.Steps ? result.Evaluations[^1].Metrics : new Dictionary<string, double>();

    static void Save(string directory, nn.Module module, FineTunedModel description)
    {
        var tensors = module.state_dict().ToDictionary(p => p.Key, p => p.Value);
        SafetensorsWriter.Write(Path.Combine(directory, FineTuning.ModelFile), tensors, new SafetensorsWriteOptions { Dtype = "F32" });
        AtomicFile.WriteAllText(Path.Combine(directory, FineTuning.TaskFile), JsonSerializer.Serialize(description, new JsonSerializerOptions { WriteIndented = true }));
    }
}
