using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Vatt;

/// <summary>
/// Learned position buckets per axis (VATT's temporal / spatio-temporal embeddings): one table per axis, the
/// looked-up vectors summed over the axes, LayerNorm (eps 1e-6), added to the tokens, then dropout. An axis whose
/// input length differs from its bucket count reads a spline-resized table (<see cref="PositionInterpolation"/>),
/// shorter and longer alike, as the reference's ExpandableEmbedding does.
/// </summary>
public sealed class AxisPositionEmbeddings : nn.Module
{
    protected override void RegisterComponents() { }

    readonly Embedding[] tables;
    readonly string[] axes;
    readonly LayerNorm layer_norm;
    readonly Dropout dropout;

    /// <param name="buckets">(axis name, bucket count) in the order the tokens are laid out (slowest axis first).</param>
    public AxisPositionEmbeddings(int hidden, IReadOnlyList<(string Axis, int Buckets)> buckets, double layerNormEps, double dropoutRate) : base("position_embeddings")
    {
        axes = buckets.Select(b => b.Axis).ToArray();
        tables = buckets.Select(b => nn.Embedding(b.Buckets, hidden)).ToArray();
        layer_norm = nn.LayerNorm(hidden, layerNormEps);
        dropout = nn.Dropout(dropoutRate);
        double std = Math.Pow(hidden, -0.5);
        using (no_grad())
            foreach (var table in tables) nn.init.trunc_normal_(table.weight!, 0, std, -2 * std, 2 * std);
        for (int i = 0; i < axes.Length; i++) register_module(axes[i] + "_position_embeddings", tables[i]);
        register_module("layer_norm", layer_norm);
        register_module("dropout", dropout);
    }

    public IReadOnlyList<long> Buckets => tables.Select(t => t.weight!.shape[0]).ToList();

    /// <summary>The position vectors [Π grid, D] of a token grid (before LayerNorm), resized per axis where needed.</summary>
    public Tensor Positions(IReadOnlyList<long> grid, string what)
    {
        if (grid.Count != tables.Length) throw new ArgumentException($"{what}: expected {tables.Length} axes, got {grid.Count}");
        long total = grid.Aggregate(1L, (a, b) => a * b);
        Tensor? positions = null;
        for (int axis = 0; axis < tables.Length; axis++)
        {
            long size = grid[axis];
            var table = PositionInterpolation.Resize(tables[axis].weight!, size);
            // Index of each token along this axis, in row-major order over the grid.
            long inner = 1;
            for (int j = axis + 1; j < grid.Count; j++) inner *= grid[j];
            var ids = arange(size, dtype: ScalarType.Int64, device: table.device).repeat_interleave(inner).repeat(total / (size * inner));
            var embedded = table.index_select(0, ids);
            positions = positions is null ? embedded : positions + embedded;
        }
        return positions!;
    }

    /// <summary>tokens [B, Π grid, D] laid out over <paramref name="grid"/> (one size per axis) → tokens + positions.</summary>
    public Tensor forward(Tensor tokens, IReadOnlyList<long> grid, string what) =>
        dropout.forward(tokens + layer_norm.forward(Positions(grid, what)).to(tokens.dtype));
}

/// <summary>
/// Tokens of one modality: [B, N, D] in the layout of <see cref="Grid"/>, with a padding mask (true = token) where the
/// modality has one (text). <see cref="AggIncluded"/>: the [AGG] token is already first (VATT-MS text prepends it
/// to the word vectors, before its pre-projection).
/// </summary>
public sealed record VattTokens(Tensor Tokens, IReadOnlyList<long> Grid, Tensor? Padding = null, bool AggIncluded = false);

/// <summary>
/// Video tokenizer: frames [B, T, H, W, 3] cut into voxels of temporal × spatial × spatial × RGB, each flattened
/// (t, h, w, c order, as the reference's Conv3D kernel) and projected linearly, plus temporal / vertical /
/// horizontal position buckets. VATT-MA adds a Dense + GELU pre-projection.
/// </summary>
public sealed class VattVideoTokenizer : nn.Module
{
    protected override void RegisterComponents() { }

    readonly Linear voxel_to_patch;
    readonly Linear? pre_projection;
    readonly AxisPositionEmbeddings position_embeddings;

    public int TemporalPatch { get; }
    public int SpatialPatch { get; }

