using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Vilt;

/// <summary>Patches chosen for a batch: embeddings with the class token first, their mask, and each patch's (row, column).</summary>
public sealed record ViltImageEmbedding(Tensor Embeddings, Tensor Mask, Tensor PatchIndex, long GridHeight, long GridWidth);

/// <summary>ViT patch embedding (timm PatchEmbed): a Conv2d with kernel = stride = patch size. Keys: proj.*.</summary>
public sealed class ViltPatchEmbed : nn.Module<Tensor, Tensor>
{
    readonly Conv2d proj;

    public ViltPatchEmbed(int channels, int hidden, int patch) : base("patch_embed")
    {
        proj = nn.Conv2d(channels, hidden, patch, stride: patch);
        RegisterComponents();
    }

    public Conv2d Projection => proj;

    /// <summary>[B, C, H, W] → [B, hidden, H / patch, W / patch].</summary>
    public override Tensor forward(Tensor pixels) => proj.forward(pixels);
}

/// <summary>
/// The ViT part of ViLT (vilt/modules/vision_transformer.py VisionTransformer): patch embedding, class token,
/// position embeddings of the pre-training grid interpolated to each image's patch grid, the variable-resolution
/// patch selection (visual_embed), the pre-norm blocks and the final norm.
/// Keys: patch_embed.proj.*, cls_token, pos_embed, blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm.*.
/// </summary>
public sealed class ViltVisionTransformer : nn.Module
{
    readonly ViltPatchEmbed patch_embed;
    readonly Parameter cls_token, pos_embed;
    readonly ModuleList<PreNormTransformerLayer> blocks;
    readonly LayerNorm norm;
    readonly Dropout pos_drop;

    public ViltConfig Config { get; }

