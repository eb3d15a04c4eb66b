using ModelZoo.Attention;
using ModelZoo.Attention.Layers;
using ModelZoo.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Vilt;

/// <summary>What ViLTransformerSS.infer returns, plus every block's output.</summary>
public sealed record ViltOutput(
    Tensor TextFeats, Tensor ImageFeats, Tensor ClsFeats, Tensor RawClsFeats, Tensor TextMasks, Tensor ImageMasks, Tensor PatchIndex,
    Tensor EmbeddingOutput, IReadOnlyList<Tensor> HiddenStates, Tensor SequenceOutput);

/// <summary>BERT-style MLM head (vilt/modules/heads.py MLMHead): transform (dense, GELU, LayerNorm), decoder, bias.</summary>
public sealed class ViltMlmHead : nn.Module<Tensor, Tensor>
{
    readonly PredictionHeadTransform transform;
    readonly Linear decoder;
    readonly Parameter bias;

    public ViltMlmHead(ViltConfig config) : base("mlm_score")
    {
        transform = new PredictionHeadTransform(config.HiddenSize, Activations.Parse(config.HiddenAct), config.LayerNormEps);
        decoder = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false);
        bias = new Parameter(zeros(config.VocabSize));
        RegisterComponents();
    }

    /// <summary>Text features [B, L, H] → vocabulary logits [B, L, vocab].</summary>
    public override Tensor forward(Tensor text) => decoder.forward(transform.forward(text)) + bias;
}

/// <summary>2-way image–text matching (heads.py ITMHead). Keys: fc.*.</summary>
public sealed class ViltItmHead : nn.Module<Tensor, Tensor>
{
    readonly Linear fc;

    public ViltItmHead(int hidden) : base("itm_score")
    {
        fc = nn.Linear(hidden, 2);
        RegisterComponents();
    }

    public Linear Fc => fc;
    public override Tensor forward(Tensor pooled) => fc.forward(pooled);
}

/// <summary>
/// ViLT (dandelin/ViLT vilt_module.py ViLTransformerSS) in the original checkpoint layout: BERT text embeddings,
/// modality type embeddings, the ViT (patches, class token, interpolated positions, pre-norm blocks, norm) over the
/// merged text + patch sequence, the pooler, and the task heads the preset asks for. Keys: text_embeddings.*,
/// token_type_embeddings.*, transformer.*, pooler.dense.*, mlm_score.*, itm_score.fc.*, vqa_classifier.{0,1,3}.*,
/// nlvr2_classifier.{0,1,3}.*, rank_output.*. Hugging Face files load through <see cref="ViltFamily.HuggingFaceKeyMap"/>.
/// </summary>
public sealed class ViltModel : nn.Module
{
    readonly BertEmbeddings text_embeddings;
    readonly Embedding token_type_embeddings;
    readonly ViltVisionTransformer transformer;
    readonly BertPooler pooler;
    readonly ViltMlmHead? mlm_score;
    readonly ViltItmHead? itm_score;
    readonly Sequential? vqa_classifier, nlvr2_classifier;
    readonly Linear? rank_output;

    public ViltConfig Config { get; }
    public ViltHeads Heads { get; }

    public ViltModel(ViltConfig config, ViltHeads? heads = null) : base("vilt")
    {
        config.Validate();
        heads ??= ViltHeads.None;
        if (heads.Nlvr2 && config.ModalityTypeVocabSize < 3)
            throw new ArgumentException($"the NLVR2 head needs 3 modality types (text, image 1, image 2), config has {config.ModalityTypeVocabSize}");
        Config = config;
        Heads = heads;
        int h = config.HiddenSize;
        text_embeddings = new BertEmbeddings(config.VocabSize, h, config.MaxPositionEmbeddings, config.TypeVocabSize,
            config.LayerNormEps, config.HiddenDropoutProb, config.PadTokenId);
        token_type_embeddings = nn.Embedding(config.ModalityTypeVocabSize, h);
        transformer = new ViltVisionTransformer(config);
        pooler = new BertPooler(h, h);
        if (heads.Mlm) mlm_score = new ViltMlmHead(config);
        if (heads.Itm) itm_score = new ViltItmHead(h);
        if (heads.VqaAnswers is int answers) vqa_classifier = Classifier(h, 2 * h, answers);
        if (heads.Nlvr2) nlvr2_classifier = Classifier(2 * h, 2 * h, 2);
        if (heads.Rank) rank_output = nn.Linear(h, 1);
        RegisterComponents();
        Initialize();
    }

    /// <summary>Linear, LayerNorm (eps 1e-5), GELU, Linear: the VQA and NLVR2 classifiers.</summary>
    static Sequential Classifier(int input, int hidden, int outputs) => nn.Sequential(
        ("0", nn.Linear(input, hidden)),
        ("1", nn.LayerNorm(hidden)),
        ("2", new ActivationModule(Activation.GeluErf)),
        ("3", nn.Linear(hidden, outputs)));

