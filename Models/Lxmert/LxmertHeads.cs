using ModelZoo.Attention.Layers;
using ModelZoo.Models.Common;
using ModelZoo.Models.TwoStream;
using ModelZoo.Processing.Regions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Lxmert;

/// <summary>
/// LXMERT with a VQA/GQA answer head, Linear(H, 2H), GELU, LayerNorm, Linear(2H, answers) (Hugging Face LxmertForQuestionAnswering layout: lxmert.*, answer_head.logit_fc.*;
/// the original VQAModel's lxrt_encoder.model.bert.* and logit_fc.* load through the key map).
/// </summary>
public sealed class LxmertForQuestionAnswering : nn.Module, IRegionVqaModel
{
    readonly LxmertModel lxmert;
    readonly AnswerClassifier answer_head;

    public LxmertConfig Config { get; }

    public LxmertForQuestionAnswering(LxmertConfig config, int answers) : base("LxmertForQuestionAnswering")
    {
        Config = config.Validated();
        lxmert = new LxmertModel(config, initialize: false);
        answer_head = new AnswerClassifier(config.HiddenSize, 2 * config.HiddenSize, answers, config.LayerNormEps);
        RegisterComponents();
        Initialization.BertStyle(this, config.InitializerRange);
    }

    public LxmertModel Backbone => lxmert;
    public int AnswerCount => answer_head.Answers;

    /// <summary>The backbone output and the answer logits [B, answers] (see <see cref="LxmertModel.forward"/> for the inputs).</summary>
    public (LxmertOutput Output, Tensor Logits) forward(Tensor inputIds, Tensor visualFeats, Tensor visualPos, Tensor? attentionMask = null,
                                                        Tensor? visualAttentionMask = null, Tensor? tokenTypeIds = null)
    {
        var output = lxmert.forward(inputIds, visualFeats, visualPos, attentionMask, visualAttentionMask, tokenTypeIds);
        return (output, answer_head.forward(output.PooledOutput));
    }

    // IRegionVqaModel: the airsplay/lxmert VQA pipeline (src/tasks/vqa_data.py, vqa_model.py).
    public int RegionFeatureSize => Config.VisualFeatDim;
    /// <summary>MAX_VQA_LENGTH of src/tasks/vqa_model.py.</summary>
    public int MaxQuestionTokens => 20;
    /// <summary>The original uses every box of its feature files (36 per image); no cut.</summary>
    public int MaxRegions => int.MaxValue;

    /// <summary>
    /// Boxes become x1/W, y1/H, x2/W, y2/H (<see cref="BoxFeatures.Lxmert(Tensor, double, double)"/>). Unlike the original VQA task (every image has 36 boxes, so it passes no
    /// visual mask), images with fewer regions are padded and masked, which gives each question the result it has alone.
    /// </summary>
    public Tensor AnswerLogits(IReadOnlyList<RegionVqaInput> questions)
    {
        if (Config.VisualPosDim != 4) throw new NotSupportedException($"region VQA builds 4-d boxes, but this model has visual_pos_dim {Config.VisualPosDim}");
        var weight = lxmert.Embeddings.WordEmbeddings.weight!;
        using var scope = NewDisposeScope();
        var (ids, mask) = RegionVqaBatch.PadTokens(questions, MaxQuestionTokens, weight.device);
        int longest = 0;
        foreach (var q in questions)
        {
            RegionVqaBatch.Check(q, Config.VisualFeatDim);
            longest = Math.Max(longest, (int)Math.Min(q.Features.shape[0], MaxRegions));
        }
        var features = zeros(new long[] { questions.Count, longest, Config.VisualFeatDim }, dtype: weight.dtype, device: weight.device);
        var boxes = zeros(new long[] { questions.Count, longest, 4 }, dtype: weight.dtype, device: weight.device);
        var regionMask = zeros(new long[] { questions.Count, longest }, dtype: ScalarType.Int64, device: weight.device);
        using (no_grad())
        {
            for (int i = 0; i < questions.Count; i++)
            {
                var q = questions[i];
                long n = Math.Min(q.Features.shape[0], MaxRegions);
                features[i, TensorIndex.Slice(0, n)] = q.Features.narrow(0, 0, n).to(weight.dtype, weight.device);
                boxes[i, TensorIndex.Slice(0, n)] = BoxFeatures.Lxmert(q.Boxes.narrow(0, 0, n), q.ImageWidth, q.ImageHeight).to(weight.dtype, weight.device);
                regionMask[i, TensorIndex.Slice(0, n)] = 1;
            }
        }
        return forward(ids, features, boxes, mask, regionMask).Logits.MoveToOuterDisposeScope();
    }
}

