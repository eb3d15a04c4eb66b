using System.Text;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace ModelZoo.Weights;

/// <summary>
/// A tensor as the model will see it after the key map: its final name, dtype and shape (known without reading
/// any data), and how to produce it from the checkpoint when its turn comes.
/// </summary>
public sealed class MappedTensor
{
    public string Name { get; }
    public string Dtype { get; }
    public long[] Shape { get; }
    /// <summary>Checkpoint keys this tensor is made from.</summary>
    public IReadOnlyList<string> Sources { get; }
    readonly Func<Tensor> _materialize;
    readonly Func<Tensor, bool>? _readInto;

    public MappedTensor(string name, string dtype, long[] shape, IReadOnlyList<string> sources, Func<Tensor> materialize)
        : this(name, dtype, shape, sources, materialize, null) { }

    /// <param name="readInto">Optional: fills a given tensor directly (see <see cref="ICheckpointDirectReader"/>); only for
    /// tensors passed through unchanged (renames keep it, transforms drop it).</param>
    public MappedTensor(string name, string dtype, long[] shape, IReadOnlyList<string> sources, Func<Tensor> materialize, Func<Tensor, bool>? readInto)
    {
        Name = name; Dtype = dtype; Shape = shape; Sources = sources; _materialize = materialize; _readInto = readInto;
    }

    /// <summary>Reads (and transforms) the tensor; the caller owns the result.</summary>
    public Tensor Materialize() => _materialize();

    /// <summary>Reads the tensor straight into <paramref name="destination"/> (no temporary) when the source allows it and
    /// dtype, shape and device fit; false when not (use <see cref="Materialize"/>).</summary>
    public bool TryMaterializeInto(Tensor destination) => _readInto is not null && _readInto(destination);

    public MappedTensor WithName(string name) => new(name, Dtype, Shape, Sources, _materialize, _readInto);
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>Result of applying a key map to a checkpoint. Disposing it frees any fused tensor a split still holds
/// because some of its parts were never materialised (a non-strict load that skips them).</summary>
public sealed record MappedCheckpoint(IReadOnlyList<MappedTensor> Tensors, IReadOnlyList<string> Ignored) : IDisposable
{
    internal List<IDisposable> Shared { get; init; } = new();

    public void Dispose()
    {
        foreach (var shared in Shared) shared.Dispose();
    }
}

/// <summary>
/// Declarative rules that turn checkpoint keys into model keys, applied in order: renames by template or regex,
/// prefixes, splitting a fused tensor into parts and merging parts into one, transposes, legacy LayerNorm names,
/// keys to ignore. Templates use {placeholders} that match any text, e.g. "{layer}.attn.qkv.{param}", so a rule
/// written with templates can be run backwards (<see cref="Reverse"/>) to write the checkpoint's own layout.
/// </summary>
public sealed class KeyMap
{
    readonly List<KeyRule> _rules;

    KeyMap(List<KeyRule> rules) => _rules = rules;

    public static KeyMap Identity => new(new List<KeyRule>());

    public IReadOnlyList<KeyRule> Rules => _rules;

    KeyMap With(KeyRule rule) => new(new List<KeyRule>(_rules) { rule });

    /// <summary>Removes a prefix from keys that have it ("module.", "model."); keys without it are kept.</summary>
    public KeyMap StripPrefix(string prefix) => With(new PrefixRule(prefix, strip: true));

    /// <summary>Adds a prefix to every key.</summary>
    public KeyMap AddPrefix(string prefix) => With(new PrefixRule(prefix, strip: false));

    /// <summary>Renames keys matching <paramref name="fromTemplate"/> to <paramref name="toTemplate"/> (same placeholders). Reversible.</summary>
    public KeyMap Rename(string fromTemplate, string toTemplate) => With(new TemplateRenameRule(fromTemplate, toTemplate));

    /// <summary>Renames by .NET regex; reversible only if a reverse pattern and replacement are given.</summary>
    public KeyMap RenameRegex(string pattern, string replacement, string? reversePattern = null, string? reverseReplacement = null) =>
        With(new RegexRenameRule(pattern, replacement, reversePattern, reverseReplacement));

    /// <summary>Old BERT/TF names: LayerNorm "gamma" → "weight", "beta" → "bias". Writing keeps the new names.</summary>
    public KeyMap LegacyLayerNormNames() => With(new LegacyLayerNormRule());

