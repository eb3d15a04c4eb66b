using ModelZoo.Evaluation.Data;
using ModelZoo.Evaluation.Vqa;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Training.Tasks;

/// <summary>A VQA model as the VQA task uses it: answer logits for questions about images.</summary>
public interface IVqaModel : IDisposable
{
    nn.Module Module { get; }
    int Answers { get; }
    /// <summary>Logits [B, answers] (any float dtype) for (question, image) pairs.</summary>
    Tensor Logits(IReadOnlyList<string> questions, IReadOnlyList<VisualInput> images);
}

/// <summary>A VQA example with its image.</summary>
public sealed record VqaItem(VqaExample Example, VisualInput Image);

/// <summary>
/// VQA fine-tuning as classification over an answer vocabulary: binary cross-entropy against the soft scores
/// min(1, count / 3), averaged and multiplied by the number of answers (as UNITER and ViLT train). Evaluation
/// predicts the highest-scoring answer and scores it with the official VQA accuracy.
/// </summary>
public sealed class VqaFineTuning : ITrainingTask
{
    readonly IVqaModel _model;
    readonly IReadOnlyList<VqaItem> _train, _validation;
    readonly float[][] _targets;
    readonly int _evalBatchSize;

    public AnswerVocabulary Vocabulary { get; }

    public VqaFineTuning(IVqaModel model, AnswerVocabulary vocabulary, IReadOnlyList<VqaItem> train, IReadOnlyList<VqaItem> validation, int evalBatchSize = 64)
    {
        if (model.Answers != vocabulary.Count)
            throw new ArgumentException($"the model's answer head has {model.Answers} outputs but the vocabulary has {vocabulary.Count} answers");
        _model = model;
        Vocabulary = vocabulary;
        _train = train;
        _validation = validation;
        _targets = train.Select(t => vocabulary.SoftTargetVector(t.Example.Answers)).ToArray();
        _evalBatchSize = evalBatchSize;
    }

    public nn.Module Model => _model.Module;
    public int TrainingExamples => _train.Count;

    public Tensor Loss(IReadOnlyList<int> batch, TrainingContext context)
    {
        var logits = _model.Logits(batch.Select(i => _train[i].Example.Question).ToList(), batch.Select(i => _train[i].Image).ToList()).to(ScalarType.Float32);
        var targets = tensor(batch.SelectMany(i => _targets[i]).ToArray(), new long[] { batch.Count, Vocabulary.Count }, device: logits.device);
        return nn.functional.binary_cross_entropy_with_logits(logits, targets) * Vocabulary.Count;
    }

    public IReadOnlyDictionary<string, double> Evaluate(TrainingContext context)
    {
        if (_validation.Count == 0) return new Dictionary<string, double>();
        var predictions = Predict(_model, Vocabulary, _validation, _evalBatchSize);
        return new Dictionary<string, double> { ["vqa_accuracy"] = Score(_validation.Select(v => v.Example).ToList(), predictions).Overall };
    }

    /// <summary>The highest-scoring answer for each item (eval mode and no_grad are the caller's or set here).</summary>
    public static List<string> Predict(IVqaModel model, AnswerVocabulary vocabulary, IReadOnlyList<VqaItem> items, int batchSize = 64)
    {
        var answers = new List<string>(items.Count);
        bool training = model.Module.training;
        model.Module.eval();
        using var _ = no_grad();
        try
        {
            for (int start = 0; start < items.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var batch = items.Skip(start).Take(batchSize).ToList();
                var best = model.Logits(batch.Select(b => b.Example.Question).ToList(), batch.Select(b => b.Image).ToList()).argmax(1).cpu();
                answers.AddRange(best.data<long>().ToArray().Select(i => vocabulary.Answers[(int)i]));
            }
        }
        finally
        {
            if (training) model.Module.train();
        }
        return answers;
    }

    /// <summary>The official accuracy of predictions for examples that carry their human answers.</summary>
    public static VqaEvaluation Score(IReadOnlyList<VqaExample> examples, IReadOnlyList<string> predictions)
    {
        var annotations = examples.Select(e => new VqaAnnotation(e.QuestionId, e.ImageId, e.QuestionType ?? "unknown", e.AnswerType ?? "other",
            e.MultipleChoiceAnswer, e.Answers.Select((a, j) => new VqaHumanAnswer(a, "yes", j + 1, $"\"answer_id\":{j + 1};")).ToList())).ToList();
        var results = examples.Select((e, i) => new VqaPrediction(e.QuestionId, predictions[i])).ToList();
        return VqaEvaluator.Evaluate(annotations, results);
    }
}
