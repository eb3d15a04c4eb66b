namespace ModelZoo.Evaluation.Data;

/// <summary>
/// Images with side-car captions: every image under a folder (subfolders included) with a text file of the same
/// name beside it (<c>cat.jpg</c> + <c>cat.txt</c>), one caption per non-empty line, as web-scale caption sets are
/// often laid out. Images come in ordinal path order.
/// </summary>
public static class CaptionFolder
{
    public static List<(string Image, IReadOnlyList<string> Captions)> Scan(string root)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"{root}: image folder not found");
        var images = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Where(f => ImageFolder.Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .Order(StringComparer.Ordinal).ToList();
        if (images.Count == 0) throw new InvalidDataException($"{root}: no images ({string.Join(", ", ImageFolder.Extensions)}) in the folder or its subfolders");
        var items = new List<(string, IReadOnlyList<string>)>();
        foreach (var image in images)
        {
            string text = Path.ChangeExtension(image, ".txt");
            if (!File.Exists(text))
                throw new InvalidDataException($"{image}: no caption file {Path.GetFileName(text)} beside it (an image folder for captions needs NAME.txt, one caption per line, beside each image)");
            var captions = File.ReadAllLines(text).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
            if (captions.Count == 0) throw new InvalidDataException($"{text}: empty caption file");
            items.Add((image, captions));
        }
        return items;
    }
}
