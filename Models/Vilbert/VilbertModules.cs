using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Vilbert;

// ViLBERT's modules with the reference's state-dict names:
//   embeddings.{word,position,token_type,task}_embeddings, embeddings.LayerNorm
//   v_embeddings.{image_embeddings,image_location_embeddings,LayerNorm}
//   encoder.layer.N (text BertLayer), encoder.v_layer.N (visual BertLayer), encoder.c_layer.N (co-attention):
//     biattention.{query1,key1,value1 (visual), query2,key2,value2 (text)}
//     biOutput.{dense1,LayerNorm1,q_dense1,dense2,LayerNorm2,q_dense2}, {v,t}_intermediate.dense, {v,t}_output.{dense,LayerNorm}

/// <summary>Text embeddings; with task tokens, a task embedding is inserted after the first token before the LayerNorm.</summary>
public sealed class VilbertEmbeddings : nn.Module
{
    readonly Embedding word_embeddings, position_embeddings, token_type_embeddings;
    readonly Embedding? task_embeddings;
    readonly LayerNorm LayerNorm;
    readonly Dropout dropout;

    public VilbertEmbeddings(VilbertConfig config) : base("embeddings")
    {
        word_embeddings = nn.Embedding(config.VocabSize, config.HiddenSize, padding_idx: 0);
        position_embeddings = nn.Embedding(config.MaxPositionEmbeddings, config.HiddenSize);
        token_type_embeddings = nn.Embedding(config.TypeVocabSize, config.HiddenSize);
        if (config.TaskSpecificTokens) task_embeddings = nn.Embedding(VilbertConfig.TaskEmbeddingCount, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, 1e-12);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    public Embedding WordEmbeddings => word_embeddings;

    /// <summary>input_txt [B, L], token types [B, L], task ids [B, 1] (with task tokens) → [B, L (+1), hidden].</summary>
    public Tensor forward(Tensor inputIds, Tensor tokenTypeIds, Tensor? taskIds)
    {
        // Positions count the text tokens only: the task token has no position or type embedding.
        var positions = arange(inputIds.shape[1], dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0);
        var sum = word_embeddings.forward(inputIds) + position_embeddings.forward(positions) + token_type_embeddings.forward(tokenTypeIds);
        if (task_embeddings is not null)
        {
            if (taskIds is null) throw new ArgumentException("this ViLBERT uses task tokens (task_specific_tokens): pass task_ids [batch, 1]");
            var task = task_embeddings.forward(taskIds);
            sum = cat(new[] { sum.narrow(1, 0, 1), task, sum.narrow(1, 1, sum.shape[1] - 1) }, 1);
        }
        return dropout.forward(LayerNorm.forward(sum));
    }
}

/// <summary>Region features and 5-d locations, each through a Linear, summed, LayerNorm.</summary>
public sealed class VilbertImageEmbeddings : nn.Module
{
    readonly Linear image_embeddings, image_location_embeddings;
    readonly LayerNorm LayerNorm;
    readonly Dropout dropout;

    public const int LocationDim = 5;

    public VilbertImageEmbeddings(VilbertConfig config) : base("v_embeddings")
    {
        image_embeddings = nn.Linear(config.VFeatureSize, config.VHiddenSize);
        image_location_embeddings = nn.Linear(LocationDim, config.VHiddenSize);
        LayerNorm = nn.LayerNorm(config.VHiddenSize, 1e-12);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <summary>features [B, R, v_feature_size], locations [B, R, 5] → [B, R, v_hidden].</summary>
    public Tensor forward(Tensor features, Tensor locations) =>
        dropout.forward(LayerNorm.forward(image_embeddings.forward(features) + image_location_embeddings.forward(locations)));
}

/// <summary>
/// After co-attention: per stream a dense back to the stream width, dropout, LayerNorm with the residual.
/// q_dense1 / q_dense2 exist in the reference (and in every checkpoint) but are never used.
/// </summary>
public sealed class VilbertBiOutput : nn.Module
{
    readonly Linear dense1, q_dense1, dense2, q_dense2;
    readonly LayerNorm LayerNorm1, LayerNorm2;
    readonly Dropout dropout1, dropout2;

    public VilbertBiOutput(VilbertConfig config) : base("biOutput")
    {
        dense1 = nn.Linear(config.BiHiddenSize, config.VHiddenSize);
        LayerNorm1 = nn.LayerNorm(config.VHiddenSize, 1e-12);
        dropout1 = nn.Dropout(config.VHiddenDropoutProb);
        q_dense1 = nn.Linear(config.BiHiddenSize, config.VHiddenSize);
        dense2 = nn.Linear(config.BiHiddenSize, config.HiddenSize);
        LayerNorm2 = nn.LayerNorm(config.HiddenSize, 1e-12);
        dropout2 = nn.Dropout(config.HiddenDropoutProb);
        q_dense2 = nn.Linear(config.BiHiddenSize, config.HiddenSize);
        RegisterComponents();
    }