    /// <summary>Splits a fused tensor into equal parts along <paramref name="dim"/> (q/k/v packing). Reverse: merge.</summary>
    public KeyMap Split(string fusedTemplate, int dim, params string[] partTemplates) => With(new SplitRule(fusedTemplate, partTemplates, dim));

    /// <summary>Concatenates parts along <paramref name="dim"/> into one tensor. Reverse: split.</summary>
    public KeyMap Merge(string[] partTemplates, string fusedTemplate, int dim) => With(new MergeRule(partTemplates, fusedTemplate, dim));

    /// <summary>Transposes 2-D tensors whose keys match (Hugging Face GPT-2 Conv1D stores [in, out]). Its own reverse.</summary>
    public KeyMap Transpose(string template) => With(new TransposeRule(template));

    /// <summary>Drops checkpoint keys matching a template (e.g. "{x}.position_ids"); they are listed as ignored in the report.</summary>
    public KeyMap Ignore(string template) => With(new IgnoreRule(KeyTemplate.Parse(template).Regex, template));

    /// <summary>Drops checkpoint keys matching a .NET regex.</summary>
    public KeyMap IgnoreRegex(string pattern) => With(new IgnoreRule(new Regex(pattern, RegexOptions.CultureInvariant), pattern));

    /// <summary>Appends the rules of another map.</summary>
    public KeyMap Then(KeyMap other) => new(_rules.Concat(other._rules).ToList());

    public bool IsReversible => _rules.All(r => r.IsReversible);

    /// <summary>The map from model keys back to this checkpoint layout. Throws if a rule cannot be reversed.</summary>
    public KeyMap Reverse()
    {
        var reversed = new List<KeyRule>();
        for (int i = _rules.Count - 1; i >= 0; i--)
        {
            var rule = _rules[i];
            if (!rule.IsReversible) throw new InvalidOperationException($"key rule '{rule}' cannot be reversed");
            if (rule.Inverse() is KeyRule inverse) reversed.Add(inverse);
        }
        return new KeyMap(reversed);
    }

    /// <summary>Applies the rules to a checkpoint's entries; nothing is read until a tensor is materialised.</summary>
    public MappedCheckpoint Apply(ICheckpointReader reader)
    {
        var tensors = reader.Entries
            .Select(e => new MappedTensor(e.Name, e.Dtype, e.Shape, new[] { e.Name }, () => reader.Read(e.Name),
                reader is ICheckpointDirectReader direct ? destination => direct.TryReadInto(e.Name, destination) : null))
            .ToList();
        return Apply(tensors);
    }

    /// <summary>Applies the rules to tensors held in memory (a model's state dict when converting).</summary>
    public MappedCheckpoint Apply(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        var tensors = stateDict
            .Select(kv => new MappedTensor(kv.Key, StorageDtype.FromScalarType(kv.Value.dtype), kv.Value.shape, new[] { kv.Key },
                () => kv.Value.detach().cpu().clone()))
            .ToList();
        return Apply(tensors);
    }

    public MappedCheckpoint Apply(List<MappedTensor> tensors)
    {
        var ignored = new List<string>();
        var shared = new List<IDisposable>();
        foreach (var rule in _rules)
            tensors = rule.Apply(tensors, ignored, shared);
        var duplicates = tensors.GroupBy(t => t.Name, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (duplicates.Count > 0)
            throw new InvalidOperationException($"the key map produces {duplicates.Count} name(s) more than once, e.g. '{duplicates[0]}' from " +
                string.Join(" and ", tensors.Where(t => t.Name == duplicates[0]).Select(t => string.Join("+", t.Sources))));
        return new MappedCheckpoint(tensors, ignored) { Shared = shared };
    }

    /// <summary>Maps one key by the renaming rules only (for messages and tests); null if the key is ignored or split.</summary>
    public string? MapName(string key)
    {
        var mapped = Apply(new List<MappedTensor> { new(key, "F32", new long[] { 3, 3 }, new[] { key }, () => throw new InvalidOperationException()) });
        return mapped.Tensors.Count == 1 ? mapped.Tensors[0].Name : null;
    }

    public override string ToString() => _rules.Count == 0 ? "identity" : string.Join("; ", _rules);
}

/// <summary>A key pattern with {placeholders}: converts to a regex and back to a name given the captured values.</summary>
public sealed class KeyTemplate
{
    static readonly Regex Placeholder = new(@"\{([A-Za-z_][A-Za-z0-9_]*)\}", RegexOptions.CultureInvariant);