    public VattVideoTokenizer(VattConfig config, int width, bool preProjection) : base("video_tokenizer")
    {
        (TemporalPatch, SpatialPatch) = (config.VidTemporalPatchSize, config.VidSpatialPatchSize);
        voxel_to_patch = nn.Linear(TemporalPatch * SpatialPatch * SpatialPatch * 3, width);
        register_module("voxel_to_patch", voxel_to_patch);
        if (preProjection) register_module("pre_projection", pre_projection = nn.Linear(width, width));
        position_embeddings = new AxisPositionEmbeddings(width,
            new[] { ("temporal", config.MaxVidTemporalBuckets), ("vertical", config.MaxVidSpatialBuckets), ("horizontal", config.MaxVidSpatialBuckets) },
            config.LayerNormEpsilon, config.DropoutRate);
        register_module("position_embeddings", position_embeddings);
    }

    public VattTokens forward(Tensor frames)
    {
        if (frames.dim() != 5 || frames.shape[4] != 3)
            throw new ArgumentException($"VATT video expects frames [batch, time, height, width, 3], got [{string.Join(", ", frames.shape)}]");
        long batch = frames.shape[0], time = frames.shape[1], height = frames.shape[2], width = frames.shape[3];
        if (time % TemporalPatch != 0 || height % SpatialPatch != 0 || width % SpatialPatch != 0)
            throw new ArgumentException($"VATT video: {time} frames of {height}x{width} do not divide into {TemporalPatch}x{SpatialPatch}x{SpatialPatch} voxels " +
                                        $"(frames must be a multiple of {TemporalPatch}, height and width of {SpatialPatch})");
        long t = time / TemporalPatch, h = height / SpatialPatch, w = width / SpatialPatch;
        var voxels = frames.to(voxel_to_patch.weight!.dtype)
            .reshape(batch, t, TemporalPatch, h, SpatialPatch, w, SpatialPatch, 3)
            .permute(0, 1, 3, 5, 2, 4, 6, 7)
            .reshape(batch, t * h * w, TemporalPatch * SpatialPatch * SpatialPatch * 3);
        var tokens = voxel_to_patch.forward(voxels);
        if (pre_projection is not null) tokens = nn.functional.gelu(pre_projection.forward(tokens));
        var grid = new[] { t, h, w };
        return new VattTokens(position_embeddings.forward(tokens, grid, "VATT video"), grid);
    }
}

/// <summary>
/// Audio tokenizer: a raw waveform [B, S] (or [B, S, 1]) cut into patches of <c>aud_temporal_patch_size</c> samples
/// (a trailing remainder shorter than a patch is dropped, as the reference's valid convolution does), projected
/// linearly, plus temporal position buckets (1200 in the paper).
/// </summary>
public sealed class VattAudioTokenizer : nn.Module
{
    protected override void RegisterComponents() { }

    readonly Linear waveform_to_patch;
    readonly Linear? pre_projection;
    readonly AxisPositionEmbeddings position_embeddings;

    public int Patch { get; }

    public VattAudioTokenizer(VattConfig config, int width, bool preProjection) : base("audio_tokenizer")
    {
        Patch = config.AudTemporalPatchSize;
        waveform_to_patch = nn.Linear(Patch, width);
        register_module("waveform_to_patch", waveform_to_patch);
        if (preProjection) register_module("pre_projection", pre_projection = nn.Linear(width, width));
        position_embeddings = new AxisPositionEmbeddings(width, new[] { ("temporal", config.MaxAudTemporalBuckets) }, config.LayerNormEpsilon, config.DropoutRate);
        register_module("position_embeddings", position_embeddings);
    }

    public VattTokens forward(Tensor waveform)
    {
        if (waveform.dim() == 3 && waveform.shape[2] == 1) waveform = waveform.squeeze(2);
        if (waveform.dim() != 2)
            throw new ArgumentException($"VATT audio expects a waveform [batch, samples] (mono), got [{string.Join(", ", waveform.shape)}]");
        long patches = waveform.shape[1] / Patch;
        if (patches == 0) throw new ArgumentException($"VATT audio: {waveform.shape[1]} samples are fewer than one patch of {Patch}");
        var tokens = waveform_to_patch.forward(waveform.to(waveform_to_patch.weight!.dtype).narrow(1, 0, patches * Patch).reshape(waveform.shape[0], patches, Patch));
        if (pre_projection is not null) tokens = nn.functional.gelu(pre_projection.forward(tokens));
        var grid = new[] { patches };
        return new VattTokens(position_embeddings.forward(tokens, grid, "VATT audio"), grid);
    }
}