    /// <summary>(visual context [B, R, bi], visual residual, text context [B, L, bi], text residual) → (visual, text).</summary>
    public (Tensor Visual, Tensor Text) forward(Tensor visualContext, Tensor visual, Tensor textContext, Tensor text) =>
        (LayerNorm1.forward(dropout1.forward(dense1.forward(visualContext)) + visual),
         LayerNorm2.forward(dropout2.forward(dense2.forward(textContext)) + text));
}

/// <summary>
/// A co-attention layer (BertConnectionLayer): visual queries attend over the text and text queries over the
/// regions at once, each direction with its own weights, then a feed-forward block per stream.
/// </summary>
public sealed class VilbertConnectionLayer : nn.Module
{
    readonly CoAttention biattention;
    readonly VilbertBiOutput biOutput;
    readonly BertIntermediate v_intermediate, t_intermediate;
    readonly BertResidualOutput v_output, t_output;

    public VilbertConnectionLayer(VilbertConfig config) : base("c_layer")
    {
        // Visual queries (query1) over text keys/values (key2, value2), and text queries (query2) over visual keys/values
        // (key1, value1); the six projections sit flat on "biattention" as in the reference.
        var visualOverText = new MultiHeadAttentionOptions
        {
            QueryDim = config.VHiddenSize, KeyValueDim = config.HiddenSize, InnerDim = config.BiHiddenSize, Heads = config.BiNumAttentionHeads,
            Names = new AttentionNames { Query = "query1", Key = "key2", Value = "value2", Output = null },
            Dropout = config.AttentionProbsDropoutProb,
        };
        var textOverVisual = new MultiHeadAttentionOptions
        {
            QueryDim = config.HiddenSize, KeyValueDim = config.VHiddenSize, InnerDim = config.BiHiddenSize, Heads = config.BiNumAttentionHeads,
            Names = new AttentionNames { Query = "query2", Key = "key1", Value = "value1", Output = null },
            Dropout = config.VAttentionProbsDropoutProb,
        };
        biattention = new CoAttention(visualOverText, textOverVisual, flatten: true);
        biOutput = new VilbertBiOutput(config);
        v_intermediate = new BertIntermediate(config.VHiddenSize, config.VIntermediateSize, Activations.Parse(config.VHiddenAct));
        v_output = new BertResidualOutput(config.VIntermediateSize, config.VHiddenSize, 1e-12, config.VHiddenDropoutProb);
        t_intermediate = new BertIntermediate(config.HiddenSize, config.IntermediateSize, Activations.Parse(config.HiddenAct));
        t_output = new BertResidualOutput(config.IntermediateSize, config.HiddenSize, 1e-12, config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <summary>visual [B, R, v_hidden], text [B, L, hidden], padding masks (true = real) → (visual, text).</summary>
    public (Tensor Visual, Tensor Text) forward(Tensor visual, Tensor visualPadding, Tensor text, Tensor textPadding)
    {
        var (visualContext, textContext) = biattention.forward(visual, text, visualPadding, textPadding);
        var (v, t) = biOutput.forward(visualContext, visual, textContext, text);
        return (v_output.forward(v_intermediate.forward(v), v), t_output.forward(t_intermediate.forward(t), t));
    }
}

/// <summary>Per-layer outputs of the two-stream encoder (a layer that never ran has null; one that ran twice keeps its last output).</summary>
public sealed record VilbertEncoderOutput(Tensor Text, Tensor Visual, Tensor?[] TextLayers, Tensor?[] VisualLayers, (Tensor Text, Tensor Visual)?[] CoLayers);

/// <summary>What one step of the encoder runs.</summary>
public enum VilbertStepKind { TextLayer, VisualLayer, CoAttention, ExpandText }

/// <summary>One step of the encoder schedule: a layer (by index within its stack), frozen = run without gradients.</summary>
public readonly record struct VilbertStep(VilbertStepKind Kind, int Index, bool Frozen = false)
{
    public override string ToString() => Kind switch
    {
        VilbertStepKind.TextLayer => $"t{Index}{(Frozen ? "*" : "")}",
        VilbertStepKind.VisualLayer => $"v{Index}{(Frozen ? "*" : "")}",
        VilbertStepKind.CoAttention => $"c{Index}",
        _ => "expand",
    };
}

/// <summary>
/// The two streams and the co-attention layers between them, scheduled exactly as the reference BertEncoder.forward
/// does (see <see cref="Schedule"/>).
/// </summary>
public sealed class VilbertEncoder : nn.Module
{
    readonly ModuleList<BertLayer> layer, v_layer;
    readonly ModuleList<VilbertConnectionLayer> c_layer;

    public IReadOnlyList<VilbertStep> Steps { get; }
    public BertLayer TextLayer(int index) => layer[index];
    public BertLayer VisualLayer(int index) => v_layer[index];
    public VilbertConnectionLayer CoLayer(int index) => c_layer[index];

    public VilbertEncoder(VilbertConfig config) : base("encoder")
    {
        layer = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new BertLayer(config.LayerOptions())).ToArray());
        v_layer = nn.ModuleList(Enumerable.Range(0, config.VNumHiddenLayers).Select(_ => new BertLayer(config.VisualLayerOptions())).ToArray());
        c_layer = nn.ModuleList(Enumerable.Range(0, config.CoAttentionLayers).Select(_ => new VilbertConnectionLayer(config)).ToArray());
        Steps = Schedule(config);
        RegisterComponents();
    }

