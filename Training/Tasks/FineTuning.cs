using System.Text.Json;
using ModelZoo.Attention;
using ModelZoo.Evaluation.Data;
using ModelZoo.Evaluation.Retrieval;
using ModelZoo.Evaluation.Vqa;
using ModelZoo.Training.Checkpoints;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Training.Tasks;

/// <summary>What a fine-tuned output folder holds beside model.safetensors (task.json).</summary>
public sealed record FineTunedModel(string Model, string Task, JsonElement Adapter, int? Answers, string Precision);

/// <summary>Result of evaluating a model on a task's data.</summary>
public sealed record TaskEvaluation(string Task, int Examples, VqaEvaluation? Vqa, RetrievalRecall? Retrieval, IReadOnlyList<VqaPrediction>? Predictions);

/// <summary>
/// `modelzoo finetune` and `modelzoo eval --model`: fine-tune a model on a task (VQA or retrieval) from data
/// manifests, save it as an output folder (model.safetensors, task.json, answers.json for VQA), and evaluate such a
/// folder (or a model with its own weights) on a split.
/// </summary>
public static class FineTuning
{
    public const string TaskFile = "task.json", AnswersFile = "answers.json", ModelFile = "model.safetensors", VocabFile = BertTaskTokenizer.VocabFile;

    /// <summary>
    /// Fine-tunes <paramref name="model"/> and saves the output folder. <paramref name="vocab"/>: a WordPiece vocab.txt
    /// for models whose vocabulary is not bundled (copied into the folder). <paramref name="validationLimit"/>: use
    /// the first N validation questions (VQA) or images with their captions (retrieval), during and after training;
    /// without it, evaluations during training use the first 1000 questions or 200 images and the final one all.
    /// </summary>
    public static (TrainingResult Training, TaskEvaluation? Validation) Run(string model, string task, string trainManifest, string? validationManifest,
        string outputDirectory, TrainerOptions options, string? weights = null, int maxAnswers = AnswerVocabulary.CommonSize, string device = "cpu", string? resume = null,
        string? vocab = null, int? validationLimit = null)
    {
        if (validationLimit is <= 0) throw new ArgumentException($"the validation limit must be positive, not {validationLimit}");
        Directory.CreateDirectory(outputDirectory);
        var (provider, preset) = TaskModels.Find(model, task);
        var train = TaskManifest.Load(trainManifest);
        var validation = validationManifest is null ? null : TaskManifest.Load(validationManifest);
        options = options with { OutputDirectory = outputDirectory };
        var dev = TorchRuntime.ParseDevice(device);

        if (task == "vqa")
        {
            var trainItems = train.ReadVqa();
            var validationItems = Limit(validation?.ReadVqa() ?? new List<VqaItem>(), validationLimit);
            var answers = AnswerVocabulary.Build(trainItems.Select(i => i.Example), maxAnswers);
            using var vqa = provider.CreateVqa(new TaskModelRequest
            {
                Model = model, Preset = preset, WeightsPath = weights, Answers = answers, Device = device, Seed = options.Seed, VocabPath = vocab,
                TrainingTexts = trainItems.Select(i => i.Example.Question).ToList(),
            });
            vqa.Module.to(dev);
            var fineTuning = new VqaFineTuning(vqa, answers, trainItems, validationItems.Take(validationLimit ?? 1000).ToList());
            var result = new Trainer(options).Fit(fineTuning, resume);
            Save(outputDirectory, vqa, vqa.Module, new FineTunedModel(model, task, provider.Describe(vqa), answers.Count, options.Precision));
            answers.Save(Path.Combine(outputDirectory, AnswersFile));
            TaskEvaluation? evaluation = null;
            if (validationItems.Count > 0 && validationItems.All(v => v.Example.Answers.Count > 0)) evaluation = EvaluateVqa(vqa, answers, validationItems);
            return (result, evaluation);
        }
        else
        {
            var trainItems = train.ReadRetrieval();
            var validationItems = Limit(validation?.ReadRetrieval() ?? new List<CaptionItem>(), validationLimit);
            using var retrieval = provider.CreateRetrieval(new TaskModelRequest
            {
                Model = model, Preset = preset, WeightsPath = weights, Device = device, Seed = options.Seed, VocabPath = vocab,
                TrainingTexts = trainItems.SelectMany(i => i.Captions).ToList(),
            });
            retrieval.Module.to(dev);
            var result = new Trainer(options).Fit(new RetrievalTraining(retrieval, trainItems, validationItems.Take(validationLimit ?? 200).ToList()), resume);
            Save(outputDirectory, retrieval, retrieval.Module, new FineTunedModel(model, task, provider.Describe(retrieval), null, options.Precision));
            TaskEvaluation? evaluation = validationItems.Count > 0
                ? new TaskEvaluation(task, validationItems.Count, null, RetrievalTraining.EvaluateRecall(retrieval, validationItems), null)
                : null;
            return (result, evaluation);
        }
    }