    public string Text { get; }
    public Regex Regex { get; }
    public IReadOnlyList<string> Names { get; }

    KeyTemplate(string text, Regex regex, IReadOnlyList<string> names) { Text = text; Regex = regex; Names = names; }

    public static KeyTemplate Parse(string text)
    {
        var pattern = new StringBuilder("^");
        var names = new List<string>();
        int last = 0;
        foreach (Match m in Placeholder.Matches(text))
        {
            pattern.Append(Regex.Escape(text[last..m.Index]));
            string name = m.Groups[1].Value;
            if (names.Contains(name)) pattern.Append($@"\k<{name}>");
            else { pattern.Append($"(?<{name}>.+?)"); names.Add(name); }
            last = m.Index + m.Length;
        }
        pattern.Append(Regex.Escape(text[last..])).Append('$');
        return new KeyTemplate(text, new Regex(pattern.ToString(), RegexOptions.CultureInvariant), names);
    }

    public bool TryMatch(string key, out Dictionary<string, string> values)
    {
        values = new Dictionary<string, string>(StringComparer.Ordinal);
        var m = Regex.Match(key);
        if (!m.Success) return false;
        foreach (var name in Names) values[name] = m.Groups[name].Value;
        return true;
    }

    public string Fill(IReadOnlyDictionary<string, string> values) =>
        Placeholder.Replace(Text, m => values.TryGetValue(m.Groups[1].Value, out var v)
            ? v : throw new InvalidOperationException($"template '{Text}' uses {{{m.Groups[1].Value}}}, which the source pattern does not capture"));

    public override string ToString() => Text;
}

/// <summary>One step of a key map.</summary>
public abstract class KeyRule
{
    internal abstract List<MappedTensor> Apply(List<MappedTensor> tensors, List<string> ignored, List<IDisposable> shared);
    public abstract bool IsReversible { get; }
    /// <summary>The reverse rule; null when the reverse is "leave keys as they are".</summary>
    public abstract KeyRule? Inverse();
}

sealed class PrefixRule(string prefix, bool strip) : KeyRule
{
    internal override List<MappedTensor> Apply(List<MappedTensor> tensors, List<string> ignored, List<IDisposable> shared) =>
        tensors.Select(t => strip
            ? (t.Name.StartsWith(prefix, StringComparison.Ordinal) ? t.WithName(t.Name[prefix.Length..]) : t)
            : t.WithName(prefix + t.Name)).ToList();
    public override bool IsReversible => true;
    public override KeyRule Inverse() => new PrefixRule(prefix, !strip);
    public override string ToString() => (strip ? "strip prefix '" : "add prefix '") + prefix + "'";
}

sealed class TemplateRenameRule(string from, string to) : KeyRule
{
    readonly KeyTemplate _from = KeyTemplate.Parse(from), _to = KeyTemplate.Parse(to);

    internal override List<MappedTensor> Apply(List<MappedTensor> tensors, List<string> ignored, List<IDisposable> shared) =>
        tensors.Select(t => _from.TryMatch(t.Name, out var values) ? t.WithName(_to.Fill(values)) : t).ToList();
    public override bool IsReversible => true;
    public override KeyRule Inverse() => new TemplateRenameRule(to, from);
    public override string ToString() => $"rename '{from}' -> '{to}'";
}

sealed class RegexRenameRule(string pattern, string replacement, string? reversePattern, string? reverseReplacement) : KeyRule
{
    readonly Regex _regex = new(pattern, RegexOptions.CultureInvariant);

