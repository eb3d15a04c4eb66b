using ModelZoo.Models.Catalog;
using ModelZoo.Weights;

namespace ModelZoo.Models.Llama;

/// <summary>LLaMA-style decoders (RMSNorm, rotary, SwiGLU) in the Hugging Face layout.</summary>
public sealed class LlamaFamily : ModelFamily
{
    public override string Name => "llama";

    /// <summary>Hugging Face LlamaForCausalLM files: model.*, lm_head.*; rotary inv_freq buffers of older conversions ignored.</summary>
    public static KeyMap KeyMapFor(string prefix = "") => KeyMap.Identity
        .StripPrefix("module.")
        .IgnoreRegex($@"^{System.Text.RegularExpressions.Regex.Escape(prefix)}model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$");

    /// <summary>llama-tiny: 2 layers, 64 wide, 4 heads, LLaMA's vocabulary.</summary>
    public static LlamaConfig Tiny { get; } = new() { HiddenSize = 64, IntermediateSize = 172, NumHiddenLayers = 2, NumAttentionHeads = 4, MaxPositionEmbeddings = 512 };

    public override IEnumerable<ModelPreset> Presets
    {
        get
        {
            yield return new ModelPreset
            {
                Name = "llama-7b",
                Family = Name,
                Description = "LLaMA-7B (Hugging Face layout): 32 layers, 4096 wide, 32 heads, rotary, RMSNorm, SwiGLU (not checked against reference outputs yet)",
                Config = LlamaConfig.Llama7B,
                Build = () => new LlamaForCausalLM(LlamaConfig.Llama7B),
                KeyMapFor = _ => KeyMapFor(),
                CheckpointFormats = new[] { "Hugging Face LlamaForCausalLM (safetensors or pytorch_model-*.bin shards)", "safetensors in this library's layout" },
                Tokenizer = "LLaMA SentencePiece (32000 tokens; not bundled)",
                WeightsSource = "a converted LLaMA-7B checkpoint (Hugging Face layout) from the user's path",
            };
            yield return new ModelPreset
            {
                Name = "llama-tiny",
                Family = Name,
                Description = "Tiny LLaMA-style decoder (2 layers, 64 wide, 4 heads, LLaMA's 32000-token vocabulary), random weights: tests and the demo",
                Config = Tiny,
                Build = () => new LlamaForCausalLM(Tiny),
                KeyMapFor = _ => KeyMapFor(),
                CheckpointFormats = new[] { "Hugging Face LlamaForCausalLM layout", "safetensors in this library's layout" },
                Tokenizer = "LLaMA SentencePiece (32000 tokens; not bundled: use --prompt-ids)",
            };
        }
    }
}
