using ModelZoo.Attention;
using ModelZoo.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Clip;

/// <summary>Text tower outputs: projected features (before L2 normalisation), every block's output, and the embeddings fed to the first block.</summary>
public sealed record ClipTextOutput(Tensor Features, IReadOnlyList<Tensor> HiddenStates, Tensor Embeddings);

/// <summary>forward(image, text): similarity logits both ways and the raw features of both towers.</summary>
public sealed record ClipOutput(Tensor LogitsPerImage, Tensor LogitsPerText, ClipImageOutput Image, ClipTextOutput Text);

/// <summary>
/// openai/CLIP: an image tower (ViT or ModifiedResNet under "visual") and a causal text transformer whose state-dict
/// keys sit at the top level (token_embedding, positional_embedding, transformer.resblocks.N, ln_final,
/// text_projection), plus the learned temperature logit_scale. Original checkpoints load with no renaming.
/// </summary>
public sealed class ClipModel : nn.Module
{
    protected override void RegisterComponents() { }

    readonly nn.Module visual;
    readonly ClipTransformer transformer;
    readonly Embedding token_embedding;
    Parameter positional_embedding;
    readonly LayerNorm ln_final;
    Parameter text_projection;
    Parameter logit_scale;

    public ClipConfig Config { get; }
    public IClipImageTower Visual => (IClipImageTower)visual;
    public ClipTransformer TextTransformer => transformer;

    public ClipModel(ClipConfig config) : base("clip")
    {
        config.Validate();
        Config = config;
        if (config.IsResNet)
        {
            var resnet = new ClipModifiedResNet(config.VisionLayers, config.EmbedDim, config.ResolvedVisionHeads, config.ImageResolution, config.VisionWidth);
            resnet.InitializeLikeClip();
            visual = resnet;
        }
        else
        {
            visual = new ClipVisionTransformer(config.ImageResolution, config.VisionPatchSize!.Value, config.VisionWidth, config.VisionLayers[0],
                config.ResolvedVisionHeads, config.EmbedDim, config.VisionLayerOptions());
        }
        transformer = new ClipTransformer(config.TransformerLayers, config.TextLayerOptions());
        transformer.InitializeLikeClip();
        token_embedding = nn.Embedding(config.VocabSize, config.TransformerWidth);
        positional_embedding = new Parameter(empty(config.ContextLength, config.TransformerWidth));
        ln_final = nn.LayerNorm(config.TransformerWidth, config.ResolvedTextLayerNormEps);
        text_projection = new Parameter(empty(config.TransformerWidth, config.EmbedDim));
        logit_scale = new Parameter(tensor((float)Math.Log(1 / 0.07)));
        using (no_grad())
        {
            nn.init.normal_(token_embedding.weight!, 0, 0.02);
            nn.init.normal_(positional_embedding, 0, 0.01);
            nn.init.normal_(text_projection, 0, Math.Pow(config.TransformerWidth, -0.5));
        }
        register_module("visual", visual);
        register_module("transformer", transformer);
        register_module("token_embedding", token_embedding);
        register_parameter("positional_embedding", positional_embedding);
        register_module("ln_final", ln_final);
        register_parameter("text_projection", text_projection);
        register_parameter("logit_scale", logit_scale);
    }

    /// <summary>The learned log inverse temperature (scalar parameter).</summary>
    public Tensor LogitScale => logit_scale;

    /// <summary>image [B, 3, R, R] (normalised pixels) → features [B, embed_dim] and what the tower captured.</summary>
    public ClipImageOutput EncodeImageDetailed(Tensor image) => Visual.Encode(image);

    /// <summary>image [B, 3, R, R] → features [B, embed_dim] (not normalised).</summary>
    public Tensor EncodeImage(Tensor image) => Visual.Encode(image).Features;

    /// <summary>
    /// text [B, L ≤ context_length] int64 token ids with the end-of-text token as the largest id in each row (as the
    /// CLIP tokenizer makes them) → features [B, embed_dim] taken at that token, plus every block's output.
    /// </summary>
    public ClipTextOutput EncodeTextDetailed(Tensor text)
    {
        if (text.dim() != 2) throw new ArgumentException($"CLIP text expects token ids [batch, length], got [{string.Join(", ", text.shape)}]");
        long length = text.shape[1];
        if (length > Config.ContextLength)
            throw new ArgumentException($"CLIP text is {length} tokens long but the model's context is {Config.ContextLength} (positional_embedding rows)");
        if (text.dtype != ScalarType.Int64) text = text.to(ScalarType.Int64);
        var x = token_embedding.forward(text) + positional_embedding.narrow(0, 0, length);
        var hidden = transformer.forward(x, AttentionMask.CausalOnly);
        var last = ln_final.forward(hidden.Count > 0 ? hidden[^1] : x);
        // The end-of-text token has the largest id; CLIP reads the sequence there.
        var eot = text.argmax(-1).view(-1, 1, 1).expand(-1, 1, last.shape[2]);
        var pooled = last.gather(1, eot).squeeze(1);
        return new ClipTextOutput(matmul(pooled, text_projection), hidden, x);
    }

    /// <summary>text [B, L] token ids → features [B, embed_dim] (not normalised).</summary>
    public Tensor EncodeText(Tensor text) => EncodeTextDetailed(text).Features;

    /// <summary>Cosine similarities scaled by exp(logit_scale): [images, texts].</summary>
    public Tensor Logits(Tensor imageFeatures, Tensor textFeatures)
    {
        return logit_scale.exp() * matmul(ContrastiveLosses.Normalize(imageFeatures), ContrastiveLosses.Normalize(textFeatures).t());
    }

    /// <summary>CLIP.forward: (logits_per_image [B_img, B_txt], logits_per_text [B_txt, B_img]) with both towers' outputs.</summary>
    public ClipOutput forward(Tensor image, Tensor text)
    {
        var imageOutput = EncodeImageDetailed(image);
        var textOutput = EncodeTextDetailed(text);
        var logits = Logits(imageOutput.Features, textOutput.Features);
        return new ClipOutput(logits, logits.t(), imageOutput, textOutput);
    }
}
