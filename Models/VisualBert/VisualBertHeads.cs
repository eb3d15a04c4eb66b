using ModelZoo.Attention.Layers;
using ModelZoo.Models.Bert;
using ModelZoo.Models.Common;
using ModelZoo.Models.TwoStream;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.VisualBert;

/// <summary>
/// VisualBertForQuestionAnswering: the hidden state of the last text token before [SEP] (index text_mask.sum − 2,
/// as the original) through dropout and cls = Linear(h, num_labels). Keys: visual_bert.*, cls.*.
/// </summary>
public sealed class VisualBertForQuestionAnswering : nn.Module, IRegionVqaModel
{
    readonly VisualBertModel visual_bert;
    readonly Dropout dropout;
    readonly Linear cls;

    public VisualBertConfig Config { get; }

    public VisualBertForQuestionAnswering(VisualBertConfig config) : base(nameof(VisualBertForQuestionAnswering))
    {
        int labels = config.NumLabels ?? throw new ArgumentException("the VQA head needs num_labels");
        Config = config;
        visual_bert = new VisualBertModel(config);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        cls = nn.Linear(config.HiddenSize, labels);
        RegisterComponents();
        Initialization.BertStyle(cls, config.InitializerRange);
    }

    public VisualBertModel VisualBert => visual_bert;

    /// <summary>Answer logits [B, num_labels].</summary>
    public Tensor forward(VisualBertInputs inputs)
    {
        var sequence = visual_bert.forward(inputs).SequenceOutput;
        var textMask = inputs.TextMask ?? ones_like(inputs.InputIds);
        var index = textMask.sum(1) - 2;
        if (index.min().item<long>() < 0) throw new ArgumentException("every question needs at least two tokens ([CLS] ... [SEP])");
        var gathered = sequence.gather(1, index.view(-1, 1, 1).expand(-1, 1, sequence.shape[2])).squeeze(1);
        return cls.forward(dropout.forward(gathered));
    }

    // IRegionVqaModel: what `modelzoo vqa --features` and VqaPipeline call. VisualBERT reads the features alone (no boxes).
    public int AnswerCount => Config.NumLabels!.Value;
    public int RegionFeatureSize => Config.VisualEmbeddingDim;
    /// <summary>Questions are short; VisualBERT's VQA reader allows 128 tokens.</summary>
    public int MaxQuestionTokens => Math.Min(128, Config.MaxPositionEmbeddings);
    /// <summary>Every region given is used.</summary>
    public int MaxRegions => int.MaxValue;

    /// <summary>Answer logits [N, num_labels] (the model was trained with a softmax over answers: KL divergence to the soft targets).</summary>
    public Tensor AnswerLogits(IReadOnlyList<RegionVqaInput> questions)
    {
        var texts = new List<long[]>(questions.Count);
        foreach (var q in questions)
        {
            if (q.Features.dim() != 2 || q.Features.shape[1] != RegionFeatureSize)
                throw new ArgumentException($"region features must be [regions, {RegionFeatureSize}] (visual_embedding_dim), got [{string.Join(", ", q.Features.shape)}]");
            if (q.TokenIds.Count < 2 || q.TokenIds.Count > MaxQuestionTokens)
                throw new ArgumentException($"a question needs between 2 and {MaxQuestionTokens} tokens ([CLS] and [SEP] included), got {q.TokenIds.Count}");
            texts.Add(q.TokenIds.ToArray());
        }
        var device = cls.weight!.device;
        return forward(VisualBertInputs.Collate(texts, questions.Select(q => q.Features).ToList(), device));
    }
}

/// <summary>
/// VisualBertForVisualReasoning (NLVR2): the pooled output through dropout and cls = Linear(h, 2). The two images'
/// regions form one visual sequence, the left image with visual token type 0 and the right with 1 (the original
/// NLVR2 data loader). Keys: visual_bert.*, cls.*.
/// </summary>
public sealed class VisualBertForVisualReasoning : nn.Module
{
    readonly VisualBertModel visual_bert;
    readonly Dropout dropout;
    readonly Linear cls;

    public VisualBertConfig Config { get; }

    public VisualBertForVisualReasoning(VisualBertConfig config) : base(nameof(VisualBertForVisualReasoning))
    {
        Config = config;
        visual_bert = new VisualBertModel(config);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        cls = nn.Linear(config.HiddenSize, config.NumLabels ?? 2);
        RegisterComponents();
        Initialization.BertStyle(cls, config.InitializerRange);
    }

    public VisualBertModel VisualBert => visual_bert;

    /// <summary>Logits [B, 2] (index 1 = the statement is true) for inputs that already hold both images' regions.</summary>
    public Tensor forward(VisualBertInputs inputs) => cls.forward(dropout.forward(visual_bert.forward(inputs).PooledOutput!));

