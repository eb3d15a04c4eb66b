using System.Text.RegularExpressions;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Gpt2;
using ModelZoo.Models.Llama;
using ModelZoo.Models.Mpt;
using ModelZoo.Weights;

namespace ModelZoo.Models.Flamingo;

/// <summary>Flamingo-style models: flamingo-tiny (random weights, for tests and the demo) and the OpenFlamingo releases.</summary>
public sealed class FlamingoFamily : ModelFamily
{
    public override string Name => "flamingo";

    /// <summary>GPT-2 ids of the tokens OpenFlamingo adds: "&lt;|endofchunk|&gt;", "&lt;image&gt;", then "&lt;PAD&gt;".</summary>
    public const int Gpt2EndOfChunk = 50257, Gpt2Media = 50258, Gpt2Pad = 50259, Gpt2Eos = 50256;

    /// <summary>flamingo-tiny: a 2-layer ViT on 32×32 images, a 2-layer resampler and a 4-layer GPT-2 with the GPT-2 vocabulary.</summary>
    public static FlamingoConfig Tiny { get; } = new()
    {
        VisionEncoder = new VisionTransformerConfig { ImageSize = 32, PatchSize = 8, Width = 64, Layers = 2, Heads = 4, OutputDim = 32, QuickGelu = true },
        Gpt2 = new Gpt2Config
        {
            VocabSize = 50260, NPositions = 1024, NCtx = 1024, NEmbd = 64, NLayer = 4, NHead = 4, ActivationFunction = "gelu_new",
            BosTokenId = Gpt2Eos, EosTokenId = Gpt2Eos,
        },
        Perceiver = new PerceiverConfig { Dim = 64, Depth = 2, DimHead = 16, Heads = 4, NumLatents = 8 },
        CrossAttnEveryNLayers = 2,
        CrossAttnDimHead = 16,
        CrossAttnHeads = 4,
        BaseVocabSize = 50257,
        EndOfChunkTokenId = Gpt2EndOfChunk,
        MediaTokenId = Gpt2Media,
        PadTokenId = Gpt2Pad,
        EosTokenId = Gpt2Eos,
    };

    /// <summary>open_clip ViT-L-14 (OpenAI weights) as OpenFlamingo uses it.</summary>
    static readonly VisionTransformerConfig VitL14 = new() { ImageSize = 224, PatchSize = 14, Width = 1024, Layers = 24, Heads = 16, OutputDim = 768, QuickGelu = true };

    // The GPT-NeoX tokenizer of the MPT models has 50277 tokens; OpenFlamingo adds <|endofchunk|>, <image>, <PAD> and
    // resizes the embeddings to 50280.
    static FlamingoConfig OpenFlamingo(MptConfig mpt, int everyN) => new()
    {
        VisionEncoder = VitL14,
        Mpt = mpt with { VocabSize = 50280 },
        Perceiver = new PerceiverConfig { Dim = 1024 },
        CrossAttnEveryNLayers = everyN,
        BaseVocabSize = 50277,
        EndOfChunkTokenId = 50277,
        MediaTokenId = 50278,
        PadTokenId = 50279,
        EosTokenId = 0,
    };

    public override IEnumerable<ModelPreset> Presets
    {
        get
        {
            yield return new ModelPreset
            {
                Name = "flamingo-tiny",
                Family = Name,
                Description = "Tiny Flamingo (2-layer ViT 32x32, 2-layer perceiver, 4-layer GPT-2 with cross-attention every 2 layers), random weights: tests and the demo",
                Config = Tiny,
                Build = () => new FlamingoModel(Tiny),
                KeyMapFor = reader => KeyMapFor(reader.Entries, Tiny),
                CheckpointFormats = Formats,
                Tokenizer = "gpt2 byte-level BPE + <|endofchunk|> (50257), <image> (50258), <PAD> (50259)",
            };
            yield return OpenFlamingoPreset("openflamingo-3b-vitl-mpt1b", "OpenFlamingo-3B: CLIP ViT-L/14 + MPT-1B (RedPajama; ALiBi, QK LayerNorm, no biases), cross-attention every layer",
                OpenFlamingo(MptConfig.Mpt1B, 1), "3 files, passed together (--weights A --weights B --weights C): open_clip ViT-L-14 'openai' weights (vision tower), " +
                "Hugging Face anas-awadalla/mpt-1b-redpajama-200b (the MPT-1B decoder), openflamingo/OpenFlamingo-3B-vitl-mpt1b checkpoint.pt (perceiver, cross-attention, embeddings)");
            yield return OpenFlamingoPreset("openflamingo-9b-vitl-mpt7b", "OpenFlamingo-9B: CLIP ViT-L/14 + MPT-7B, cross-attention every 4 layers",
                OpenFlamingo(MptConfig.Mpt7B, 4), "3 files, passed together (--weights A --weights B --weights C): open_clip ViT-L-14 'openai' weights (vision tower), " +
                "Hugging Face mosaicml/mpt-7b (the decoder), openflamingo/OpenFlamingo-9B-vitl-mpt7b checkpoint.pt (perceiver, cross-attention, embeddings)");
        }
    }

