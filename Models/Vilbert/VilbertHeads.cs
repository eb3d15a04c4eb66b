using ModelZoo.Attention.Layers;
using ModelZoo.Models.Common;
using ModelZoo.Models.TwoStream;
using ModelZoo.Processing.Regions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Vilbert;

/// <summary>Region-class head over the visual stream (BertImagePredictionHead): transform, then decoder to v_target_size.</summary>
public sealed class VilbertImagePredictionHead : nn.Module<Tensor, Tensor>
{
    readonly PredictionHeadTransform transform;
    readonly Linear decoder;

    public VilbertImagePredictionHead(VilbertConfig config) : base("imagePredictions")
    {
        // The reference's visual transform takes its activation from hidden_act (not v_hidden_act) whenever it is a string.
        transform = new PredictionHeadTransform(config.VHiddenSize, Activations.Parse(config.HiddenAct));
        decoder = nn.Linear(config.VHiddenSize, config.VTargetSize);
        RegisterComponents();
    }

    public override Tensor forward(Tensor visual) => decoder.forward(transform.forward(visual));
}

/// <summary>
/// The pretraining heads ("cls", BertPreTrainingHeads): masked-token prediction (tied decoder), region-class
/// prediction, and alignment over the pooled vectors fused by fusion_method through this head's own dropout (0.1),
/// as in the reference, so in training its mask is drawn apart from the task heads' dropout.
/// </summary>
public sealed class VilbertPreTrainingHeads : nn.Module
{
    readonly TiedLanguageModelHead predictions;
    readonly Linear bi_seq_relationship;
    readonly VilbertImagePredictionHead imagePredictions;
    readonly Dropout dropout;
    readonly string _fusionMethod;

    public VilbertPreTrainingHeads(VilbertConfig config, Func<Tensor> wordEmbeddings) : base("cls")
    {
        predictions = new TiedLanguageModelHead(config.HiddenSize, config.VocabSize, Activations.Parse(config.HiddenAct), wordEmbeddings);
        bi_seq_relationship = nn.Linear(config.BiHiddenSize, 2);
        imagePredictions = new VilbertImagePredictionHead(config);
        dropout = nn.Dropout(0.1);
        _fusionMethod = config.FusionMethod;
        RegisterComponents();
    }

    /// <summary>Token logits [B, L, vocab], region-class logits [B, R, v_target_size], alignment logits [B, 2].</summary>
    public (Tensor Text, Tensor Visual, Tensor Alignment) forward(Tensor sequenceText, Tensor sequenceVisual, Tensor pooledText, Tensor pooledVisual)
    {
        var fused = dropout.forward(_fusionMethod == "sum" ? pooledText + pooledVisual : pooledText * pooledVisual);
        return (predictions.forward(sequenceText), imagePredictions.forward(sequenceVisual), bi_seq_relationship.forward(fused));
    }
}

/// <summary>Every output of VILBertForVLTasks, named as in the reference (its misspelling "linguisic" kept in the keys only).</summary>
public sealed record VilbertTaskOutput(
    VilbertOutput Backbone,
    Tensor VilPrediction,
    Tensor VilPredictionGqa,
    Tensor VilLogit,
    /// <summary>NLVR2-style pair head over rows (0, 1), (2, 3), ... [B/2, 2]; null for an odd batch.</summary>
    Tensor? VilBinaryPrediction,
    Tensor VilTriPrediction,
    Tensor VisionPrediction,
    Tensor VisionLogit,
    Tensor LinguisticPrediction,
    Tensor LinguisticLogit,
    /// <summary>cls.bi_seq_relationship over the fused pooled vector [B, 2] (the reference returns it in place of vil_binary_prediction for an odd batch).</summary>
    Tensor AlignmentPrediction);

/// <summary>Which answer head and task token the VQA adapter uses.</summary>
public enum VilbertVqaHead
{
    /// <summary>vil_prediction (3129 VQA v2 answers), task token 1.</summary>
    Vqa,
    /// <summary>vil_prediction_gqa (1533 GQA answers), task token 15.</summary>
    Gqa,
}

