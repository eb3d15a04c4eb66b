using ModelZoo.Models.Catalog;
using ModelZoo.Weights;

namespace ModelZoo.Models.Mpt;

/// <summary>MosaicML MPT decoders (ALiBi, bias-free), the language models of the published OpenFlamingo checkpoints.</summary>
public sealed class MptFamily : ModelFamily
{
    public override string Name => "mpt";

    /// <summary>
    /// Hugging Face MPT files (transformer.*, tied head) load as they are; the older mosaic_gpt names (ln_1, ln_2,
    /// mlp.mlp_up, mlp.mlp_down, ln_f) are renamed. <paramref name="prefix"/> = where the decoder sits (Flamingo: "lang_encoder.").
    /// </summary>
    public static KeyMap KeyMapFor(string prefix = "") => KeyMap.Identity
        .StripPrefix("module.")
        .IgnoreRegex($@"^{System.Text.RegularExpressions.Regex.Escape(prefix)}lm_head\.weight$")
        .Rename(prefix + "transformer.blocks.{n}.ln_1.{p}", prefix + "transformer.blocks.{n}.norm_1.{p}")
        .Rename(prefix + "transformer.blocks.{n}.ln_2.{p}", prefix + "transformer.blocks.{n}.norm_2.{p}")
        .Rename(prefix + "transformer.blocks.{n}.mlp.mlp_up.{p}", prefix + "transformer.blocks.{n}.ffn.up_proj.{p}")
        .Rename(prefix + "transformer.blocks.{n}.mlp.mlp_down.{p}", prefix + "transformer.blocks.{n}.ffn.down_proj.{p}")
        .Rename(prefix + "transformer.ln_f.{p}", prefix + "transformer.norm_f.{p}");

    /// <summary>mpt-tiny: MPT-1B's options (ALiBi, QK LayerNorm, no biases) at 2 layers × 64 wide.</summary>
    public static MptConfig Tiny { get; } = new() { DModel = 64, NHeads = 4, NLayers = 2, VocabSize = 50432, MaxSeqLen = 512, AttnConfig = new MptAttentionConfig { QkLn = true } };

    public override IEnumerable<ModelPreset> Presets
    {
        get
        {
            yield return new ModelPreset
            {
                Name = "mpt-7b",
                Family = Name,
                Description = "MosaicML MPT-7B: 32 layers, 4096 wide, 32 heads, ALiBi, no biases (not checked against reference outputs yet)",
                Config = MptConfig.Mpt7B,
                Build = () => new MptForCausalLM(MptConfig.Mpt7B),
                KeyMapFor = _ => KeyMapFor(),
                CheckpointFormats = new[] { "Hugging Face mosaicml/mpt-7b (transformer.*; pytorch_model-*.bin shards or safetensors)", "safetensors in this library's layout" },
                Tokenizer = "EleutherAI/gpt-neox-20b BPE",
                WeightsSource = "Hugging Face mosaicml/mpt-7b",
            };
            yield return new ModelPreset
            {
                Name = "mpt-1b-redpajama-200b",
                Family = Name,
                Description = "MosaicML MPT-1B-RedPajama-200b (mosaic_gpt; OpenFlamingo-3B's decoder): 24 layers, 2048 wide, 16 heads, ALiBi, QK LayerNorm, no biases (not checked against reference outputs yet)",
                Config = MptConfig.Mpt1B,
                Build = () => new MptForCausalLM(MptConfig.Mpt1B),
                KeyMapFor = _ => KeyMapFor(),
                CheckpointFormats = new[] { "Hugging Face mosaicml/mpt-1b-redpajama-200b or anas-awadalla/mpt-1b-redpajama-200b (mosaic_gpt names: ln_1, ln_2, mlp.mlp_up/mlp_down, ln_f)", "safetensors in this library's layout" },
                Tokenizer = "EleutherAI/gpt-neox-20b BPE (not bundled: --vocab tokenizer.json or --prompt-ids)",
                WeightsSource = "Hugging Face anas-awadalla/mpt-1b-redpajama-200b (pytorch_model.bin)",
            };
            yield return new ModelPreset
            {
                Name = "mpt-tiny",
                Family = Name,
                Description = "Tiny MPT (2 layers, 64 wide, 4 heads, ALiBi, QK LayerNorm, no biases, GPT-NeoX-sized vocabulary 50432), random weights: tests and the demo",
                Config = Tiny,
                Build = () => new MptForCausalLM(Tiny),
                KeyMapFor = _ => KeyMapFor(),
                CheckpointFormats = new[] { "llm-foundry / Hugging Face MPT layout or mosaic_gpt names", "safetensors in this library's layout" },
                Tokenizer = "EleutherAI/gpt-neox-20b BPE (not bundled: --vocab tokenizer.json or --prompt-ids)",
            };
        }
    }
}