    internal override List<MappedTensor> Apply(List<MappedTensor> tensors, List<string> ignored, List<IDisposable> shared) =>
        tensors.Select(t => _regex.IsMatch(t.Name) ? t.WithName(_regex.Replace(t.Name, replacement)) : t).ToList();
    public override bool IsReversible => reversePattern is not null && reverseReplacement is not null;
    public override KeyRule? Inverse() => IsReversible ? new RegexRenameRule(reversePattern!, reverseReplacement!, pattern, replacement) : null;
    public override string ToString() => $"rename /{pattern}/ -> '{replacement}'";
}

sealed class LegacyLayerNormRule : KeyRule
{
    internal override List<MappedTensor> Apply(List<MappedTensor> tensors, List<string> ignored, List<IDisposable> shared) =>
        tensors.Select(t => t.Name.EndsWith(".gamma", StringComparison.Ordinal) ? t.WithName(t.Name[..^6] + ".weight")
            : t.Name.EndsWith(".beta", StringComparison.Ordinal) ? t.WithName(t.Name[..^5] + ".bias") : t).ToList();
    public override bool IsReversible => true;
    public override KeyRule? Inverse() => null; // write the current names
    public override string ToString() => "LayerNorm gamma/beta -> weight/bias";
}

sealed class IgnoreRule(Regex regex, string text) : KeyRule
{
    internal override List<MappedTensor> Apply(List<MappedTensor> tensors, List<string> ignored, List<IDisposable> shared)
    {
        var kept = new List<MappedTensor>(tensors.Count);
        foreach (var t in tensors)
        {
            if (regex.IsMatch(t.Name)) ignored.AddRange(t.Sources);
            else kept.Add(t);
        }
        return kept;
    }
    public override bool IsReversible => true;
    public override KeyRule? Inverse() => null;
    public override string ToString() => $"ignore '{text}'";
}

sealed class TransposeRule(string template) : KeyRule
{
    readonly KeyTemplate _template = KeyTemplate.Parse(template);

    internal override List<MappedTensor> Apply(List<MappedTensor> tensors, List<string> ignored, List<IDisposable> shared) =>
        tensors.Select(t =>
        {
            if (!_template.Regex.IsMatch(t.Name)) return t;
            if (t.Shape.Length != 2) throw new InvalidOperationException($"cannot transpose '{t.Name}' of shape {t.ShapeText}: not 2-D");
            var source = t;
            return new MappedTensor(t.Name, t.Dtype, new[] { t.Shape[1], t.Shape[0] }, t.Sources, () =>
            {
                using var original = source.Materialize();
                return original.t().contiguous();
            });
        }).ToList();
    public override bool IsReversible => true;
    public override KeyRule Inverse() => new TransposeRule(template);
    public override string ToString() => $"transpose '{template}'";
}

sealed class SplitRule(string fused, string[] parts, int dim) : KeyRule
{
    readonly KeyTemplate _fused = KeyTemplate.Parse(fused);
    readonly KeyTemplate[] _parts = parts.Select(KeyTemplate.Parse).ToArray();

    internal override List<MappedTensor> Apply(List<MappedTensor> tensors, List<string> ignored, List<IDisposable> shared)
    {
        var result = new List<MappedTensor>(tensors.Count + 2 * parts.Length);
        foreach (var t in tensors)
        {
            if (!_fused.TryMatch(t.Name, out var values)) { result.Add(t); continue; }
            int axis = dim < 0 ? t.Shape.Length + dim : dim;
            if (axis < 0 || axis >= t.Shape.Length || t.Shape[axis] % parts.Length != 0)
                throw new InvalidOperationException($"cannot split '{t.Name}' of shape {t.ShapeText} into {parts.Length} equal parts along dim {dim}");
            var partShape = (long[])t.Shape.Clone();
            partShape[axis] /= parts.Length;
            var source = new SharedSource(t, parts.Length);
            shared.Add(source); // the MappedCheckpoint frees it if some part is never taken
            for (int i = 0; i < parts.Length; i++)
            {
                int index = i;
                result.Add(new MappedTensor(_parts[i].Fill(values), t.Dtype, partShape, t.Sources, () =>
                {
                    var whole = source.Acquire();
                    try { return whole.narrow(axis, index * partShape[axis], partShape[axis]).clone(); }
                    finally { source.Release(); }
                }));
            }
        }
        return result;
    }
    public override bool IsReversible => true;
    public override KeyRule Inverse() => new MergeRule(parts, fused, dim);
    public override string ToString() => $"split '{fused}' -> {string.Join(", ", parts)} (dim {dim})";

    /// <summary>Reads the fused tensor once and frees it after every part has taken its slice.</summary>
    internal sealed class SharedSource(MappedTensor source, int users) : IDisposable
    {
        /// <summary>True while the fused tensor is held (read, and not every part has taken its slice).</summary>
        public bool Holding => _tensor is not null;