/// <summary>
/// VILBertForVLTasks: the two-stream backbone ("bert"), the pretraining heads ("cls") and the multi-task heads of
/// vilbert-multi-task, with the reference's key names, so its checkpoints load with no renaming.
/// </summary>
public sealed class VilbertForVLTasks : nn.Module, IRegionVqaModel
{
    readonly VilbertModel bert;
    readonly Dropout dropout;
    readonly VilbertPreTrainingHeads cls;
    readonly AnswerClassifier vil_prediction, vil_prediction_gqa, vil_binary_prediction;
    readonly Linear vil_logit, vil_tri_prediction, vision_logit, linguisic_logit;

    public VilbertConfig Config { get; }
    /// <summary>num_labels of the reference constructor; stored only (no head depends on it).</summary>
    public int NumLabels { get; }
    public VilbertVqaHead VqaHead { get; set; } = VilbertVqaHead.Vqa;

    public VilbertForVLTasks(VilbertConfig config, int numLabels = VilbertConfig.VqaAnswers, double dropoutProb = 0.1) : base("VILBertForVLTasks")
    {
        Config = config.Validated();
        NumLabels = numLabels;
        bert = new VilbertModel(config, initialize: false);
        dropout = nn.Dropout(dropoutProb);
        var model = bert;
        cls = new VilbertPreTrainingHeads(config, () => model.Embeddings.WordEmbeddings.weight!);
        int bi = config.BiHiddenSize;
        vil_prediction = new AnswerClassifier(bi, 2 * bi, VilbertConfig.VqaAnswers);
        vil_prediction_gqa = new AnswerClassifier(bi, 2 * bi, VilbertConfig.GqaAnswers);
        vil_binary_prediction = new AnswerClassifier(2 * bi, 2 * bi, 2);
        vil_logit = nn.Linear(bi, 1);
        vil_tri_prediction = nn.Linear(bi, 3);
        vision_logit = nn.Linear(config.VHiddenSize, 1);
        linguisic_logit = nn.Linear(config.HiddenSize, 1);
        RegisterComponents();
        Initialization.BertStyle(this, config.InitializerRange);
    }

    public VilbertModel Backbone => bert;

    /// <summary>The backbone and every head, as VILBertForVLTasks.forward computes them (see <see cref="VilbertModel.forward"/> for the inputs).</summary>
    public VilbertTaskOutput forward(Tensor inputTxt, Tensor inputImgs, Tensor imageLoc, Tensor? tokenTypeIds = null, Tensor? attentionMask = null,
                                     Tensor? imageAttentionMask = null, Tensor? taskIds = null)
    {
        var o = bert.forward(inputTxt, inputImgs, imageLoc, tokenTypeIds, attentionMask, imageAttentionMask, taskIds);
        var pooled = Fuse(o);
        var (linguistic, vision, alignment) = cls.forward(o.SequenceOutputText, o.SequenceOutputVisual, o.PooledOutputText, o.PooledOutputVisual);
        Tensor? binary = pooled.shape[0] % 2 == 0 ? vil_binary_prediction.forward(pooled.view(-1, 2 * pooled.shape[1])) : null;
        return new VilbertTaskOutput(o,
            vil_prediction.forward(pooled),
            vil_prediction_gqa.forward(pooled),
            vil_logit.forward(pooled),
            binary,
            vil_tri_prediction.forward(pooled),
            vision,
            VisionLogit(o),
            linguistic,
            linguisic_logit.forward(dropout.forward(o.SequenceOutputText)),
            alignment);
    }

    /// <summary>Pooled text and visual vectors combined by fusion_method ("mul" or "sum"), then dropout.</summary>
    public Tensor Fuse(VilbertOutput o) => dropout.forward(Config.FusionMethod switch
    {
        "sum" => o.PooledOutputText + o.PooledOutputVisual,
        _ => o.PooledOutputText * o.PooledOutputVisual,
    });

    /// <summary>Referring-expression region scores [B, R, 1]; padded regions get -10000 added, as in the reference.</summary>
    public Tensor VisionLogit(VilbertOutput o)
    {
        var logits = vision_logit.forward(dropout.forward(o.SequenceOutputVisual));
        var padding = (1.0 - o.VisualPadding.to(logits.dtype)) * -10000.0;
        return logits + padding.unsqueeze(2);
    }

