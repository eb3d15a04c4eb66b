using ModelZoo.Models.Catalog;
using ModelZoo.Weights;

namespace ModelZoo.Models.Vilt;

/// <summary>ViLT (dandelin/ViLT; Hugging Face dandelin/vilt-b32-*): one model class with the heads each preset needs.</summary>
public sealed class ViltFamily : ModelFamily
{
    public override string Name => "vilt";

    /// <summary>Every head the original ViLTransformerSS can create (mpp_score only in the masked-patch ablation).</summary>
    static readonly string[] AllHeads = { "mlm_score", "itm_score", "mpp_score", "vqa_classifier", "nlvr2_classifier", "rank_output" };

    static KeyMap IgnoreOtherHeads(KeyMap map, ViltHeads heads)
    {
        var others = AllHeads.Except(heads.Names()).ToList();
        return map.IgnoreRegex("^(" + string.Join("|", others) + @")\.");
    }

    /// <summary>
    /// The original Lightning checkpoint (state_dict of ViLTransformerSS; the model's own layout): position_ids
    /// buffers are dropped, and so are heads this model does not have (the pre-training checkpoint's itm_score when
    /// loading the MLM model, the retrieval checkpoint's itm_score, ...).
    /// </summary>
    public static KeyMap OriginalKeyMap(ViltHeads heads) => IgnoreOtherHeads(KeyMap.Identity
        .Ignore("{prefix}position_ids")
        .Ignore("{prefix}embeddings.token_type_ids"), heads);

    /// <summary>
    /// Hugging Face ViltModel / ViltFor* into the original layout: vilt.embeddings.* / vilt.encoder.layer.N.* /
    /// vilt.layernorm / vilt.pooler renamed, query/key/value merged into the fused qkv, "classifier" read as the
    /// VQA or NLVR2 classifier. mlm_score.decoder.bias is the same tensor as mlm_score.bias in those files: it is
    /// dropped when mlm_score.bias is present, else read as it (<paramref name="decoderBiasOnly"/>). Reversible:
    /// <c>HuggingFaceKeyMap(heads).Reverse()</c> writes the Hugging Face layout (qkv split back).
    /// </summary>
    public static KeyMap HuggingFaceKeyMap(ViltHeads heads, bool decoderBiasOnly = false)
    {
        var map = KeyMap.Identity
            .Ignore("{prefix}position_ids")
            .Ignore("{prefix}embeddings.token_type_ids")
            .Rename("vilt.embeddings.text_embeddings.{rest}", "text_embeddings.{rest}")
            .Rename("vilt.embeddings.token_type_embeddings.{param}", "token_type_embeddings.{param}")
            .Rename("vilt.embeddings.cls_token", "transformer.cls_token")
            .Rename("vilt.embeddings.position_embeddings", "transformer.pos_embed")
            .Rename("vilt.embeddings.patch_embeddings.projection.{param}", "transformer.patch_embed.proj.{param}")
            .Merge(new[]
                {
                    "vilt.encoder.layer.{n}.attention.attention.query.{param}",
                    "vilt.encoder.layer.{n}.attention.attention.key.{param}",
                    "vilt.encoder.layer.{n}.attention.attention.value.{param}",
                }, "transformer.blocks.{n}.attn.qkv.{param}", 0)
            // attention.output.dense before output.dense: "{n}" would otherwise swallow "N.attention".
            .Rename("vilt.encoder.layer.{n}.attention.output.dense.{param}", "transformer.blocks.{n}.attn.proj.{param}")
            .Rename("vilt.encoder.layer.{n}.layernorm_before.{param}", "transformer.blocks.{n}.norm1.{param}")
            .Rename("vilt.encoder.layer.{n}.layernorm_after.{param}", "transformer.blocks.{n}.norm2.{param}")
            .Rename("vilt.encoder.layer.{n}.intermediate.dense.{param}", "transformer.blocks.{n}.mlp.fc1.{param}")
            .Rename("vilt.encoder.layer.{n}.output.dense.{param}", "transformer.blocks.{n}.mlp.fc2.{param}")
            .Rename("vilt.layernorm.{param}", "transformer.norm.{param}")
            .Rename("vilt.pooler.{rest}", "pooler.{rest}");
        if (heads.VqaAnswers is not null) map = map.Rename("classifier.{rest}", "vqa_classifier.{rest}");
        else if (heads.Nlvr2) map = map.Rename("classifier.{rest}", "nlvr2_classifier.{rest}");
        if (heads.Mlm)
            map = decoderBiasOnly ? map.Rename("mlm_score.decoder.bias", "mlm_score.bias") : map.Ignore("mlm_score.decoder.bias");
        return map;
    }