    /// <summary>
    /// The order the reference runs the layers in. For co-attention layer k: text layers from where the text stream
    /// stopped up to t_biattention_id[k] (those before fixed_t_layer frozen), visual layers likewise up to
    /// v_biattention_id[k], then (fast_mode, k = 0 only) the text is expanded to the image batch, then layer k
    /// (skipped when with_coattention is false). Afterwards the remaining visual layers, then the remaining text layers.
    /// </summary>
    public static IReadOnlyList<VilbertStep> Schedule(VilbertConfig config)
    {
        var steps = new List<VilbertStep>();
        int vStart = 0, tStart = 0;
        for (int count = 0; count < config.VBiattentionId.Length; count++)
        {
            int vEnd = config.VBiattentionId[count], tEnd = config.TBiattentionId[count];
            // As in the reference, the frozen range moves the start only when it actually ran.
            if (tStart < config.FixedTLayer)
            {
                for (int i = tStart; i < config.FixedTLayer; i++) steps.Add(new(VilbertStepKind.TextLayer, i, Frozen: true));
                tStart = config.FixedTLayer;
            }
            for (int i = tStart; i < tEnd; i++) steps.Add(new(VilbertStepKind.TextLayer, i));
            if (vStart < config.FixedVLayer)
            {
                for (int i = vStart; i < config.FixedVLayer; i++) steps.Add(new(VilbertStepKind.VisualLayer, i, Frozen: true));
                vStart = config.FixedVLayer;
            }
            for (int i = vStart; i < vEnd; i++) steps.Add(new(VilbertStepKind.VisualLayer, i));
            if (count == 0 && config.FastMode) steps.Add(new(VilbertStepKind.ExpandText, 0));
            if (config.WithCoattention) steps.Add(new(VilbertStepKind.CoAttention, count));
            vStart = vEnd;
            tStart = tEnd;
        }
        for (int i = vStart; i < config.VNumHiddenLayers; i++) steps.Add(new(VilbertStepKind.VisualLayer, i));
        for (int i = tStart; i < config.NumHiddenLayers; i++) steps.Add(new(VilbertStepKind.TextLayer, i));
        return steps;
    }

    /// <summary>text [B, L, hidden] with padding [B, L]; visual [B, R, v_hidden] with padding [B, R] (true = real).</summary>
    public VilbertEncoderOutput forward(Tensor text, Tensor textPadding, Tensor visual, Tensor visualPadding)
    {
        var textLayers = new Tensor?[layer.Count];
        var visualLayers = new Tensor?[v_layer.Count];
        var coLayers = new (Tensor, Tensor)?[c_layer.Count];
        var textMask = AttentionMask.FromPadding(textPadding);
        var visualMask = AttentionMask.FromPadding(visualPadding);
        foreach (var step in Steps)
        {
            using var frozen = step.Frozen ? no_grad() : null;
            switch (step.Kind)
            {
                case VilbertStepKind.TextLayer:
                    textLayers[step.Index] = text = layer[step.Index].forward(text, textMask);
                    break;
                case VilbertStepKind.VisualLayer:
                    visualLayers[step.Index] = visual = v_layer[step.Index].forward(visual, visualMask);
                    break;
                case VilbertStepKind.ExpandText:
                    // fast_mode: one text against a batch of images (retrieval); a no-op when the batches agree.
                    if (text.shape[0] != visual.shape[0])
                    {
                        if (text.shape[0] != 1) throw new ArgumentException($"fast_mode expands one text to every image, but the text batch is {text.shape[0]} and the image batch {visual.shape[0]}");
                        text = text.expand(visual.shape[0], -1, -1);
                        textPadding = textPadding.expand(visual.shape[0], -1);
                        textMask = AttentionMask.FromPadding(textPadding);
                    }
                    break;
                case VilbertStepKind.CoAttention:
                    (visual, text) = c_layer[step.Index].forward(visual, visualPadding, text, textPadding);
                    coLayers[step.Index] = (text, visual);
                    break;
            }
        }
        return new VilbertEncoderOutput(text, visual, textLayers, visualLayers, coLayers);
    }
}