    static readonly string[] Formats =
    {
        "OpenFlamingo state dict (vision_encoder.*, perceiver.*, lang_encoder.* with FlamingoLayer wrappers or gated_cross_attn_layers.N.*)",
        "safetensors in this library's layout (vision_encoder.*, perceiver.*, lang_encoder.transformer.*, lang_encoder.gated_cross_attn_layers.N.*)",
        "several files loaded together (WeightsPaths / --weights repeated): an open_clip or OpenAI CLIP checkpoint (visual.*), a bare decoder LM checkpoint, an OpenFlamingo checkpoint.pt; a key in several files comes from the last",
    };

    static ModelPreset OpenFlamingoPreset(string name, string description, FlamingoConfig config, string source) => new()
    {
        Name = name,
        Family = "flamingo",
        Description = description,
        Config = config,
        Build = () => new FlamingoModel(config),
        KeyMapFor = reader => KeyMapFor(reader.Entries, config),
        CheckpointFormats = Formats,
        Tokenizer = "EleutherAI/gpt-neox-20b BPE + <|endofchunk|>, <image>, <PAD> (not bundled: pass the model's tokenizer.json with --vocab, or --prompt-ids)",
        WeightsSource = source,
    };

    /// <summary>
    /// OpenFlamingo checkpoints to this library's layout: the decoder layers wrapped in FlamingoLayer
    /// (lang_encoder.transformer.h.N.decoder_layer.* / .gated_cross_attn_layer.*) are unwrapped, the duplicate copies
    /// under lang_encoder.old_decoder_blocks.* (and gated_cross_attn_layers.* when the wrapped copy exists) are
    /// ignored, then the decoder's own map applies under lang_encoder. (Hugging Face GPT-2 Conv1D transposes).
    /// </summary>
    public static KeyMap KeyMapFor(IReadOnlyList<TensorEntry> entries, FlamingoConfig config)
    {
        // One file of a model stored in parts (ModelCreateOptions.WeightsPaths): an open_clip / OpenAI CLIP checkpoint
        // gives the vision tower (visual.* → vision_encoder.*, the text tower ignored); a bare decoder LM checkpoint
        // (transformer.* / model.* / h.N.*) sits under lang_encoder.
        static string Bare(string name) => name.StartsWith("module.", StringComparison.Ordinal) ? name["module.".Length..] : name;
        bool flamingoLayout = entries.Any(e => Bare(e.Name) is var n
            && (n.StartsWith("vision_encoder.", StringComparison.Ordinal) || n.StartsWith("perceiver.", StringComparison.Ordinal) || n.StartsWith("lang_encoder.", StringComparison.Ordinal)));
        if (!flamingoLayout && entries.Any(e => Bare(e.Name).StartsWith("visual.", StringComparison.Ordinal)))
            return KeyMap.Identity.StripPrefix("module.").IgnoreRegex(@"^(?!visual\.)").Rename("visual.{rest}", "vision_encoder.{rest}");
        if (!flamingoLayout)
        {
            var prefixed = entries.Select(e => e with { Name = "lang_encoder." + Bare(e.Name) }).ToList();
            return KeyMap.Identity.StripPrefix("module.").AddPrefix("lang_encoder.").Then(KeyMapFor(prefixed, config));
        }
        var wrapped = new Regex(@"^(module\.)?lang_encoder\.(transformer\.h|transformer\.blocks|model\.layers)\.\d+\.gated_cross_attn_layer\.", RegexOptions.CultureInvariant);
        var map = KeyMap.Identity
            .StripPrefix("module.")
            .Ignore("lang_encoder.old_decoder_blocks.{rest}");
        if (entries.Any(e => wrapped.IsMatch(e.Name)))
            map = map.Ignore("lang_encoder.gated_cross_attn_layers.{rest}")
                .RenameRegex(@"^lang_encoder\.(transformer\.h|transformer\.blocks|model\.layers)\.(\d+)\.gated_cross_attn_layer\.", "lang_encoder.gated_cross_attn_layers.$2.");
        map = map.RenameRegex(@"^lang_encoder\.(transformer\.h|transformer\.blocks|model\.layers)\.(\d+)\.decoder_layer\.", "lang_encoder.$1.$2.");
        if (config.Mpt is not null) return map.Then(MptFamily.KeyMapFor("lang_encoder."));
        if (config.Llama is not null) return map.Then(LlamaFamily.KeyMapFor("lang_encoder."));
        var decoderEntries = entries.Select(e => e with { Name = UnwrapName(e.Name) }).ToList();
        return map.Then(Gpt2Family.KeyMapFor(decoderEntries, "lang_encoder."));
    }

    static string UnwrapName(string name)
    {
        if (name.StartsWith("module.", StringComparison.Ordinal)) name = name["module.".Length..];
        return Regex.Replace(name, @"^lang_encoder\.(transformer\.h|transformer\.blocks|model\.layers)\.(\d+)\.decoder_layer\.", "lang_encoder.$1.$2.");
    }
}