/// <summary>Region heads of pretraining: transform, then one decoder per visual loss (obj 1600, attr 400, feat visual_feat_dim).</summary>
public sealed class LxmertVisualObjHead : nn.Module<Tensor, Dictionary<string, Tensor>>
{
    readonly PredictionHeadTransform transform;
    readonly ModuleDict<Linear> decoder_dict;
    readonly string[] _losses;

    public LxmertVisualObjHead(LxmertConfig config) : base("obj_predict_head")
    {
        transform = new PredictionHeadTransform(config.HiddenSize, Activations.Parse(config.HiddenAct), config.LayerNormEps);
        var decoders = new List<(string, Linear)>();
        if (config.VisualObjLoss) decoders.Add(("obj", nn.Linear(config.HiddenSize, config.NumObjectLabels)));
        if (config.VisualAttrLoss) decoders.Add(("attr", nn.Linear(config.HiddenSize, config.NumAttrLabels)));
        if (config.VisualFeatLoss) decoders.Add(("feat", nn.Linear(config.HiddenSize, config.VisualFeatDim)));
        decoder_dict = nn.ModuleDict(decoders.ToArray());
        _losses = decoders.Select(d => d.Item1).ToArray();
        RegisterComponents();
    }

    public override Dictionary<string, Tensor> forward(Tensor visn)
    {
        var hidden = transform.forward(visn);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var loss in _losses) result[loss] = decoder_dict[loss].forward(hidden);
        return result;
    }
}

/// <summary>Masked-token head (decoder tied to the word embeddings) and the image-text matching head.</summary>
public sealed class LxmertPreTrainingHeads : nn.Module
{
    readonly TiedLanguageModelHead predictions;
    readonly Linear seq_relationship;

    public LxmertPreTrainingHeads(LxmertConfig config, Func<Tensor> wordEmbeddings) : base("cls")
    {
        predictions = new TiedLanguageModelHead(config.HiddenSize, config.VocabSize, Activations.Parse(config.HiddenAct), wordEmbeddings, config.LayerNormEps);
        seq_relationship = nn.Linear(config.HiddenSize, 2);
        RegisterComponents();
    }

    public (Tensor Tokens, Tensor Matching) forward(Tensor lang, Tensor pooled) => (predictions.forward(lang), seq_relationship.forward(pooled));
}

/// <summary>Outputs of the pretraining model: token logits, matching logits, answer logits (null without task_qa), region predictions.</summary>
public sealed record LxmertPreTrainingOutput(LxmertOutput Backbone, Tensor PredictionLogits, Tensor CrossRelationshipScore, Tensor? QuestionAnsweringScore,
                                             IReadOnlyDictionary<string, Tensor> VisualPredictions);

/// <summary>
/// LXMERT with its pretraining heads (original LXRTPretraining; Hugging Face LxmertForPreTraining): cls.predictions
/// (tied decoder), cls.seq_relationship, obj_predict_head (obj / attr / feat), answer_head (num_qa_labels).
/// </summary>
public sealed class LxmertForPreTraining : nn.Module
{
    readonly LxmertModel lxmert;
    readonly LxmertPreTrainingHeads cls;
    readonly LxmertVisualObjHead? obj_predict_head;
    readonly AnswerClassifier? answer_head;

    public LxmertConfig Config { get; }

    public LxmertForPreTraining(LxmertConfig config) : base("LxmertForPreTraining")
    {
        Config = config.Validated();
        lxmert = new LxmertModel(config, initialize: false);
        var backbone = lxmert;
        cls = new LxmertPreTrainingHeads(config, () => backbone.Embeddings.WordEmbeddings.weight!);
        if (config.TaskObjPredict) obj_predict_head = new LxmertVisualObjHead(config);
        if (config.TaskQa) answer_head = new AnswerClassifier(config.HiddenSize, 2 * config.HiddenSize, config.NumQaLabels, config.LayerNormEps);
        RegisterComponents();
        Initialization.BertStyle(this, config.InitializerRange);
    }

    public LxmertModel Backbone => lxmert;

    public LxmertPreTrainingOutput forward(Tensor inputIds, Tensor visualFeats, Tensor visualPos, Tensor? attentionMask = null,
                                           Tensor? visualAttentionMask = null, Tensor? tokenTypeIds = null)
    {
        var output = lxmert.forward(inputIds, visualFeats, visualPos, attentionMask, visualAttentionMask, tokenTypeIds);
        var (tokens, matching) = cls.forward(output.LanguageOutput, output.PooledOutput);
        return new LxmertPreTrainingOutput(output, tokens, matching, answer_head?.forward(output.PooledOutput),
            obj_predict_head?.forward(output.VisionOutput) ?? new Dictionary<string, Tensor>());
    }
}
