using System.Text.Json;
using System.Text.Json.Serialization;

namespace ModelZoo.Models.Common;

/// <summary>
/// Reads and writes configuration records with the reference implementations' own snake_case field names, so a
/// user's config.json loads as it is. Unknown fields are ignored.
/// </summary>
public static class ConfigJson
{
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        PropertyNameCaseInsensitive = true,
        NumberHandling = JsonNumberHandling.AllowReadingFromString | JsonNumberHandling.AllowNamedFloatingPointLiterals,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static T Load<T>(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"{path}: cannot read the config: {e.Message}", e);
        }
        try
        {
            return JsonSerializer.Deserialize<T>(text, Options) ?? throw new InvalidDataException($"{path}: the config is null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a valid {typeof(T).Name}: {e.Message}", e);
        }
    }

    public static T Parse<T>(JsonElement element, string what = "config")
    {
        try
        {
            return element.Deserialize<T>(Options) ?? throw new InvalidDataException($"{what}: the config is null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{what}: not a valid {typeof(T).Name}: {e.Message}", e);
        }
    }

    public static string Serialize(object config) => JsonSerializer.Serialize(config, config.GetType(), Options);

    public static JsonElement ToElement(object config) => JsonSerializer.SerializeToElement(config, config.GetType(), Options);
}
