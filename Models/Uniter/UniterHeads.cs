using ModelZoo.Models.Common;
using ModelZoo.Models.TwoStream;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Uniter;

/// <summary>
/// UniterForVisualQuestionAnswering (model/vqa.py): the pooled output through vqa_output = Linear(h, 2h), GELU,
/// LayerNorm(2h, eps 1e-12), Linear(2h, num_answer). Keys: uniter.*, vqa_output.{0,2,3}.*.
/// </summary>
public sealed class UniterForVisualQuestionAnswering : nn.Module, IRegionVqaModel
{
    readonly UniterModel uniter;
    readonly Sequential vqa_output;

    public UniterConfig Config { get; }
    public int NumAnswer { get; }

    public UniterForVisualQuestionAnswering(UniterConfig config, int? numAnswer = null) : base(nameof(UniterForVisualQuestionAnswering))
    {
        NumAnswer = numAnswer ?? config.NumAnswer ?? throw new ArgumentException("the VQA head needs num_answer");
        if (NumAnswer <= 0) throw new ArgumentException($"num_answer must be positive, got {NumAnswer}");
        Config = config with { NumAnswer = NumAnswer };
        int h = config.HiddenSize;
        uniter = new UniterModel(config);
        vqa_output = AnswerClassifier.Layers(h, 2 * h, NumAnswer, UniterConfig.LayerNormEps);
        RegisterComponents();
        Initialization.BertStyle(vqa_output, config.InitializerRange);
    }

    public UniterModel Uniter => uniter;

    /// <summary>Answer logits [B, num_answer] from a pooled output [B, H].</summary>
    public Tensor AnswerLogits(Tensor pooled) => vqa_output.forward(pooled);

    /// <summary>model(batch, compute_loss=False): answer logits [B, num_answer].</summary>
    public Tensor forward(UniterInputs inputs) => AnswerLogits(uniter.forward(inputs).PooledOutput!);

    // IRegionVqaModel: what `modelzoo vqa --features` and VqaPipeline call.
    public int AnswerCount => NumAnswer;
    public int RegionFeatureSize => Config.ImgDim;
    /// <summary>UNITER's VQA data keeps 60 text tokens (max_txt_len).</summary>
    public int MaxQuestionTokens => Math.Min(60, Config.MaxPositionEmbeddings);
    /// <summary>UNITER's data keeps at most 100 regions per image (max_bb); more are cut in file order.</summary>
    public int MaxRegions => 100;

    /// <summary>Pixel boxes become the 7-d box features (<see cref="UniterInputs.BoxFeatures"/>); the batch is collated as vqa_collate does.</summary>
    public Tensor AnswerLogits(IReadOnlyList<RegionVqaInput> questions)
    {
        var device = vqa_output.parameters().First().device;
        var examples = new List<UniterExample>(questions.Count);
        foreach (var q in questions)
        {
            RegionVqaBatch.Check(q, RegionFeatureSize);
            if (q.TokenIds.Count > MaxQuestionTokens)
                throw new ArgumentException($"a question has {q.TokenIds.Count} tokens, more than the {MaxQuestionTokens} UNITER takes ([CLS] and [SEP] included); truncate it");
            long regions = Math.Min(q.Features.shape[0], MaxRegions);
            examples.Add(new UniterExample(q.TokenIds.ToArray(), q.Features.narrow(0, 0, regions),
                UniterInputs.BoxFeatures(q.Boxes.narrow(0, 0, regions), q.ImageWidth, q.ImageHeight)));
        }
        return forward(UniterInputs.Collate(examples, device));
    }
}

/// <summary>
/// Image–text matching (UniterForPretraining's itm_output, a 2-way Linear on the pooled output) and retrieval
/// scoring (UniterForImageTextRetrieval): with <c>rank_output</c> the score is its output (fine-tuned retrieval
/// checkpoints), without it the "match" logit of itm_output, which is what the original copies into rank_output
/// before fine-tuning (init_output). Keys: uniter.*, itm_output.*, rank_output.*.
/// </summary>
public sealed class UniterForImageTextRetrieval : nn.Module
{
    readonly UniterModel uniter;
    readonly Linear itm_output;
    readonly Linear? rank_output;

    public UniterConfig Config { get; }
    public bool HasRankOutput => rank_output is not null;

    public UniterForImageTextRetrieval(UniterConfig config, bool rankOutput) : base(nameof(UniterForImageTextRetrieval))
    {
        Config = config;
        uniter = new UniterModel(config);
        itm_output = nn.Linear(config.HiddenSize, 2);
        if (rankOutput) rank_output = nn.Linear(config.HiddenSize, 1);
        RegisterComponents();
        Initialization.BertStyle(itm_output, config.InitializerRange);
        if (rank_output is not null) InitializeRankFromItm();
    }

    public UniterModel Uniter => uniter;

    /// <summary>ITM logits [B, 2] (index 1 = the text matches the image).</summary>
    public Tensor MatchLogits(UniterInputs inputs) => itm_output.forward(uniter.forward(inputs).PooledOutput!);

    /// <summary>Retrieval scores [B]: higher = better match.</summary>
    public Tensor forward(UniterInputs inputs)
    {
        var pooled = uniter.forward(inputs).PooledOutput!;
        return rank_output is not null ? rank_output.forward(pooled).squeeze(-1) : itm_output.forward(pooled).select(1, 1);
    }

    /// <summary>The original init_output: rank_output takes the "match" row of itm_output (before fine-tuning).</summary>
    public void InitializeRankFromItm()
    {
        if (rank_output is null) throw new InvalidOperationException("this model has no rank_output");
        using var _ = no_grad();
        rank_output.weight!.copy_(itm_output.weight![TensorIndex.Slice(1, 2)]);
        rank_output.bias!.copy_(itm_output.bias![TensorIndex.Slice(1, 2)]);
    }

    /// <summary>
    /// Scores every caption against every image: [captions, images]. Pairs run in batches of
    /// <paramref name="batchSize"/>; each pair is padded only within its batch, so scores do not depend on batching.
    /// </summary>
    public Tensor ScoreMatrix(IReadOnlyList<long[]> captions, IReadOnlyList<(Tensor Features, Tensor Boxes)> images, int batchSize = 32)
    {
        if (batchSize <= 0) throw new ArgumentException($"batch size must be positive, got {batchSize}");
        var device = itm_output.weight!.device;
        var scores = zeros(captions.Count, images.Count);
        var pairs = (from c in Enumerable.Range(0, captions.Count) from i in Enumerable.Range(0, images.Count) select (c, i)).ToList();
        using var _ = no_grad();
        for (int start = 0; start < pairs.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var chunk = pairs.Skip(start).Take(batchSize).ToList();
            var inputs = UniterInputs.Collate(chunk.Select(p => new UniterExample(captions[p.c], images[p.i].Features, images[p.i].Boxes)).ToList(), device);
            var batchScores = forward(inputs).cpu();
            for (int k = 0; k < chunk.Count; k++) scores[chunk[k].c, chunk[k].i] = batchScores[k];
        }
        return scores;
    }
}