        /// <summary>Frees the fused tensor now, whichever parts were taken.</summary>
        public void Dispose()
        {
            _tensor?.Dispose();
            _tensor = null;
            _remaining = _users;
        }

        Tensor? _tensor;
        readonly int _users = users;
        int _remaining = users;

        public Tensor Acquire()
        {
            // Kept out of any dispose scope: the first part is usually materialised inside the loader's per-tensor scope,
            // which would otherwise free the fused tensor before the other parts take their slices.
            _tensor ??= source.Materialize().DetachFromDisposeScope();
            return _tensor;
        }

        public void Release()
        {
            if (--_remaining > 0) return;
            _tensor?.Dispose();
            _tensor = null;
            _remaining = _users; // materialising again (a second load) reads again
        }
    }
}

sealed class MergeRule(string[] parts, string fused, int dim) : KeyRule
{
    readonly KeyTemplate[] _parts = parts.Select(KeyTemplate.Parse).ToArray();
    readonly KeyTemplate _fused = KeyTemplate.Parse(fused);

    internal override List<MappedTensor> Apply(List<MappedTensor> tensors, List<string> ignored, List<IDisposable> shared)
    {
        var groups = new Dictionary<string, MappedTensor?[]>(StringComparer.Ordinal);
        var order = new List<string>();
        var rest = new List<MappedTensor>();
        foreach (var t in tensors)
        {
            int part = -1;
            Dictionary<string, string>? values = null;
            for (int i = 0; i < _parts.Length && part < 0; i++)
                if (_parts[i].TryMatch(t.Name, out values)) part = i;
            if (part < 0) { rest.Add(t); continue; }
            string target = _fused.Fill(values!);
            if (!groups.TryGetValue(target, out var slots)) { groups[target] = slots = new MappedTensor?[_parts.Length]; order.Add(target); }
            slots[part] = t;
        }
        var result = rest;
        foreach (var target in order)
        {
            var slots = groups[target];
            if (slots.Any(s => s is null))
            {
                // An incomplete group is left as it is; the load report then shows the parts as unexpected.
                result.AddRange(slots.Where(s => s is not null)!);
                continue;
            }
            var members = slots.Select(s => s!).ToArray();
            int axis = dim < 0 ? members[0].Shape.Length + dim : dim;
            CheckParts(target, members, axis);
            var shape = (long[])members[0].Shape.Clone();
            shape[axis] = members.Sum(m => m.Shape[axis]);
            result.Add(new MappedTensor(target, members[0].Dtype, shape, members.SelectMany(m => m.Sources).ToArray(), () =>
            {
                var pieces = members.Select(m => m.Materialize()).ToArray();
                try { return cat(pieces, axis); }
                finally { foreach (var p in pieces) p.Dispose(); }
            }));
        }
        return result;
    }
    /// <summary>Parts must agree in dtype, rank and every dimension but the one they are concatenated along; checked
    /// while planning, before anything is read.</summary>
    void CheckParts(string target, MappedTensor[] members, int axis)
    {
        static string Key(MappedTensor m) => string.Join("+", m.Sources);
        var first = members[0];
        if (axis < 0 || axis >= first.Shape.Length)
            throw new InvalidOperationException($"cannot merge into '{target}' along dim {dim}: '{Key(first)}' has shape {first.ShapeText}");
        foreach (var m in members.Skip(1))
        {
            if (m.Dtype != first.Dtype)
                throw new InvalidOperationException($"cannot merge into '{target}': '{Key(first)}' is {first.Dtype} but '{Key(m)}' is {m.Dtype}");
            if (m.Shape.Length != first.Shape.Length || Enumerable.Range(0, first.Shape.Length).Any(d => d != axis && m.Shape[d] != first.Shape[d]))
                throw new InvalidOperationException($"cannot merge into '{target}' along dim {dim}: '{Key(first)}' has shape {first.ShapeText} " +
                                                    $"but '{Key(m)}' has shape {m.ShapeText} (they may differ only in dim {axis})");
        }
    }

    public override bool IsReversible => true;
    public override KeyRule Inverse() => new SplitRule(fused, parts, dim);
    public override string ToString() => $"merge {string.Join(", ", parts)} -> '{fused}' (dim {dim})";
}
