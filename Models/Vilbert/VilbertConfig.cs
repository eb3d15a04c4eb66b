using ModelZoo.Attention.Layers;
using ModelZoo.Models.Common;

namespace ModelZoo.Models.Vilbert;

/// <summary>
/// ViLBERT's BertConfig (facebookresearch/vilbert-multi-task vilbert/vilbert.py) with its own field names, so
/// config/bert_base_6layer_6conect.json and <c>BertConfig.to_dict()</c> output load as they are. Fields a file
/// leaves out take the reference constructor's defaults.
/// </summary>
public sealed record VilbertConfig : BertTextConfig
{
    // Text stream: the BERT fields of BertTextConfig, and its layers.
    public int NumHiddenLayers { get; init; } = 12;

    // Visual stream.
    public int VFeatureSize { get; init; } = 2048;
    public int VTargetSize { get; init; } = 1601;
    public int VHiddenSize { get; init; } = 768;
    public int VNumHiddenLayers { get; init; } = 3;
    public int VNumAttentionHeads { get; init; } = 12;
    public int VIntermediateSize { get; init; } = 3072;
    public double VAttentionProbsDropoutProb { get; init; } = 0.1;
    public string VHiddenAct { get; init; } = "gelu";
    public double VHiddenDropoutProb { get; init; } = 0.1;
    /// <summary>Read but unused by the reference (every weight is initialised with initializer_range).</summary>
    public double VInitializerRange { get; init; } = 0.2;

    // Co-attention.
    public int BiHiddenSize { get; init; } = 1024;
    public int BiNumAttentionHeads { get; init; } = 16;
    /// <summary>Visual layer index before which each co-attention layer runs (one entry per co-attention layer).</summary>
    public int[] VBiattentionId { get; init; } = { 0, 1 };
    /// <summary>Text layer index before which each co-attention layer runs.</summary>
    public int[] TBiattentionId { get; init; } = { 10, 11 };
    /// <summary>Text layers [0, fixed_t_layer) run without gradients (frozen).</summary>
    public int FixedTLayer { get; init; }
    /// <summary>Visual layers [0, fixed_v_layer) run without gradients (frozen).</summary>
    public int FixedVLayer { get; init; }
    public bool WithCoattention { get; init; } = true;

    // Heads and behaviour.
    /// <summary>How the pooled text and visual vectors are combined for the heads: "mul" or "sum".</summary>
    public string FusionMethod { get; init; } = "mul";
    /// <summary>A task embedding (20 tasks) is inserted after the first token, and the text mask gets a leading 1.</summary>
    public bool TaskSpecificTokens { get; init; }
    /// <summary>Expand a text batch of one to the image batch before the first co-attention layer (retrieval).</summary>
    public bool FastMode { get; init; }
    public bool InBatchPairs { get; init; }
    public bool DynamicAttention { get; init; }
    /// <summary>"bert" or "roberta"; the reference computes the same embeddings for both (positions 0..L-1).</summary>
    public string Model { get; init; } = "bert";
    public int VisualTarget { get; init; }
    public int Objective { get; init; }
    public int NumNegative { get; init; } = 128;
    public bool Visualization { get; init; }

    // Present in the published config files but not read by the reference code.
    public int? BiIntermediateSize { get; init; }
    public int? BiAttentionType { get; init; }
    public string? PoolingMethod { get; init; }

    /// <summary>Number of task embeddings when task_specific_tokens is set (hard-coded in the reference).</summary>
    public const int TaskEmbeddingCount = 20;
    /// <summary>Answer counts hard-coded in VILBertForVLTasks.</summary>
    public const int VqaAnswers = 3129, GqaAnswers = 1533;

    public static VilbertConfig Load(string path) => ConfigJson.Load<VilbertConfig>(path).Validated(path);

    public int CoAttentionLayers => VBiattentionId.Length;

    public BertLayerOptions VisualLayerOptions() => new()
    {
        Hidden = VHiddenSize,
        Heads = VNumAttentionHeads,
        Intermediate = VIntermediateSize,
        Activation = Activations.Parse(VHiddenAct),
        HiddenDropout = VHiddenDropoutProb,
        AttentionDropout = VAttentionProbsDropoutProb,
    };

