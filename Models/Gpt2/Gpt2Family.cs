using ModelZoo.Models.Catalog;
using ModelZoo.Weights;

namespace ModelZoo.Models.Gpt2;

/// <summary>GPT-2 decoders (OpenAI / Hugging Face checkpoints and nanoGPT files).</summary>
public sealed class Gpt2Family : ModelFamily
{
    public override string Name => "gpt2";

    static readonly string[] Conv1DWeights = { "attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight" };

    /// <summary>
    /// The key map for a GPT-2 checkpoint, chosen from its keys and shapes: Hugging Face GPT2Model (wte.*, h.N.*) or
    /// GPT2LMHeadModel / nanoGPT (transformer.*); Conv1D weights stored [in, out] are transposed (nanoGPT's own files
    /// store [out, in] and are not); the attn.bias / attn.masked_bias buffers and the tied lm_head.weight are ignored.
    /// With a <paramref name="prefix"/> the decoder's keys sit under it in a larger checkpoint ("lang_encoder." in
    /// Flamingo), already in the transformer.* layout; other keys pass through untouched.
    /// </summary>
    public static KeyMap KeyMapFor(IReadOnlyList<TensorEntry> entries, string prefix = "")
    {
        var names = entries.Select(e => (Name: Normalize(e.Name), Entry: e)).Where(x => x.Name.StartsWith(prefix, StringComparison.Ordinal))
            .Select(x => (Name: x.Name[prefix.Length..], x.Entry)).ToList();
        bool trunkOnly = prefix.Length == 0 && !names.Any(n => n.Name.StartsWith("transformer.", StringComparison.Ordinal))
                         && names.Any(n => n.Name == "wte.weight" || n.Name.StartsWith("h.", StringComparison.Ordinal));
        var attn = names.FirstOrDefault(n => n.Name.EndsWith("attn.c_attn.weight", StringComparison.Ordinal)).Entry;
        bool conv1D = attn is not null && attn.Shape.Length == 2 && attn.Shape[1] == 3 * attn.Shape[0] && attn.Shape[0] != 0;

        string p = System.Text.RegularExpressions.Regex.Escape(prefix);
        var map = KeyMap.Identity
            .StripPrefix("module.")
            .StripPrefix("_orig_mod.")
            .IgnoreRegex($@"^{p}(transformer\.)?h\.\d+\.attn\.(bias|masked_bias)$")
            .IgnoreRegex($@"^{p}lm_head\.weight$");
        if (trunkOnly) map = map.AddPrefix("transformer.");
        if (conv1D)
            foreach (var name in Conv1DWeights) map = map.Transpose(prefix + "transformer.h.{layer}." + name);
        return map;
    }

    /// <summary>Hugging Face GPT2LMHeadModel layout (transformer.*, Conv1D weights [in, out]); reversible, so `convert --layout huggingface` writes it.</summary>
    public static KeyMap HuggingFaceLayout { get; } = Conv1DWeights.Aggregate(
        KeyMap.Identity.IgnoreRegex(@"^(transformer\.)?h\.\d+\.attn\.(bias|masked_bias)$").IgnoreRegex(@"^lm_head\.weight$"),
        (map, name) => map.Transpose("transformer.h.{layer}." + name));

    static string Normalize(string key)
    {
        if (key.StartsWith("module.", StringComparison.Ordinal)) key = key["module.".Length..];
        if (key.StartsWith("_orig_mod.", StringComparison.Ordinal)) key = key["_orig_mod.".Length..];
        return key;
    }

    public override IEnumerable<ModelPreset> Presets
    {
        get
        {
            yield return Preset("gpt2", "GPT-2 small (124M; OpenAI / Hugging Face gpt2): 12 layers, 768 wide, 12 heads, tanh GELU", Gpt2Config.Gpt2Small);
            yield return Preset("gpt2-small", "Same as gpt2 (the 124M model under its size name)", Gpt2Config.Gpt2Small);
        }
    }

    static ModelPreset Preset(string name, string description, Gpt2Config config) => new()
    {
        Name = name,
        Family = "gpt2",
        Description = description,
        Config = config,
        Build = () => new Gpt2LMHeadModel(config),
        KeyMapFor = reader => KeyMapFor(reader.Entries),
        Layouts = new Dictionary<string, KeyMap> { ["huggingface"] = HuggingFaceLayout },
        CheckpointFormats = new[]
        {
            "Hugging Face GPT2LMHeadModel / GPT2Model (model.safetensors or pytorch_model.bin; Conv1D weights transposed on load)",
            "nanoGPT state dict (transformer.*, lm_head tied)",
            "safetensors in this library's layout (transformer.*)",
        },
        Tokenizer = "gpt2 byte-level BPE (50257 tokens)",
        WeightsSource = "Hugging Face openai-community/gpt2",
    };
}