/// <summary>
/// Text tokenizer: word ids [B, L] through a word table (frozen unless <c>txt_embedding_trainable</c>; load
/// word2vec-style vectors with <see cref="LoadWordEmbeddings"/>), then to the model width. VATT-MA (the reference's
/// UniversalVATT): Dense + GELU and 16 temporal position buckets. VATT-MS (the reference's LanguageModel before
/// t5_small): the [AGG] word vector is put first, then a bias-free Dense + GELU (<c>pre_projection</c>); no absolute
/// positions (the T5 transformer's attention bias is relative). The padding mask (true = word) travels along.
/// </summary>
public sealed class VattTextTokenizer : nn.Module
{
    protected override void RegisterComponents() { }

    readonly Embedding word_embeddings;
    readonly Linear? projection, pre_projection;
    readonly AxisPositionEmbeddings? position_embeddings;

    /// <param name="agnostic">VATT-MA's text path; otherwise VATT-MS's.</param>
    public VattTextTokenizer(VattConfig config, int width, bool agnostic) : base("text_tokenizer")
    {
        word_embeddings = nn.Embedding(config.TxtVocabSize, config.TxtEmbeddingDim);
        word_embeddings.weight!.requires_grad = config.TxtEmbeddingTrainable;
        register_module("word_embeddings", word_embeddings);
        if (agnostic)
        {
            projection = nn.Linear(config.TxtEmbeddingDim, width);
            position_embeddings = new AxisPositionEmbeddings(width, new[] { ("temporal", config.MaxTxtTemporalBuckets) }, config.LayerNormEpsilon, config.DropoutRate);
            register_module("projection", projection);
            register_module("position_embeddings", position_embeddings);
        }
        else
        {
            pre_projection = nn.Linear(config.TxtEmbeddingDim, width, hasBias: false);
            register_module("pre_projection", pre_projection);
        }
    }

    /// <summary>Copies a user-supplied word matrix [vocab, dim] (e.g. word2vec) into the table; it stays frozen unless configured trainable.</summary>
    public void LoadWordEmbeddings(Tensor matrix)
    {
        var table = word_embeddings.weight!;
        if (!matrix.shape.SequenceEqual(table.shape))
            throw new ArgumentException($"word embedding matrix must be [{string.Join(", ", table.shape)}] (txt_vocab_size, txt_embedding_dim), got [{string.Join(", ", matrix.shape)}]");
        using var _ = no_grad();
        table.copy_(matrix);
    }

    public Parameter WordTable => word_embeddings.weight!;

    /// <summary>
    /// ids [B, L], padding [B, L] (non-zero = word) → tokens. VATT-MS needs <paramref name="agg"/>, the [AGG] vector
    /// [txt_embedding_dim], and returns [B, 1 + L, D] with it first.
    /// </summary>
    public VattTokens forward(Tensor ids, Tensor? padding = null, Tensor? agg = null)
    {
        if (ids.dim() != 2) throw new ArgumentException($"VATT text expects word ids [batch, length], got [{string.Join(", ", ids.shape)}]");
        if (padding is not null && !padding.shape.SequenceEqual(ids.shape))
            throw new ArgumentException($"VATT text: the padding mask [{string.Join(", ", padding.shape)}] does not match the ids [{string.Join(", ", ids.shape)}]");
        long vocab = word_embeddings.weight!.shape[0];
        if (ids.numel() > 0 && (ids.min().item<long>() < 0 || ids.max().item<long>() >= vocab))
            throw new ArgumentException($"VATT text: word ids must lie in [0, {vocab}), got [{ids.min().item<long>()}, {ids.max().item<long>()}]");
        var words = word_embeddings.forward(ids.to(ScalarType.Int64).to(word_embeddings.weight!.device));
        var real = padding is null ? null : (padding.dtype == ScalarType.Bool ? padding : padding.ne(0)).to(words.device);
        var grid = new[] { ids.shape[1] };
        if (position_embeddings is not null)
        {
            var tokens = nn.functional.gelu(projection!.forward(words));
            return new VattTokens(position_embeddings.forward(tokens, grid, "VATT text"), grid, real);
        }
        if (agg is null) throw new ArgumentException("VATT-MS text needs the [AGG] word vector");
        long batch = ids.shape[0];
        words = cat(new[] { agg.to(words.dtype).expand(batch, 1, words.shape[2]), words }, 1);
        if (real is not null) real = cat(new[] { ones(batch, 1, dtype: ScalarType.Bool, device: real.device), real }, 1);
        return new VattTokens(nn.functional.gelu(pre_projection!.forward(words)), grid, real, AggIncluded: true);
    }
}