    void Initialize()
    {
        Initialization.BertStyle(this, Config.InitializerRange);
        using var _ = no_grad();
        foreach (var (name, parameter) in transformer.named_parameters())
            if (name is "cls_token" or "pos_embed") nn.init.trunc_normal_(parameter, std: 0.02);
    }

    public ViltVisionTransformer Transformer => transformer;

    /// <summary>
    /// ViLTransformerSS.infer: text tokens (modality 0) and the image's patches (modality
    /// <paramref name="imageTokenTypeIdx"/>: 1, or 2 for the second NLVR2 image) through the shared transformer.
    /// Images with more real patches than max_image_length lose a random subset in training mode
    /// (<paramref name="generator"/>), and keep the first ones in raster order in eval mode.
    /// </summary>
    public ViltOutput forward(ViltInputs inputs, int imageTokenTypeIdx = 1, Generator? generator = null)
    {
        var ids = inputs.InputIds;
        if (ids.dim() != 2) throw new ArgumentException($"input_ids must be [batch, length], got [{string.Join(", ", ids.shape)}]");
        if (ids.shape[1] > Config.MaxPositionEmbeddings)
            throw new ArgumentException($"text of {ids.shape[1]} tokens is longer than max_position_embeddings {Config.MaxPositionEmbeddings} (the original's max_text_len)");
        if (inputs.PixelValues.shape[0] != ids.shape[0])
            throw new ArgumentException($"{ids.shape[0]} texts but {inputs.PixelValues.shape[0]} images");
        if (imageTokenTypeIdx < 1 || imageTokenTypeIdx >= Config.ModalityTypeVocabSize)
            throw new ArgumentException($"image token type {imageTokenTypeIdx} is outside 1..{Config.ModalityTypeVocabSize - 1}");
        var textMask = inputs.TextMask ?? ones_like(ids);

        var text = text_embeddings.forward(ids, inputs.TokenTypeIds);
        var image = transformer.Embed(inputs.PixelValues, inputs.PixelMask, Config.MaxImageLength, sample: training, generator);
        text = text + token_type_embeddings.forward(zeros_like(ids));
        var patches = image.Embeddings + token_type_embeddings.forward(full_like(image.Mask, imageTokenTypeIdx));

        var (joint, padding) = MergedAttention.Merge(new[] { text, patches }, new[] { textMask, image.Mask });
        var layers = transformer.Encode(joint, padding);
        var sequence = transformer.Norm.forward(layers.Count > 0 ? layers[^1] : joint);
        var parts = MergedAttention.Split(sequence, new[] { text, patches });
        return new ViltOutput(parts[0], parts[1], pooler.forward(sequence), sequence.select(1, 0), textMask, image.Mask, image.PatchIndex,
            joint, layers, sequence);
    }

    /// <summary>VQA answer logits [B, answers] (vqa_classifier on the pooled output).</summary>
    public Tensor VqaLogits(ViltInputs inputs) => Require(vqa_classifier, "vqa_classifier").forward(forward(inputs).ClsFeats);

    /// <summary>NLVR2 logits [B, 2]: the text with each image (modality types 1 and 2), pooled outputs concatenated.</summary>
    public Tensor Nlvr2Logits(ViltInputs first, ViltInputs second)
    {
        var classifier = Require(nlvr2_classifier, "nlvr2_classifier");
        var one = forward(first, 1).ClsFeats;
        var two = forward(second, 2).ClsFeats;
        return classifier.forward(cat(new[] { one, two }, -1));
    }

    /// <summary>Image–text matching logits [B, 2] (index 1 = match).</summary>
    public Tensor ItmLogits(ViltInputs inputs) => Require(itm_score, "itm_score").forward(forward(inputs).ClsFeats);

    /// <summary>Retrieval scores [B] (rank_output on the pooled output).</summary>
    public Tensor RankScores(ViltInputs inputs) => Require(rank_output, "rank_output").forward(forward(inputs).ClsFeats).squeeze(-1);

    /// <summary>Masked-language-model logits over the text tokens [B, Lt, vocab].</summary>
    public Tensor MlmLogits(ViltInputs inputs) => Require(mlm_score, "mlm_score").forward(forward(inputs).TextFeats);

    /// <summary>The original irtr set-up: rank_output starts as the "match" row of itm_score.</summary>
    public void InitializeRankFromItm()
    {
        var rank = Require(rank_output, "rank_output");
        var itm = Require(itm_score, "itm_score");
        using var _ = no_grad();
        rank.weight!.copy_(itm.Fc.weight![TensorIndex.Slice(1, 2)]);
        rank.bias!.copy_(itm.Fc.bias![TensorIndex.Slice(1, 2)]);
    }

    T Require<T>(T? head, string name) where T : class =>
        head ?? throw new InvalidOperationException($"this ViLT model has no {name} head (heads: {string.Join(", ", Heads.Names().DefaultIfEmpty("none"))}); create a preset that has it");
}
