using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Attention;

/// <summary>How the query/key/value projections are stored; each checkpoint family uses one of these.</summary>
public enum ProjectionLayout
{
    /// <summary>Three Linear modules (BERT query/key/value, Hugging Face q_proj/k_proj/v_proj).</summary>
    Separate,
    /// <summary>One Linear producing q, k, v stacked on the output axis (timm/ViLT qkv, GPT-2 c_attn).</summary>
    FusedQkv,
    /// <summary>Raw parameters NAME_weight [3·inner, dim] and NAME_bias as torch.nn.MultiheadAttention stores them (CLIP in_proj).</summary>
    FusedQkvParameters,
    /// <summary>A query Linear and one Linear producing k and v stacked (OpenFlamingo to_q / to_kv).</summary>
    SeparateQueryFusedKeyValue,
}

/// <summary>State-dict names of the projections. Only the names the layout uses matter.</summary>
public sealed record AttentionNames
{
    public string Query { get; init; } = "q_proj";
    public string Key { get; init; } = "k_proj";
    public string Value { get; init; } = "v_proj";
    /// <summary>Fused q/k/v: a Linear's name, or the prefix of NAME_weight / NAME_bias parameters.</summary>
    public string QueryKeyValue { get; init; } = "qkv";
    public string KeyValue { get; init; } = "to_kv";
    /// <summary>Output projection; null = none (BERT keeps it in a separate output module).</summary>
    public string? Output { get; init; } = "out_proj";
    /// <summary>LayerNorms on q and k when <see cref="MultiHeadAttentionOptions.QueryKeyNorm"/> is set (MPT q_ln / k_ln).</summary>
    public string QueryNorm { get; init; } = "q_ln";
    public string KeyNorm { get; init; } = "k_ln";

    public static AttentionNames HuggingFace { get; } = new();
    public static AttentionNames Bert { get; } = new() { Query = "query", Key = "key", Value = "value", Output = null };
    public static AttentionNames TorchMultiheadAttention { get; } = new() { QueryKeyValue = "in_proj", Output = "out_proj" };
    public static AttentionNames Timm { get; } = new() { QueryKeyValue = "qkv", Output = "proj" };
    public static AttentionNames Gpt2 { get; } = new() { QueryKeyValue = "c_attn", Output = "c_proj" };
    public static AttentionNames Flamingo { get; } = new() { Query = "to_q", KeyValue = "to_kv", Output = "to_out" };
}

/// <summary>Shape and layout of a multi-head attention. Query width and key/value width may differ.</summary>
public sealed record MultiHeadAttentionOptions
{
    public required int QueryDim { get; init; }
    public required int Heads { get; init; }
    /// <summary>Width of the keys/values input; defaults to <see cref="QueryDim"/>.</summary>
    public int? KeyValueDim { get; init; }
    /// <summary>Per-head width; defaults to InnerDim / Heads, or QueryDim / Heads.</summary>
    public int? HeadDim { get; init; }
    /// <summary>Width after the output projection; defaults to QueryDim. Ignored without an output projection.</summary>
    public int? OutputDim { get; init; }
    /// <summary>Width of q/k/v after projection (heads × head dim); defaults to QueryDim.</summary>
    public int? InnerDim { get; init; }
    public bool ProjectionBias { get; init; } = true;
    /// <summary>Defaults to <see cref="ProjectionBias"/>.</summary>
    public bool? OutputBias { get; init; }
    public ProjectionLayout Layout { get; init; } = ProjectionLayout.Separate;
    public AttentionNames Names { get; init; } = AttentionNames.HuggingFace;
    /// <summary>Dropout on the attention weights, in training only.</summary>
    public double Dropout { get; init; }
    /// <summary>Score scale; defaults to 1/√head_dim.</summary>
    public double? Scale { get; init; }
    /// <summary>
    /// QK LayerNorm (MPT attn_qk_ln): a LayerNorm over the whole inner width of q and of k after the projection,
    /// before the split into heads; registered as <see cref="AttentionNames.QueryNorm"/> / <see cref="AttentionNames.KeyNorm"/>.
    /// </summary>
    public bool QueryKeyNorm { get; init; }
    public bool QueryKeyNormBias { get; init; } = true;
    public double QueryKeyNormEps { get; init; } = 1e-5;