    /// <summary>
    /// Lays out NLVR2 pairs: each example's left regions (type 0) then right regions (type 1), padded across the
    /// batch; padding is masked.
    /// </summary>
    public static VisualBertInputs PairInputs(IReadOnlyList<long[]> texts, IReadOnlyList<(Tensor Left, Tensor Right)> images, Device? device = null)
    {
        if (texts.Count != images.Count) throw new ArgumentException($"need one image pair per text (got {texts.Count} texts, {images.Count} pairs)");
        var joined = images.Select(p => cat(new[] { p.Left, p.Right }, 0)).ToList();
        var inputs = VisualBertInputs.Collate(texts, joined, device);
        var types = zeros_like(inputs.VisualMask!);
        for (int b = 0; b < images.Count; b++)
        {
            long left = images[b].Left.shape[0], right = images[b].Right.shape[0];
            if (right > 0) types[b].narrow(0, left, right).fill_(1);
        }
        return inputs with { VisualTokenTypeIds = types };
    }
}

/// <summary>
/// VisualBertForPreTraining: masked language modelling (transform, then the word embeddings as the tied decoder,
/// plus a bias) over every position, and the sentence–image prediction (seq_relationship, 2-way) on the pooled
/// output. Keys: visual_bert.*, cls.predictions.{transform.dense, transform.LayerNorm, bias}, cls.seq_relationship.
/// </summary>
public sealed class VisualBertForPreTraining : nn.Module
{
    readonly VisualBertModel visual_bert;
    readonly PreTrainingHeads cls;

    public VisualBertConfig Config { get; }

    public VisualBertForPreTraining(VisualBertConfig config) : base(nameof(VisualBertForPreTraining))
    {
        Config = config;
        visual_bert = new VisualBertModel(config);
        cls = new PreTrainingHeads(config);
        RegisterComponents();
        Initialization.BertStyle(cls, config.InitializerRange);
    }

    public VisualBertModel VisualBert => visual_bert;

    /// <summary>Prediction logits [B, Lt + Nv, vocab] and sentence–image logits [B, 2].</summary>
    public (Tensor PredictionLogits, Tensor SeqRelationshipLogits) forward(VisualBertInputs inputs)
    {
        var output = visual_bert.forward(inputs);
        return (cls.Predict(output.SequenceOutput, visual_bert.Embeddings.WordEmbeddings.weight!), cls.Relationship(output.PooledOutput!));
    }

    /// <summary>cls: predictions (transform + bias; decoder tied to the word embeddings) and seq_relationship.</summary>
    public sealed class PreTrainingHeads : nn.Module
    {
        readonly Predictions predictions;
        readonly Linear seq_relationship;

        public PreTrainingHeads(VisualBertConfig config) : base("cls")
        {
            predictions = new Predictions(config);
            seq_relationship = nn.Linear(config.HiddenSize, 2);
            RegisterComponents();
        }

        public Tensor Predict(Tensor sequence, Tensor wordEmbeddings) => predictions.forward(sequence, wordEmbeddings);
        public Tensor Relationship(Tensor pooled) => seq_relationship.forward(pooled);
    }

    /// <summary>BertLMPredictionHead without its own decoder matrix: the word embeddings are the decoder.</summary>
    public sealed class Predictions : nn.Module
    {
        readonly PredictionHeadTransform transform;
        readonly Parameter bias;

        public Predictions(VisualBertConfig config) : base("predictions")
        {
            transform = new PredictionHeadTransform(config.HiddenSize, Activations.Parse(config.HiddenAct), config.LayerNormEps);
            bias = new Parameter(zeros(config.VocabSize));
            RegisterComponents();
        }

        public Tensor forward(Tensor sequence, Tensor wordEmbeddings) => nn.functional.linear(transform.forward(sequence), wordEmbeddings, bias);
    }
}

/// <summary>
/// VisualBertForMultipleChoice (VCR): each (question, answer choice) pair with the image regions is one sequence;
/// cls = Linear(h, 1) on the pooled output scores it. Keys: visual_bert.*, cls.*.
/// </summary>
public sealed class VisualBertForMultipleChoice : nn.Module
{
    readonly VisualBertModel visual_bert;
    readonly Dropout dropout;
    readonly Linear cls;

    public VisualBertConfig Config { get; }

    public VisualBertForMultipleChoice(VisualBertConfig config) : base(nameof(VisualBertForMultipleChoice))
    {
        Config = config;
        visual_bert = new VisualBertModel(config);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        cls = nn.Linear(config.HiddenSize, 1);
        RegisterComponents();
        Initialization.BertStyle(cls, config.InitializerRange);
    }

    public VisualBertModel VisualBert => visual_bert;

    /// <summary>Inputs hold examples × choices rows, choice-major per example; returns logits [examples, choices].</summary>
    public Tensor forward(VisualBertInputs inputs, int choices)
    {
        if (choices <= 0 || inputs.InputIds.shape[0] % choices != 0)
            throw new ArgumentException($"{inputs.InputIds.shape[0]} rows are not a whole number of examples with {choices} choices");
        return cls.forward(dropout.forward(visual_bert.forward(inputs).PooledOutput!)).view(-1, choices);
    }
}