    /// <summary>VQA answer logits [B, 3129] (or GQA [B, 1533]) from a backbone output.</summary>
    public Tensor AnswerLogits(VilbertOutput o) =>
        VqaHead == VilbertVqaHead.Gqa ? vil_prediction_gqa.forward(Fuse(o)) : vil_prediction.forward(Fuse(o));

    // IRegionVqaModel: the vilbert-multi-task VQA pipeline (vqa_dataset.py, _image_features_reader.py).
    public int AnswerCount => VqaHead == VilbertVqaHead.Gqa ? VilbertConfig.GqaAnswers : VilbertConfig.VqaAnswers;
    public int RegionFeatureSize => Config.VFeatureSize;
    /// <summary>max_seq_length of the VQA task (23 for VQA, 26 for GQA in vilbert_tasks.yml).</summary>
    public int MaxQuestionTokens => VqaHead == VilbertVqaHead.Gqa ? 26 : 23;
    /// <summary>max_region_num 101 less the whole-image region added in front.</summary>
    public int MaxRegions => 100;

    public Tensor AnswerLogits(IReadOnlyList<RegionVqaInput> questions)
    {
        var device = bert.Embeddings.WordEmbeddings.weight!.device;
        var dtype = bert.Embeddings.WordEmbeddings.weight!.dtype;
        using var scope = NewDisposeScope();
        var (ids, mask) = RegionVqaBatch.PadTokens(questions, MaxQuestionTokens, device);
        var (features, locations, regionMask) = VilbertRegions.Batch(questions, Config.VFeatureSize, MaxRegions, dtype, device);
        Tensor? taskIds = Config.TaskSpecificTokens
            ? full(new long[] { questions.Count, 1 }, VqaHead == VilbertVqaHead.Gqa ? 15L : 1L, dtype: ScalarType.Int64, device: device)
            : null;
        var o = bert.forward(ids, features, locations, zeros_like(ids), mask, regionMask, taskIds);
        return AnswerLogits(o).MoveToOuterDisposeScope();
    }
}

/// <summary>ViLBERT's region inputs as its feature reader builds them.</summary>
public static class VilbertRegions
{
    /// <summary>
    /// Region 0 is the whole image (mean feature, location 0, 0, 1, 1, 1); each detector box becomes x1/W, y1/H, x2/W,
    /// y2/H and its area over the image area (<see cref="BoxFeatures"/>, as for feature files). Returns features
    /// [N, R+1, F], locations [N, R+1, 5], mask [N, R+1].
    /// </summary>
    public static (Tensor Features, Tensor Locations, Tensor Mask) Batch(IReadOnlyList<RegionVqaInput> items, int featureSize, int maxRegions,
                                                                          ScalarType dtype, Device device)
    {
        int longest = 0;
        foreach (var item in items)
        {
            RegionVqaBatch.Check(item, featureSize);
            longest = Math.Max(longest, (int)Math.Min(item.Features.shape[0], maxRegions));
        }
        var features = zeros(new long[] { items.Count, longest + 1, featureSize }, dtype: dtype, device: device);
        var locations = zeros(new long[] { items.Count, longest + 1, 5 }, dtype: dtype, device: device);
        var mask = zeros(new long[] { items.Count, longest + 1 }, dtype: ScalarType.Int64, device: device);
        using var _ = no_grad();
        for (int i = 0; i < items.Count; i++)
        {
            var item = items[i];
            long n = Math.Min(item.Features.shape[0], maxRegions);
            // The whole-image feature is the mean over every detector region (before the cut to max_region_num).
            features[i, 0] = BoxFeatures.VilbertMeanFeature(item.Features).to(dtype, device);
            features[i, TensorIndex.Slice(1, n + 1)] = item.Features.narrow(0, 0, n).to(dtype, device);
            locations[i, 0] = BoxFeatures.VilbertWholeImageLocation(device)[0].to(dtype);
            locations[i, TensorIndex.Slice(1, n + 1)] = BoxFeatures.VilbertLocations(item.Boxes.narrow(0, 0, n), item.ImageWidth, item.ImageHeight).to(dtype, device);
            mask[i, TensorIndex.Slice(0, n + 1)] = 1;
        }
        return (features, locations, mask);
    }
}