    public int ResolvedKeyValueDim => KeyValueDim ?? QueryDim;
    public int ResolvedInnerDim => InnerDim ?? (HeadDim is int h ? h * Heads : QueryDim);
    public int ResolvedHeadDim => HeadDim ?? ResolvedInnerDim / Heads;
    public int ResolvedOutputDim => Names.Output is null ? ResolvedInnerDim : OutputDim ?? QueryDim;

    internal void Validate()
    {
        if (Heads <= 0) throw new ArgumentException($"heads must be positive, got {Heads}");
        if (ResolvedInnerDim != ResolvedHeadDim * Heads)
            throw new ArgumentException($"inner width {ResolvedInnerDim} is not heads ({Heads}) × head dim ({ResolvedHeadDim})");
        if ((Layout == ProjectionLayout.FusedQkv || Layout == ProjectionLayout.FusedQkvParameters) && ResolvedKeyValueDim != QueryDim)
            throw new ArgumentException($"a fused q/k/v projection needs equal query and key/value widths ({QueryDim} vs {ResolvedKeyValueDim})");
    }
}

/// <summary>
/// Multi-head attention: projections in the layout a checkpoint uses, then <see cref="AttentionCore"/>.
/// Self-attention when no key/value input is given; cross-attention otherwise.
/// </summary>
public class MultiHeadAttention : nn.Module
{
    // Submodules are registered explicitly under their checkpoint names; no reflection over fields.
    protected override void RegisterComponents() { }

    public MultiHeadAttentionOptions Options { get; }
    public AttentionKernel Kernel { get; set; } = AttentionKernel.Fused;

    readonly Linear? _query, _key, _value, _fused, _keyValue, _output;
    readonly LayerNorm? _queryNorm, _keyNorm;
    // Raw parameters are looked up by name: Module.to() replaces them and only updates fields named like them.
    readonly string? _fusedWeightName, _fusedBiasName;
    Parameter? FusedWeight => _fusedWeightName is null ? null : get_parameter(_fusedWeightName);
    Parameter? FusedBias => _fusedBiasName is null ? null : get_parameter(_fusedBiasName);

    public MultiHeadAttention(MultiHeadAttentionOptions options, string name = "attention") : base(name)
    {
        options.Validate();
        Options = options;
        int inner = options.ResolvedInnerDim, kvDim = options.ResolvedKeyValueDim;
        bool bias = options.ProjectionBias;
        var names = options.Names;
        switch (options.Layout)
        {
            case ProjectionLayout.Separate:
                _query = Register(names.Query, nn.Linear(options.QueryDim, inner, bias));
                _key = Register(names.Key, nn.Linear(kvDim, inner, bias));
                _value = Register(names.Value, nn.Linear(kvDim, inner, bias));
                break;
            case ProjectionLayout.FusedQkv:
                _fused = Register(names.QueryKeyValue, nn.Linear(options.QueryDim, 3 * inner, bias));
                break;
            case ProjectionLayout.FusedQkvParameters:
                // Initialised as torch.nn.MultiheadAttention does: xavier-uniform weight, zero bias.
                _fusedWeightName = names.QueryKeyValue + "_weight";
                register_parameter(_fusedWeightName, new Parameter(nn.init.xavier_uniform_(empty(3 * inner, options.QueryDim))));
                if (bias)
                {
                    _fusedBiasName = names.QueryKeyValue + "_bias";
                    register_parameter(_fusedBiasName, new Parameter(zeros(3 * inner)));
                }
                break;
            case ProjectionLayout.SeparateQueryFusedKeyValue:
                _query = Register(names.Query, nn.Linear(options.QueryDim, inner, bias));
                _keyValue = Register(names.KeyValue, nn.Linear(kvDim, 2 * inner, bias));
                break;
        }
        if (names.Output is not null)
            _output = Register(names.Output, nn.Linear(inner, options.ResolvedOutputDim, options.OutputBias ?? bias));
        if (options.QueryKeyNorm)
        {
            _queryNorm = nn.LayerNorm(inner, options.QueryKeyNormEps, bias: options.QueryKeyNormBias);
            _keyNorm = nn.LayerNorm(inner, options.QueryKeyNormEps, bias: options.QueryKeyNormBias);
            register_module(names.QueryNorm, _queryNorm);
            register_module(names.KeyNorm, _keyNorm);
        }
    }

