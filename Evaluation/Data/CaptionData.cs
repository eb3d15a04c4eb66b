using System.Text.Json;

namespace ModelZoo.Evaluation.Data;

/// <summary>One image of a captioning split with its captions.</summary>
public sealed record CaptionedImage(long ImageId, string FilePath, string Split, IReadOnlyList<string> Captions);

/// <summary>
/// COCO / Flickr30k Karpathy splits in the <c>dataset_coco.json</c> / <c>dataset_flickr30k.json</c> layout:
/// <c>{"images": [{"filepath"?, "filename", "split", "imgid", "cocoid"?, "sentences": [{"raw", "tokens"}]}]}</c>.
/// Streamed: the COCO file is about 150 MB.
/// </summary>
public static class KarpathyCaptions
{
    /// <summary>
    /// The images of the given splits ("train", "restval", "val", "test"; none = all). <c>FilePath</c> is
    /// "filepath/filename" (COCO) or "filename" (Flickr30k); the id is <c>cocoid</c> when present, else <c>imgid</c>.
    /// </summary>
    public static IEnumerable<CaptionedImage> Read(string path, params string[] splits)
    {
        var wanted = new HashSet<string>(splits, StringComparer.Ordinal);
        int index = 0;
        foreach (var image in JsonArrayStream.Items(path, "images"))
        {
            string where = $"{path}: images[{index++}]";
            if (image.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where}: expected an object");
            string split = image.TryGetProperty("split", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : "";
            if (wanted.Count > 0 && !wanted.Contains(split)) continue;
            string fileName = image.TryGetProperty("filename", out var f) && f.ValueKind == JsonValueKind.String
                ? f.GetString()! : throw new InvalidDataException($"{where}: missing \"filename\"");
            string filePath = image.TryGetProperty("filepath", out var fp) && fp.ValueKind == JsonValueKind.String ? Path.Combine(fp.GetString()!, fileName) : fileName;
            long id = image.TryGetProperty("cocoid", out var c) && c.ValueKind == JsonValueKind.Number ? c.GetInt64()
                : image.TryGetProperty("imgid", out var i) && i.ValueKind == JsonValueKind.Number ? i.GetInt64()
                : throw new InvalidDataException($"{where}: missing \"imgid\"");
            if (!image.TryGetProperty("sentences", out var sentences) || sentences.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"{where}: missing the \"sentences\" array");
            var captions = sentences.EnumerateArray().Select((e, j) =>
                e.TryGetProperty("raw", out var raw) && raw.ValueKind == JsonValueKind.String ? raw.GetString()!
                : e.TryGetProperty("tokens", out var tokens) && tokens.ValueKind == JsonValueKind.Array ? string.Join(' ', tokens.EnumerateArray().Select(t => t.GetString()))
                : throw new InvalidDataException($"{where}.sentences[{j}]: neither \"raw\" nor \"tokens\"")).ToList();
            yield return new CaptionedImage(id, filePath, split, captions);
        }
    }

    /// <summary>The flat caption list of a split and the image each caption belongs to (rows / columns of a retrieval score matrix).</summary>
    public static (List<string> Captions, List<int> CaptionImage) Flatten(IReadOnlyList<CaptionedImage> images, int? captionsPerImage = null)
    {
        var captions = new List<string>();
        var owner = new List<int>();
        for (int i = 0; i < images.Count; i++)
            foreach (var caption in captionsPerImage is int k ? images[i].Captions.Take(k) : images[i].Captions)
            {
                captions.Add(caption);
                owner.Add(i);
            }
        return (captions, owner);
    }
}

/// <summary>
/// Images in a folder: either class subfolders (root/CLASS/*.jpg, for zero-shot classification; classes sorted by
/// name) or a flat folder (label -1).
/// </summary>
public sealed record ImageFolder(IReadOnlyList<string> Classes, IReadOnlyList<(string Path, int Label)> Images)
{
    public static readonly string[] Extensions = { ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp" };

    public static ImageFolder Scan(string root)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"{root}: image folder not found");
        static bool IsImage(string f) => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant());
        var classes = Directory.GetDirectories(root).Where(d => Directory.EnumerateFiles(d).Any(IsImage))
            .Select(Path.GetFileName).OrderBy(n => n, StringComparer.Ordinal).ToList();
        var images = new List<(string, int)>();
        if (classes.Count > 0)
        {
            for (int c = 0; c < classes.Count; c++)
                images.AddRange(Directory.EnumerateFiles(Path.Combine(root, classes[c]!)).Where(IsImage).Order(StringComparer.Ordinal).Select(f => (f, c)));
        }
        else
        {
            images.AddRange(Directory.EnumerateFiles(root).Where(IsImage).Order(StringComparer.Ordinal).Select(f => (f, -1)));
        }
        if (images.Count == 0) throw new InvalidDataException($"{root}: no images ({string.Join(", ", Extensions)}) in the folder or its class subfolders");
        return new ImageFolder(classes!, images);
    }
}
