using ModelZoo.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Training;

/// <summary>A small classifier with LayerNorm and dropout over a fixed synthetic data set: the trainer's test bed.</summary>
public sealed class TinyModel : nn.Module<Tensor, Tensor>
{
    readonly Linear input, output;
    readonly LayerNorm norm;
    readonly Dropout dropout;

    public TinyModel(int features = 8, int hidden = 16, int classes = 3, double dropoutRate = 0.2) : base("tiny")
    {
        input = nn.Linear(features, hidden);
        norm = nn.LayerNorm(hidden);
        dropout = nn.Dropout(dropoutRate);
        output = nn.Linear(hidden, classes);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => output.forward(dropout.forward(nn.functional.gelu(norm.forward(input.forward(x)))));
}

public sealed class TinyTask : ITrainingTask, IDisposable
{
    readonly Tensor _inputs, _labels, _valInputs, _valLabels;
    readonly TinyModel _model;
    readonly int? _nanAtStep;
    readonly bool _useTaskRandom;

    public TinyTask(long seed = 1, int examples = 48, long dataSeed = 1000, bool useTaskRandom = true, int? nanAtStep = null, double dropout = 0.2)
    {
        manual_seed(seed);
        _model = new TinyModel(dropoutRate: dropout);
        var generator = new Generator((ulong)dataSeed);
        var teacher = randn(new long[] { 8, 3 }, generator: generator);
        _inputs = randn(new long[] { examples, 8 }, generator: generator);
        _labels = _inputs.matmul(teacher).argmax(1);
        _valInputs = randn(new long[] { 32, 8 }, generator: generator);
        _valLabels = _valInputs.matmul(teacher).argmax(1);
        _nanAtStep = nanAtStep;
        _useTaskRandom = useTaskRandom;
    }

    public TinyModel TypedModel => _model;
    public nn.Module Model => _model;
    public int TrainingExamples => (int)_inputs.shape[0];

    public Tensor Loss(IReadOnlyList<int> batch, TrainingContext context)
    {
        var index = tensor(batch.Select(i => (long)i).ToArray());
        var x = _inputs.index_select(0, index);
        // Input noise from the task's generator: exercises the task RNG that checkpoints must restore.
        if (_useTaskRandom) x = x + (float)(0.01 * context.Random.NextDouble());
        var logits = _model.forward(x.to(context.ComputeDtype)).to(ScalarType.Float32);
        var loss = nn.functional.cross_entropy(logits, _labels.index_select(0, index));
        if (context.Step == _nanAtStep) loss = loss * float.NaN;
        return loss;
    }

    public IReadOnlyDictionary<string, double> Evaluate(TrainingContext context)
    {
        var predicted = _model.forward(_valInputs.to(context.ComputeDtype)).argmax(1);
        return new Dictionary<string, double> { ["accuracy"] = predicted.eq(_valLabels).to(ScalarType.Float32).mean().item<float>() };
    }

    public void Dispose()
    {
        _model.Dispose();
        _inputs.Dispose(); _labels.Dispose(); _valInputs.Dispose(); _valLabels.Dispose();
    }
}
