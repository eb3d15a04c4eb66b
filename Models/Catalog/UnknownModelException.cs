namespace ModelZoo.Models.Catalog;

public sealed class UnknownModelException : KeyNotFoundException
{
    public string Name { get; }
    public IReadOnlyList<string> Suggestions { get; }

    public UnknownModelException(string name, IReadOnlyList<string> suggestions)
        : base($"unknown model '{name}'." + (suggestions.Count > 0 ? " Closest: " + string.Join(", ", suggestions) + "." : "") +
               " Run `modelzoo list` for every name.")
    {
        Name = name;
        Suggestions = suggestions;
    }
}
