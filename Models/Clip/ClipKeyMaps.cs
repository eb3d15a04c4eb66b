using ModelZoo.Weights;

namespace ModelZoo.Models.Clip;

/// <summary>
/// Checkpoint layouts of CLIP. The model's own names are openai/CLIP's, so original state_dicts load as they are;
/// Hugging Face CLIPModel files are renamed, their q/k/v projections merged into in_proj_*, and the projection
/// matrices transposed (nn.Linear weights there, raw [width, embed] parameters here).
/// </summary>
public static class ClipKeyMaps
{
    /// <summary>openai/CLIP state_dicts, including those taken from the TorchScript release files (which add three int entries).</summary>
    public static KeyMap Original { get; } = KeyMap.Identity
        .StripPrefix("module.")
        .Ignore("input_resolution")
        .Ignore("context_length")
        .Ignore("vocab_size");

    /// <summary>Hugging Face transformers CLIPModel (openai/clip-vit-*): vision_model.*, text_model.*, visual_projection, text_projection.</summary>
    public static KeyMap HuggingFace { get; } = BuildHuggingFace();

    static KeyMap BuildHuggingFace()
    {
        var map = KeyMap.Identity
            .Ignore("{tower}.embeddings.position_ids")
            .Rename("vision_model.embeddings.class_embedding", "visual.class_embedding")
            .Rename("vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight")
            .Rename("vision_model.embeddings.position_embedding.weight", "visual.positional_embedding")
            .Rename("vision_model.pre_layrnorm.{p}", "visual.ln_pre.{p}")
            .Rename("vision_model.post_layernorm.{p}", "visual.ln_post.{p}")
            .Rename("visual_projection.weight", "visual.proj")
            .Transpose("visual.proj")
            .Rename("text_model.embeddings.token_embedding.weight", "token_embedding.weight")
            .Rename("text_model.embeddings.position_embedding.weight", "positional_embedding")
            .Rename("text_model.final_layer_norm.{p}", "ln_final.{p}")
            .Rename("text_projection.weight", "text_projection")
            .Transpose("text_projection");
        map = Layers(map, "vision_model.encoder.layers", "visual.transformer.resblocks");
        return Layers(map, "text_model.encoder.layers", "transformer.resblocks");
    }

    static KeyMap Layers(KeyMap map, string from, string to) => map
        .Merge(new[] { $"{from}.{{n}}.self_attn.q_proj.{{p}}", $"{from}.{{n}}.self_attn.k_proj.{{p}}", $"{from}.{{n}}.self_attn.v_proj.{{p}}" },
            $"{to}.{{n}}.attn.in_proj_{{p}}", 0)
        .Rename($"{from}.{{n}}.self_attn.out_proj.{{p}}", $"{to}.{{n}}.attn.out_proj.{{p}}")
        .Rename($"{from}.{{n}}.layer_norm1.{{p}}", $"{to}.{{n}}.ln_1.{{p}}")
        .Rename($"{from}.{{n}}.layer_norm2.{{p}}", $"{to}.{{n}}.ln_2.{{p}}")
        .Rename($"{from}.{{n}}.mlp.fc1.{{p}}", $"{to}.{{n}}.mlp.c_fc.{{p}}")
        .Rename($"{from}.{{n}}.mlp.fc2.{{p}}", $"{to}.{{n}}.mlp.c_proj.{{p}}");

    /// <summary>Hugging Face keys saved from a DataParallel/DDP wrapper ("module.vision_model..."): the prefix stripped first.
    /// Kept apart from <see cref="HuggingFace"/>, which must stay reversible without adding "module." when writing.</summary>
    static KeyMap HuggingFaceFromWrapper { get; } = KeyMap.Identity.StripPrefix("module.").Then(HuggingFace);

    /// <summary>Picks the map from the checkpoint's keys (after a "module." prefix is stripped).</summary>
    public static KeyMap For(ICheckpointReader reader) => IsHuggingFace(reader.Entries.Select(e => e.Name))
        ? (reader.Entries.Any(e => e.Name.StartsWith("module.", StringComparison.Ordinal)) ? HuggingFaceFromWrapper : HuggingFace)
        : Original;

    public static bool IsHuggingFace(IEnumerable<string> keys) =>
        keys.Select(k => k.StartsWith("module.", StringComparison.Ordinal) ? k["module.".Length..] : k)
            .Any(k => k.StartsWith("vision_model.", StringComparison.Ordinal) || k.StartsWith("text_model.", StringComparison.Ordinal));
}