    /// <summary>Picks the layout from the keys (any "vilt." key means a Hugging Face file); "module." prefixes are stripped first.</summary>
    public static KeyMap KeyMapFor(ICheckpointReader reader, ViltHeads heads)
    {
        var names = reader.Entries.Select(e => e.Name.StartsWith("module.", StringComparison.Ordinal) ? e.Name[7..] : e.Name).ToHashSet(StringComparer.Ordinal);
        var layout = names.Any(n => n.StartsWith("vilt.", StringComparison.Ordinal))
            ? HuggingFaceKeyMap(heads, decoderBiasOnly: heads.Mlm && !names.Contains("mlm_score.bias") && names.Contains("mlm_score.decoder.bias"))
            : OriginalKeyMap(heads);
        return KeyMap.Identity.StripPrefix("module.").Then(layout);
    }

    /// <summary>ViLT-B/32 at 384 px (vit_base_patch32_384): the configuration of every published checkpoint.</summary>
    public static ViltConfig B32 { get; } = new();

    /// <summary>A small random-weight ViLT (real BERT vocabulary, 32-px patches, 64-px position grid) for tests and demos.</summary>
    public static ViltConfig Tiny { get; } = new()
    {
        HiddenSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 128, ImageSize = 64, PatchSize = 32,
    };

    public const int VqaAnswers = 3129;

    public override IEnumerable<ModelPreset> Presets
    {
        get
        {
            yield return Preset("vilt-b32-mlm", "ViLT-B/32 pre-trained (200k steps) with the masked-language-model head", B32,
                new ViltHeads { Mlm = true }, "dandelin/vilt-b32-mlm (Hugging Face) or vilt_200k_mlm_itm.ckpt (github.com/dandelin/ViLT releases)");
            yield return Preset("vilt-b32-mlm-itm", "ViLT-B/32 pre-trained with both pre-training heads (MLM and image-text matching), as the original checkpoint holds them", B32,
                new ViltHeads { Mlm = true, Itm = true }, "vilt_200k_mlm_itm.ckpt (github.com/dandelin/ViLT releases)");
            yield return Preset("vilt-b32-vqa", "ViLT-B/32 fine-tuned on VQA v2 (3129 answers)", B32 with { NumLabels = VqaAnswers },
                new ViltHeads { VqaAnswers = VqaAnswers }, "dandelin/vilt-b32-finetuned-vqa (Hugging Face) or vilt_vqa.ckpt (ViLT releases)");
            yield return Preset("vilt-b32-nlvr2", "ViLT-B/32 fine-tuned on NLVR2 (a text and two images; 3 modality types)",
                B32 with { ModalityTypeVocabSize = 3, NumImages = 2, NumLabels = 2 },
                new ViltHeads { Nlvr2 = true }, "dandelin/vilt-b32-finetuned-nlvr2 (Hugging Face) or vilt_nlvr2.ckpt (ViLT releases)");
            yield return Preset("vilt-b32-coco-retrieval", "ViLT-B/32 fine-tuned for image-text retrieval on COCO (rank_output)", B32,
                new ViltHeads { Rank = true }, "dandelin/vilt-b32-finetuned-coco (Hugging Face) or vilt_irtr_coco.ckpt (ViLT releases)");
            yield return Preset("vilt-b32-f30k-retrieval", "ViLT-B/32 fine-tuned for image-text retrieval on Flickr30k (rank_output)", B32,
                new ViltHeads { Rank = true }, "dandelin/vilt-b32-finetuned-flickr30k (Hugging Face) or vilt_irtr_f30k.ckpt (ViLT releases)");
            yield return Preset("vilt-tiny", "A tiny random-weight ViLT with the VQA head (L=2, H=64, A=2; 3129 answers) for tests and demos",
                Tiny with { NumLabels = VqaAnswers }, new ViltHeads { VqaAnswers = VqaAnswers }, "none (random initialisation)");
        }
    }

    static ModelPreset Preset(string name, string description, ViltConfig config, ViltHeads heads, string source) => new()
    {
        Name = name,
        Family = "vilt",
        Description = description,
        Config = config,
        Build = () => new ViltModel(config, heads),
        KeyMapFor = reader => KeyMapFor(reader, heads),
        Heads = heads.Names(),
        // `modelzoo convert --layout huggingface` writes the Hugging Face names (q/k/v split); "original" is the model's own layout.
        Layouts = new Dictionary<string, KeyMap> { ["huggingface"] = HuggingFaceKeyMap(heads) },
        CheckpointFormats = new[]
        {
            "original ViLT Lightning .ckpt (state_dict: transformer.blocks.N.attn.qkv fused, text_embeddings.*, vqa_classifier.*, ...)",
            "Hugging Face ViltModel / ViltFor* (vilt.encoder.layer.N.attention.attention.query, classifier.*, rank_output.*, mlm_score.*)",
            "safetensors in this library's layout (= the original keys)",
        },
        Tokenizer = "bert-wordpiece (bert-base-uncased), max 40 tokens",
        WeightsSource = source,
    };
}