    public ViltVisionTransformer(ViltConfig config) : base("transformer")
    {
        Config = config;
        int hidden = config.HiddenSize;
        patch_embed = new ViltPatchEmbed(config.NumChannels, hidden, config.PatchSize);
        cls_token = new Parameter(zeros(1, 1, hidden));
        pos_embed = new Parameter(zeros(1, (long)config.PatchGrid * config.PatchGrid + 1, hidden));
        var layer = new PreNormLayerOptions
        {
            Hidden = hidden,
            Heads = config.NumAttentionHeads,
            MlpDim = config.IntermediateSize,
            Activation = Activations.Parse(config.HiddenAct),
            LayerNormEps = config.EncoderLayerNormEps,
            QkvBias = config.QkvBias,
            AttentionDropout = config.AttentionProbsDropoutProb,
            ResidualDropout = config.HiddenDropoutProb,
            Names = PreNormLayerNames.Timm,
            Merged = true,   // text and patch tokens attend in one sequence
        };
        blocks = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new PreNormTransformerLayer(layer)).ToArray());
        norm = nn.LayerNorm(hidden, config.EncoderLayerNormEps);
        pos_drop = nn.Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    public int Depth => blocks.Count;
    public PreNormTransformerLayer Block(int index) => blocks[index];
    public LayerNorm Norm => norm;

    /// <summary>
    /// visual_embed: embeds pixels [B, C, H, W] with their mask [B, H, W] and picks the patches that enter the
    /// transformer. A patch is real where the nearest-neighbour downsampled pixel mask is 1; each image's position
    /// embeddings are the pre-training grid resized (bilinear, corners aligned) to its own real grid (rows real in
    /// column 0 × columns real in row 0). Every image keeps max_len = min(largest real grid area in the batch,
    /// maxImageLength) patches (maxImageLength &lt; 0: no cap): all of its real patches in raster order when it has
    /// fewer, padded with masked patches taken cyclically in raster order; when it has more, with
    /// <paramref name="sample"/> (training) max_len real patches drawn at random without replacement as the original
    /// draws them (<paramref name="generator"/> makes the draw repeatable), else (inference) the first max_len in
    /// raster order. The original draws with torch.multinomial in both places; the deterministic choice is
    /// arange(count) % n, the convention of the project's Hugging Face ViLT fixture. Which masked patches pad an
    /// image changes nothing a real token sees.
    /// </summary>
    public ViltImageEmbedding Embed(Tensor pixels, Tensor? pixelMask, int maxImageLength, bool sample = false, Generator? generator = null)
    {
        if (pixels.dim() != 4 || pixels.shape[1] != Config.NumChannels)
            throw new ArgumentException($"pixel_values must be [batch, {Config.NumChannels}, height, width], got [{string.Join(", ", pixels.shape)}]");
        long batch = pixels.shape[0];
        if (pixels.shape[2] < Config.PatchSize || pixels.shape[3] < Config.PatchSize)
            throw new ArgumentException($"images of {pixels.shape[2]}x{pixels.shape[3]} pixels are smaller than one {Config.PatchSize}x{Config.PatchSize} patch");
        pixelMask ??= ones(batch, pixels.shape[2], pixels.shape[3], dtype: ScalarType.Int64, device: pixels.device);
        if (pixelMask.dim() != 3 || pixelMask.shape[0] != batch || pixelMask.shape[1] != pixels.shape[2] || pixelMask.shape[2] != pixels.shape[3])
            throw new ArgumentException($"pixel_mask must be [{batch}, {pixels.shape[2]}, {pixels.shape[3]}], got [{string.Join(", ", pixelMask.shape)}]");

        var patches = patch_embed.forward(pixels.to(pos_embed.dtype));                 // [B, D, gh, gw]
        long hidden = patches.shape[1], gridH = patches.shape[2], gridW = patches.shape[3];
        var patchMask = nn.functional.interpolate(pixelMask.unsqueeze(1).to(ScalarType.Float32), new[] { gridH, gridW },
            mode: InterpolationMode.Nearest).squeeze(1).to(ScalarType.Int64);        // [B, gh, gw]
        var maskCpu = patchMask.cpu();
        var maskValues = maskCpu.data<long>().ToArray();

        // Real grid of each image, read as the original does: rows real in column 0, columns real in row 0.
        var heights = new long[batch];
        var widths = new long[batch];
        var real = new List<long>[batch];
        var padding = new List<long>[batch];
        for (int b = 0; b < batch; b++)
        {
            real[b] = new List<long>();
            padding[b] = new List<long>();
            for (long p = 0; p < gridH * gridW; p++)
                (maskValues[b * gridH * gridW + p] != 0 ? real[b] : padding[b]).Add(p);
            for (long r = 0; r < gridH; r++) heights[b] += maskValues[b * gridH * gridW + r * gridW] != 0 ? 1 : 0;
            for (long c = 0; c < gridW; c++) widths[b] += maskValues[b * gridH * gridW + c] != 0 ? 1 : 0;
            if (real[b].Count == 0 || heights[b] == 0 || widths[b] == 0)
                throw new ArgumentException($"image {b} has no real patch: its pixel mask must cover at least one {Config.PatchSize}x{Config.PatchSize} patch at the top left");
        }

        long largest = Enumerable.Range(0, (int)batch).Max(b => heights[b] * widths[b]);
        long keep = maxImageLength < 0 ? largest : Math.Min(largest, maxImageLength);
        var select = new long[batch, keep];
        for (int b = 0; b < batch; b++)
        {
            List<long> chosen;
            if (real[b].Count >= keep)
            {
                // More real patches than places: a random subset when sampling (torch.multinomial), else the first ones.
                chosen = !sample || real[b].Count == keep ? real[b].Take((int)keep).ToList()
                    : randperm(real[b].Count, generator: generator).data<long>().Take((int)keep).OrderBy(i => i).Select(i => real[b][(int)i]).ToList();
            }
            else
            {
                chosen = new List<long>(real[b]);
                for (int i = 0; chosen.Count < keep; i++) chosen.Add(padding[b][i % padding[b].Count]);
            }
            for (int k = 0; k < keep; k++) select[b, k] = chosen[k];
        }
        var index = tensor(select).to(pixels.device);                                   // [B, keep]

        // Position embeddings resized to each image's real grid, zero beyond it.
        var grid = Config.PatchGrid;
        var spatial = pos_embed.narrow(1, 1, (long)grid * grid).transpose(1, 2).reshape(1, hidden, grid, grid);
        var positions = new Tensor[batch];
        for (int b = 0; b < batch; b++)
        {
            var resized = nn.functional.interpolate(spatial, new[] { heights[b], widths[b] }, mode: InterpolationMode.Bilinear, align_corners: true);
            positions[b] = nn.functional.pad(resized, new[] { 0, gridW - widths[b], 0, gridH - heights[b] });
        }
        var position = cat(positions, 0).flatten(2).transpose(1, 2);                    // [B, gh·gw, D]
        var tokens = patches.flatten(2).transpose(1, 2);                               // [B, gh·gw, D]
        var gatherIndex = index.unsqueeze(-1).expand(-1, -1, hidden);
        var x = tokens.gather(1, gatherIndex) + position.gather(1, gatherIndex);
        var mask = patchMask.flatten(1).gather(1, index);
        var patchIndex = stack(new[] { index.div(gridW, rounding_mode: RoundingMode.floor), index.remainder(gridW) }, -1);

        var cls = (cls_token + pos_embed.narrow(1, 0, 1)).expand(batch, -1, -1);
        x = pos_drop.forward(cat(new[] { cls, x }, 1));
        mask = cat(new[] { ones(batch, 1, dtype: ScalarType.Int64, device: mask.device), mask }, 1);
        return new ViltImageEmbedding(x, mask, patchIndex, gridH, gridW);
    }

    /// <summary>The pre-norm blocks over a joint sequence; returns every block's output (before the final norm).</summary>
    public List<Tensor> Encode(Tensor hidden, Tensor padding)
    {
        var mask = AttentionMask.FromPadding(padding);
        var outputs = new List<Tensor>(blocks.Count);
        foreach (var block in blocks)
        {
            hidden = block.forward(hidden, mask);
            outputs.Add(hidden);
        }
        return outputs;
    }
}
