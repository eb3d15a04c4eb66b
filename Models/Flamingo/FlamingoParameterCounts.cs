namespace ModelZoo.Models.Flamingo;

/// <summary>
/// Exact parameter counts of the Flamingo parts from their configs (the arithmetic of the modules in this folder;
/// a test checks it against built modules). Used to describe presets whose decoder cannot be built yet.
/// </summary>
public static class FlamingoParameterCounts
{
    public static long VisionEncoder(VisionTransformerConfig c)
    {
        long w = c.Width, mlp = (long)(c.Width * c.MlpRatio), grid = c.GridSize;
        long layer = 2 * w + (3 * w * w + 3 * w) + (w * w + w) + 2 * w + (w * mlp + mlp) + (mlp * w + w);
        return 3 * w * c.PatchSize * c.PatchSize + w + (grid * grid + 1) * w + 2 * w + c.Layers * layer + 2 * w + w * c.OutputDim;
    }

    static long FeedForward(long dim, long mult) => 2 * dim + dim * dim * mult * 2;

    public static long Perceiver(PerceiverConfig c)
    {
        long d = c.Dim, inner = (long)c.DimHead * c.Heads;
        long attention = 2 * d + 2 * d + d * inner + d * 2 * inner + inner * d;
        return (long)c.NumLatents * d + (c.MaxNumFrames ?? 0) * d + (c.MaxNumMedia ?? 0) * d
               + c.Depth * (attention + FeedForward(d, c.FfMult)) + 2 * d;
    }

    public static long CrossAttentionBlock(CrossAttentionConfig c)
    {
        long d = c.Dim, inner = (long)c.DimHead * c.Heads;
        return 2 * d + d * inner + (long)c.DimVisual * 2 * inner + inner * d + 1 + FeedForward(d, c.FfMult) + 1;
    }

    /// <summary>Blocks before layers i with (i + 1) % everyN == 0.</summary>
    public static int CrossAttentionBlocks(int decoderLayers, int everyN) => decoderLayers / everyN;

    public static long CrossAttention(FlamingoConfig c) => CrossAttentionBlocks(c.LanguageLayers, c.CrossAttnEveryNLayers) * CrossAttentionBlock(c.CrossAttention);

    /// <summary>"vision encoder 303,966,208, perceiver ..., cross-attention ... (N blocks)".</summary>
    public static string Describe(FlamingoConfig c) =>
        $"vision encoder {VisionEncoder(c.VisionEncoder):N0}, perceiver {Perceiver(c.Perceiver):N0}, " +
        $"gated cross-attention {CrossAttention(c):N0} ({CrossAttentionBlocks(c.LanguageLayers, c.CrossAttnEveryNLayers)} blocks)";
}
