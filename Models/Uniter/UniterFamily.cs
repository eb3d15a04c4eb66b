using ModelZoo.Models.Catalog;
using ModelZoo.Weights;

namespace ModelZoo.Models.Uniter;

/// <summary>UNITER (ChenRocks/UNITER): the backbone and its VQA, image–text matching and retrieval models.</summary>
public sealed class UniterFamily : ModelFamily
{
    public override string Name => "uniter";

    /// <summary>Heads of the original task and pretraining classes, by state-dict prefix.</summary>
    static readonly string[] AllHeads = { "vqa_output", "itm_output", "rank_output", "cls", "feat_regress", "region_classifier", "nce_output" };

    static KeyMap IgnoreHeads(KeyMap map, IEnumerable<string> heads)
    {
        var list = heads.ToList();
        return list.Count == 0 ? map : map.IgnoreRegex("^(" + string.Join("|", list.Select(System.Text.RegularExpressions.Regex.Escape)) + @")\.");
    }

    /// <summary>
    /// Into the backbone (keys embeddings.*, img_embeddings.*, encoder.*, pooler.*): original files with "uniter."
    /// (task and pretraining classes) or "bert." (older files) prefixes, "module." from distributed training,
    /// LayerNorm gamma/beta; task and pretraining heads are dropped (and listed as ignored in the load report).
    /// </summary>
    public static KeyMap BackboneKeyMap { get; } = IgnoreHeads(KeyMap.Identity
        .StripPrefix("module.")
        .StripPrefix("uniter.")
        .StripPrefix("bert.")
        .LegacyLayerNormNames(), AllHeads);

    /// <summary>
    /// Into a task model (keys uniter.*, plus its heads): "module." stripped, older "bert.*" read as "uniter.*",
    /// LayerNorm gamma/beta; the pretraining heads no task model has are dropped. Heads of another task are kept,
    /// so a strict load says plainly that the checkpoint belongs to a different task.
    /// </summary>
    public static KeyMap TaskKeyMap(params string[] ownHeads) => IgnoreHeads(KeyMap.Identity
        .StripPrefix("module.")
        .Rename("bert.{rest}", "uniter.{rest}")
        .LegacyLayerNormNames(), new[] { "cls", "feat_regress", "region_classifier", "nce_output" }.Except(ownHeads));

    public static UniterConfig Base { get; } = new();
    public static UniterConfig Large { get; } = new() { HiddenSize = 1024, NumHiddenLayers = 24, NumAttentionHeads = 16, IntermediateSize = 4096 };
    /// <summary>
    /// A small random-weight configuration for tests and demos: 2048-d regions like the real models, but the
    /// bundled bert-base-uncased vocabulary (30522) so that it runs without a vocabulary file.
    /// </summary>
    public static UniterConfig Tiny { get; } = new() { VocabSize = 30522, HiddenSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 512 };

    public const int VqaAnswers = 3129;

    public override IEnumerable<ModelPreset> Presets
    {
        get
        {
            foreach (var (size, config, note) in new[]
                     {
                         ("base", Base, "L=12, H=768, A=12"),
                         ("large", Large, "L=24, H=1024, A=16"),
                         ("tiny", Tiny, "L=2, H=128, A=2, random weights for tests and demos"),
                     })
            {
                string source = size == "tiny" ? "none (random initialisation)" : $"ChenRocks/UNITER download_pretrained.sh / download_vqa.sh (uniter-{size}.pt, vqa-{size}.pt)";
                yield return Preset($"uniter-{size}", $"UNITER {size} backbone ({note}; region features 2048-d, 7-d boxes)", config,
                    () => new UniterModel(config), _ => BackboneKeyMap, Array.Empty<string>(), source);
                var vqa = config with { NumAnswer = VqaAnswers };
                yield return Preset($"uniter-{size}-vqa", $"UNITER {size} with the VQA head ({VqaAnswers} answers)", vqa,
                    () => new UniterForVisualQuestionAnswering(vqa), _ => TaskKeyMap("vqa_output"), new[] { "vqa_output" }, source);
                yield return Preset($"uniter-{size}-itm", $"UNITER {size} with the image-text matching head (2-way; score = match logit)", config,
                    () => new UniterForImageTextRetrieval(config, rankOutput: false), _ => TaskKeyMap("itm_output"), new[] { "itm_output" }, source);
                yield return Preset($"uniter-{size}-retrieval", $"UNITER {size} fine-tuned for retrieval (itm_output + rank_output; score = rank_output)", config,
                    () => new UniterForImageTextRetrieval(config, rankOutput: true), _ => TaskKeyMap("itm_output", "rank_output"),
                    new[] { "itm_output", "rank_output" }, size == "tiny" ? source : $"ChenRocks/UNITER download_itm.sh (itm-coco-{size}.pt, itm-flickr-{size}.pt)");
            }
        }
    }

    static ModelPreset Preset(string name, string description, UniterConfig config, Func<TorchSharp.torch.nn.Module> build,
                              Func<ICheckpointReader, KeyMap> keyMap, string[] heads, string source) => new()
    {
        Name = name,
        Family = "uniter",
        Description = description,
        Config = config,
        Build = build,
        KeyMapFor = keyMap,
        Heads = heads,
        CheckpointFormats = new[]
        {
            "original UNITER .pt (uniter.* keys; older files bert.* with LayerNorm gamma/beta; module. prefixes)",
            "safetensors in this library's layout",
        },
        Tokenizer = config.VocabSize == 30522 ? "bert-wordpiece (bert-base-uncased, bundled)" : "bert-wordpiece-cased (bert-base-cased vocab.txt, 28996; not bundled)",
        WeightsSource = source,
    };
}
