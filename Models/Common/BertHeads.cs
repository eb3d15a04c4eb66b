using ModelZoo.Attention.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Common;

// BERT-style heads shared by the BERT-based families; names follow the original repositories (logit_fc.{0,2,3},
// predictions.transform.{dense,LayerNorm}, predictions.bias).

/// <summary>
/// Answer classifier: Linear(in, hidden), GELU, LayerNorm(hidden), Linear(hidden, answers), stored as
/// logit_fc.{0,2,3} (ViLBERT SimpleClassifier, LXMERT VQA/GQA answer heads; UNITER's vqa_output is the same
/// <see cref="Layers"/> under its own name).
/// </summary>
public sealed class AnswerClassifier : nn.Module<Tensor, Tensor>
{
    readonly Sequential logit_fc;

    public int Answers { get; }

    public AnswerClassifier(int inputDim, int hiddenDim, int answers, double layerNormEps = 1e-12) : base("answer_classifier")
    {
        Answers = answers;
        logit_fc = Layers(inputDim, hiddenDim, answers, layerNormEps);
        RegisterComponents();
    }

    /// <summary>The four layers, keyed 0 to 3 (1, the GELU, has no weights).</summary>
    public static Sequential Layers(int inputDim, int hiddenDim, int answers, double layerNormEps = 1e-12) => nn.Sequential(
        ("0", nn.Linear(inputDim, hiddenDim)),
        ("1", new ActivationModule(Activation.GeluErf)),
        ("2", nn.LayerNorm(hiddenDim, layerNormEps)),
        ("3", nn.Linear(hiddenDim, answers)));

    public override Tensor forward(Tensor pooled) => logit_fc.forward(pooled);
}

/// <summary>Dense, activation, LayerNorm: BERT's BertPredictionHeadTransform.</summary>
public sealed class PredictionHeadTransform : nn.Module<Tensor, Tensor>
{
    readonly Linear dense;
    readonly LayerNorm LayerNorm;
    readonly Activation activation;

    public PredictionHeadTransform(int hidden, Activation activation, double layerNormEps = 1e-12) : base("transform")
    {
        dense = nn.Linear(hidden, hidden);
        LayerNorm = nn.LayerNorm(hidden, layerNormEps);
        this.activation = activation;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => LayerNorm.forward(Activations.Apply(activation, dense.forward(x)));
}

/// <summary>
/// Masked-language-model head: transform, then a decoder tied to the word embeddings plus its own bias.
/// The decoder weight is the embedding table itself (read at each call, so it follows dtype and device moves);
/// checkpoints that store it a second time as predictions.decoder.weight have that copy ignored by the key map.
/// </summary>
public sealed class TiedLanguageModelHead : nn.Module<Tensor, Tensor>
{
    readonly PredictionHeadTransform transform;
    readonly Parameter bias;
    readonly Func<Tensor> _decoderWeight;

    public TiedLanguageModelHead(int hidden, int vocabSize, Activation activation, Func<Tensor> wordEmbeddings, double layerNormEps = 1e-12)
        : base("predictions")
    {
        transform = new PredictionHeadTransform(hidden, activation, layerNormEps);
        bias = new Parameter(zeros(vocabSize));
        _decoderWeight = wordEmbeddings;
        RegisterComponents();
    }

    public override Tensor forward(Tensor sequence) => nn.functional.linear(transform.forward(sequence), _decoderWeight()) + bias;
}
