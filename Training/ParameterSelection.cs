using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Training;

/// <summary>Which parameters train, and which of those get weight decay.</summary>
public static class ParameterSelection
{
    /// <summary>
    /// A glob over dotted parameter names: <c>*</c> matches any run of characters (dots included), <c>?</c> one
    /// character; the whole name must match. "uniter.embeddings.*", "*.layer.0.*", "*bias".
    /// </summary>
    public static Regex Glob(string pattern) =>
        new("^" + Regex.Escape(pattern).Replace("\\*", ".*").Replace("\\?", ".") + "$", RegexOptions.CultureInvariant);

    /// <summary>Sets requires_grad = false on every parameter whose name matches a pattern; returns the names frozen.</summary>
    public static List<string> Freeze(nn.Module model, IEnumerable<string> patterns)
    {
        var globs = patterns.Select(p => (Pattern: p, Regex: Glob(p))).ToList();
        if (globs.Count == 0) return new List<string>();
        var frozen = new List<string>();
        var used = new HashSet<string>();
        foreach (var (name, parameter) in model.named_parameters())
        {
            var match = globs.FirstOrDefault(g => g.Regex.IsMatch(name));
            if (match.Regex is null) continue;
            parameter.requires_grad = false;
            frozen.Add(name);
            used.Add(match.Pattern);
        }
        var unused = globs.Select(g => g.Pattern).Where(p => !used.Contains(p)).ToList();
        if (unused.Count > 0)
            throw new ArgumentException($"freeze pattern(s) {string.Join(", ", unused.Select(p => $"'{p}'"))} match no parameter of the model " +
                                        $"(names look like '{model.named_parameters().Select(p => p.name).FirstOrDefault()}')");
        return frozen;
    }

    /// <summary>
    /// Splits the trainable parameters into (with decay, without decay): biases and the weights of normalisation
    /// layers (LayerNorm, BatchNorm, GroupNorm modules; or a name containing "LayerNorm"/"layer_norm"/"ln_") get none,
    /// nor does a learned temperature (logit_scale, as OpenCLIP trains it).
    /// </summary>
    public static (List<(string Name, Parameter Parameter)> Decay, List<(string Name, Parameter Parameter)> NoDecay) WeightDecayGroups(nn.Module model)
    {
        var normParameters = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (moduleName, module) in model.named_modules())
        {
            if (module is not (LayerNorm or BatchNorm1d or BatchNorm2d or BatchNorm3d or GroupNorm)) continue;
            foreach (var (name, _) in module.named_parameters(recurse: false))
                normParameters.Add(moduleName.Length == 0 ? name : moduleName + "." + name);
        }
        var decay = new List<(string, Parameter)>();
        var noDecay = new List<(string, Parameter)>();
        foreach (var (name, parameter) in model.named_parameters())
        {
            if (!parameter.requires_grad) continue;
            string last = name[(name.LastIndexOf('.') + 1)..];
            bool exempt = last == "bias" || last == "logit_scale" || normParameters.Contains(name) || name.Contains("LayerNorm", StringComparison.Ordinal)
                          || name.Contains("layer_norm", StringComparison.Ordinal) || name.Split('.').Any(part => part.StartsWith("ln_", StringComparison.Ordinal) || part == "ln");
            (exempt ? noDecay : decay).Add((name, parameter));
        }
        return (decay, noDecay);
    }
}