    /// <summary>
    /// Evaluates a model on a data manifest: a fine-tuned output folder (task.json present), or a preset with its own
    /// published weights (a checkpoint file or folder) and, for VQA, the answer list of its head (<paramref name="answersPath"/>:
    /// a JSON list such as trainval_label2ans.json, or answers.json).
    /// </summary>
    /// <paramref name="vocab"/>: a WordPiece vocab.txt (a fine-tuned folder's own copy is used when absent);
    /// <paramref name="limit"/>: the first N questions (VQA) or images with their captions (retrieval).
    public static TaskEvaluation Evaluate(string model, string weights, string task, string dataManifest, string device = "cpu", string? answersPath = null,
        string? vocab = null, int? limit = null)
    {
        if (limit is <= 0) throw new ArgumentException($"the limit must be positive, not {limit}");
        var data = TaskManifest.Load(dataManifest);
        var (provider, preset) = TaskModels.Find(model, task);
        var dev = TorchRuntime.ParseDevice(device);
        var taskPath = Path.Combine(weights, TaskFile);
        bool fineTuned = File.Exists(taskPath);
        TaskModelRequest request;
        if (fineTuned)
        {
            var saved = JsonSerializer.Deserialize<FineTunedModel>(File.ReadAllText(taskPath)) ?? throw new InvalidDataException($"{taskPath}: empty");
            if (!string.Equals(saved.Model, model, StringComparison.OrdinalIgnoreCase))
                throw new InvalidDataException($"{taskPath}: this folder holds a fine-tuned '{saved.Model}', not '{model}'");
            if (saved.Task != task) throw new InvalidDataException($"{taskPath}: this folder holds a {saved.Task} model; ask for --task {saved.Task}");
            string ownVocab = Path.Combine(weights, VocabFile);
            request = new TaskModelRequest { Model = model, Preset = preset, Saved = saved.Adapter, Device = device, VocabPath = vocab ?? (File.Exists(ownVocab) ? ownVocab : null) };
            answersPath ??= Path.Combine(weights, AnswersFile);
        }
        else
        {
            if (preset is null)
                throw new FileNotFoundException($"{weights}: no {TaskFile}; give the output folder of `modelzoo finetune` (model.safetensors, {TaskFile}" +
                                                (task == "vqa" ? $", {AnswersFile})" : ")"), taskPath);
            if (task == "vqa" && answersPath is null)
                throw new ArgumentException($"{weights} is not a fine-tuned folder ({TaskFile} is missing): give the answer list of the model's head with --answers (e.g. trainval_label2ans.json)");
            request = new TaskModelRequest { Model = model, Preset = preset, WeightsPath = weights, Device = device, VocabPath = vocab };
        }
        if (task == "vqa")
        {
            var answers = AnswerVocabulary.Load(answersPath!);
            using var vqa = provider.CreateVqa(request with { Answers = answers });
            if (fineTuned) LoadWeights(vqa.Module, weights);
            vqa.Module.to(dev);
            return EvaluateVqa(vqa, answers, Limit(data.ReadVqa(), limit));
        }
        using var retrieval = provider.CreateRetrieval(request);
        if (fineTuned) LoadWeights(retrieval.Module, weights);
        retrieval.Module.to(dev);
        var items = Limit(data.ReadRetrieval(), limit);
        return new TaskEvaluation(task, items.Count, null, RetrievalTraining.EvaluateRecall(retrieval, items), null);
    }

    static TaskEvaluation EvaluateVqa(IVqaModel model, AnswerVocabulary answers, IReadOnlyList<VqaItem> items)
    {
        var predictions = VqaFineTuning.Predict(model, answers, items);
        var results = items.Select((item, i) => new VqaPrediction(item.Example.QuestionId, predictions[i])).ToList();
        bool annotated = items.All(i => i.Example.Answers.Count > 0);
        return new TaskEvaluation("vqa", items.Count, annotated ? VqaFineTuning.Score(items.Select(i => i.Example).ToList(), predictions) : null, null, results);
    }

    static List<T> Limit<T>(List<T> items, int? limit) => limit is int n && n < items.Count ? items.Take(n).ToList() : items;

    static void Save(string directory, IDisposable taskModel, nn.Module module, FineTunedModel description)
    {
        if (taskModel is IUsesVocabularyFile { VocabularyFile: string vocab })
        {
            string target = Path.Combine(directory, VocabFile);
            if (!string.Equals(Path.GetFullPath(vocab), Path.GetFullPath(target), StringComparison.Ordinal))
                AtomicFile.Write(target, stream => { using var source = File.OpenRead(vocab); source.CopyTo(stream); });
        }
        // float32 on disk whatever the training precision, so evaluation needs no bf16 support.
        var tensors = module.state_dict().ToDictionary(p => p.Key, p => p.Value);
        SafetensorsWriter.Write(Path.Combine(directory, ModelFile), tensors, new SafetensorsWriteOptions { Dtype = "F32" });
        AtomicFile.WriteAllText(Path.Combine(directory, TaskFile), JsonSerializer.Serialize(description, new JsonSerializerOptions { WriteIndented = true }));
    }

    static void LoadWeights(nn.Module module, string directory)
    {
        var path = Path.Combine(directory, ModelFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: the fine-tuned weights are missing", path);
        using var reader = Checkpoint.Open(path);
        var report = ModelLoader.Load(module, reader, KeyMap.Identity, new LoadOptions { Strict = true });
        _ = report;
    }

    /// <summary>Writes VQA predictions in the official results format.</summary>
    public static void WriteResults(string path, IReadOnlyList<VqaPrediction> predictions) =>
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(predictions.Select(p => new { question_id = p.QuestionId, answer = p.Answer }),
            new JsonSerializerOptions { WriteIndented = true }));
}
