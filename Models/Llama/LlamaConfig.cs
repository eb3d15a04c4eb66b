namespace ModelZoo.Models.Llama;

/// <summary>Hugging Face LlamaConfig fields (config.json of a converted LLaMA checkpoint).</summary>
public sealed record LlamaConfig
{
    public int VocabSize { get; init; } = 32000;
    public int HiddenSize { get; init; } = 4096;
    public int IntermediateSize { get; init; } = 11008;
    public int NumHiddenLayers { get; init; } = 32;
    public int NumAttentionHeads { get; init; } = 32;
    /// <summary>Grouped-query attention; null = num_attention_heads (only that is supported).</summary>
    public int? NumKeyValueHeads { get; init; }
    public int MaxPositionEmbeddings { get; init; } = 2048;
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000;
    public bool TieWordEmbeddings { get; init; }
    public string HiddenAct { get; init; } = "silu";
    public bool AttentionBias { get; init; }
    public int? BosTokenId { get; init; } = 1;
    public int? EosTokenId { get; init; } = 2;

    public void Validate()
    {
        if (HiddenSize <= 0 || NumAttentionHeads <= 0 || NumHiddenLayers < 0 || VocabSize <= 0 || IntermediateSize <= 0)
            throw new ArgumentException($"invalid LLaMA config: hidden_size {HiddenSize}, heads {NumAttentionHeads}, layers {NumHiddenLayers}, vocab_size {VocabSize}");
        if (HiddenSize % NumAttentionHeads != 0 || (HiddenSize / NumAttentionHeads) % 2 != 0)
            throw new ArgumentException($"hidden_size {HiddenSize} / {NumAttentionHeads} heads must be an even head width (rotary embeddings)");
        if (NumKeyValueHeads is int kv && kv != NumAttentionHeads)
            throw new NotSupportedException($"grouped-query attention (num_key_value_heads {kv} != num_attention_heads {NumAttentionHeads}) is not supported yet");
        if (!HiddenAct.Equals("silu", StringComparison.OrdinalIgnoreCase))
            throw new NotSupportedException($"LLaMA hidden_act '{HiddenAct}' is not supported (silu only)");
    }

    /// <summary>LLaMA-7B (Hugging Face huggyllama/llama-7b).</summary>
    public static LlamaConfig Llama7B { get; } = new();
}