    Linear Register(string name, Linear linear)
    {
        register_module(name, linear);
        return linear;
    }

    /// <summary>The projection modules with their state-dict names (co-attention re-registers them flat).</summary>
    public IEnumerable<(string Name, nn.Module Module)> Projections() => named_children();

    /// <summary>Projects to q, k, v, each [B, L, inner] (q and k through the QK LayerNorms when the options ask for them).</summary>
    public (Tensor Q, Tensor K, Tensor V) Project(Tensor query, Tensor? keyValue = null)
    {
        var (q, k, v) = ProjectLinear(query, keyValue);
        if (_queryNorm is null || _keyNorm is null) return (q, k, v);
        return (_queryNorm.forward(q), _keyNorm.forward(k), v);
    }

    (Tensor Q, Tensor K, Tensor V) ProjectLinear(Tensor query, Tensor? keyValue)
    {
        var source = keyValue ?? query;
        switch (Options.Layout)
        {
            case ProjectionLayout.Separate:
                return (_query!.forward(query), _key!.forward(source), _value!.forward(source));
            case ProjectionLayout.FusedQkv:
            {
                if (keyValue is not null) throw new InvalidOperationException("a fused q/k/v projection only supports self-attention");
                var qkv = _fused!.forward(query).chunk(3, -1);
                return (qkv[0], qkv[1], qkv[2]);
            }
            case ProjectionLayout.FusedQkvParameters:
            {
                if (keyValue is not null)
                {
                    // torch.nn.MultiheadAttention semantics: slices of the packed weight for q and for k/v.
                    int inner = Options.ResolvedInnerDim;
                    var w = FusedWeight!.split(new long[] { inner, 2L * inner }, 0);
                    var b = FusedBias?.split(new long[] { inner, 2L * inner }, 0);
                    var q = nn.functional.linear(query, w[0], b?[0]);
                    var kv = nn.functional.linear(keyValue, w[1], b?[1]).chunk(2, -1);
                    return (q, kv[0], kv[1]);
                }
                var packed = nn.functional.linear(query, FusedWeight!, FusedBias).chunk(3, -1);
                return (packed[0], packed[1], packed[2]);
            }
            default:
            {
                var kv = _keyValue!.forward(source).chunk(2, -1);
                return (_query!.forward(query), kv[0], kv[1]);
            }
        }
    }

    /// <summary>query [B, Lq, QueryDim], keyValue [B, Lk, KeyValueDim] (null = self-attention) → [B, Lq, OutputDim].</summary>
    public Tensor forward(Tensor query, Tensor? keyValue = null, AttentionMask? mask = null)
    {
        var (q, k, v) = Project(query, keyValue);
        return AttendProjected(q, k, v, mask);
    }

    /// <summary>
    /// Self-attention of new positions [B, Lnew, QueryDim] over the cached positions plus themselves; appends their
    /// keys/values to <paramref name="cache"/>. Causality, when set in the mask, is aligned to the last positions.
    /// </summary>
    public Tensor ForwardCached(Tensor query, LayerKeyValueCache cache, AttentionMask? mask = null)
    {
        var (q, k, v) = Project(query);
        var (keys, values) = cache.Append(k, v);
        return AttendProjected(q, keys, values, mask);
    }

    /// <summary>Attention with keys/values supplied already projected (a key/value cache, shared media keys).</summary>
    public Tensor AttendProjected(Tensor q, Tensor k, Tensor v, AttentionMask? mask = null)
    {
        var attended = AttentionCore.Attend(q, k, v, Options.Heads, mask, Options.Dropout, training, Options.Scale, Kernel);
        return _output is null ? attended : _output.forward(attended);
    }
}