    /// <summary>Checks what the reference asserts (and what it would fail on later); returns this config.</summary>
    public VilbertConfig Validated(string source = "vilbert config")
    {
        void Fail(string message) => throw new ArgumentException($"{source}: {message}");
        if (HiddenSize % NumAttentionHeads != 0) Fail($"hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}");
        if (VHiddenSize % VNumAttentionHeads != 0) Fail($"v_hidden_size {VHiddenSize} is not a multiple of v_num_attention_heads {VNumAttentionHeads}");
        if (BiHiddenSize % BiNumAttentionHeads != 0) Fail($"bi_hidden_size {BiHiddenSize} is not a multiple of bi_num_attention_heads {BiNumAttentionHeads}");
        if (VBiattentionId.Length != TBiattentionId.Length)
            Fail($"v_biattention_id has {VBiattentionId.Length} entries but t_biattention_id has {TBiattentionId.Length}; each co-attention layer needs one of each");
        for (int i = 0; i < VBiattentionId.Length; i++)
        {
            if (VBiattentionId[i] < 0 || VBiattentionId[i] > VNumHiddenLayers)
                Fail($"v_biattention_id[{i}] = {VBiattentionId[i]} is outside 0..{VNumHiddenLayers} (v_num_hidden_layers)");
            if (TBiattentionId[i] < 0 || TBiattentionId[i] > NumHiddenLayers)
                Fail($"t_biattention_id[{i}] = {TBiattentionId[i]} is outside 0..{NumHiddenLayers} (num_hidden_layers)");
            if (FixedTLayer > TBiattentionId[i]) Fail($"fixed_t_layer {FixedTLayer} is after t_biattention_id[{i}] = {TBiattentionId[i]}");
            if (FixedVLayer > VBiattentionId[i]) Fail($"fixed_v_layer {FixedVLayer} is after v_biattention_id[{i}] = {VBiattentionId[i]}");
        }
        if (FixedTLayer < 0 || FixedTLayer > NumHiddenLayers) Fail($"fixed_t_layer {FixedTLayer} is outside 0..{NumHiddenLayers}");
        if (FixedVLayer < 0 || FixedVLayer > VNumHiddenLayers) Fail($"fixed_v_layer {FixedVLayer} is outside 0..{VNumHiddenLayers}");
        if (FusionMethod is not ("sum" or "mul")) Fail($"fusion_method must be \"sum\" or \"mul\", got \"{FusionMethod}\"");
        if (Model is not ("bert" or "roberta")) Fail($"model must be \"bert\" or \"roberta\", got \"{Model}\"");
        if (DynamicAttention)
            throw new NotSupportedException($"{source}: dynamic_attention (text-gated visual self-attention) is not supported; no published ViLBERT config uses it");
        if (InBatchPairs)
            throw new NotSupportedException($"{source}: in_batch_pairs (every text paired with every image inside the encoder, a training mode) is not supported");
        _ = Activations.Parse(HiddenAct);
        _ = Activations.Parse(VHiddenAct);
        return this;
    }

    /// <summary>config/bert_base_6layer_6conect.json of vilbert-multi-task, field for field.</summary>
    public static VilbertConfig Base6Layer6Connect { get; } = new()
    {
        AttentionProbsDropoutProb = 0.1,
        HiddenAct = "gelu",
        HiddenDropoutProb = 0.1,
        HiddenSize = 768,
        InitializerRange = 0.02,
        IntermediateSize = 3072,
        MaxPositionEmbeddings = 512,
        NumAttentionHeads = 12,
        NumHiddenLayers = 12,
        TypeVocabSize = 2,
        VocabSize = 30522,
        VFeatureSize = 2048,
        VTargetSize = 1601,
        VHiddenSize = 1024,
        VNumHiddenLayers = 6,
        VNumAttentionHeads = 8,
        VIntermediateSize = 1024,
        BiHiddenSize = 1024,
        BiNumAttentionHeads = 8,
        BiIntermediateSize = 1024,
        BiAttentionType = 1,
        VAttentionProbsDropoutProb = 0.1,
        VHiddenAct = "gelu",
        VHiddenDropoutProb = 0.1,
        VInitializerRange = 0.02,
        VBiattentionId = new[] { 0, 1, 2, 3, 4, 5 },
        TBiattentionId = new[] { 6, 7, 8, 9, 10, 11 },
        PoolingMethod = "mul",
    };
}
