using System.Text.Json;
using System.Text.RegularExpressions;
using ModelZoo.Evaluation.Data;

namespace ModelZoo.Training.Tasks;

/// <summary>
/// A data manifest: a small JSON file that says where a split's files are (paths relative to the manifest).
/// VQA: <c>{"task": "vqa", "questions": "q.json", "annotations": "a.json", "images": "folder", "image_pattern": "COCO_val2014_{image_id:012}.jpg"}</c>
/// (annotations may be left out for test splits); models over detector regions read <c>"features"</c> instead of images:
/// a folder of region files <c>{image_id}.safetensors</c> or UNITER <c>{image_id}.npz</c> (<see cref="RegionFiles"/>), or
/// one bottom-up attention TSV file. Retrieval: <c>{"task": "retrieval", "captions": "dataset_coco.json",
/// "splits": ["test"], "images": "folder"}</c> (Karpathy layout; images at folder/filepath/filename).
/// </summary>
public sealed partial record TaskManifest(string Path, string Task, string? Questions, string? Annotations, string? Captions, IReadOnlyList<string> Splits,
                                  string? Images, string ImagePattern, string? Features = null)
{
    public static TaskManifest Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: data manifest not found", path);
        JsonDocument document;
        try { document = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: a data manifest is a JSON object");
            string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
            string? Get(string key) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            string? Resolve(string? relative) => relative is null ? null : System.IO.Path.GetFullPath(System.IO.Path.Combine(directory, relative));
            string task = Get("task") ?? (Get("questions") is not null ? "vqa" : Get("captions") is not null ? "retrieval"
                : throw new InvalidDataException($"{path}: say \"task\": \"vqa\" (with questions/annotations) or \"retrieval\" (with captions)"));
            var splits = root.TryGetProperty("splits", out var s) && s.ValueKind == JsonValueKind.Array
                ? s.EnumerateArray().Select(x => x.GetString() ?? "").ToList()
                : Get("split") is string one ? new List<string> { one } : new List<string>();
            var manifest = new TaskManifest(path, task, Resolve(Get("questions")), Resolve(Get("annotations")), Resolve(Get("captions")), splits,
                Resolve(Get("images")), Get("image_pattern") ?? "{image_id}.png", Resolve(Get("features")));
            if (manifest.Images is null && manifest.Features is null)
                throw new InvalidDataException($"{path}: missing \"images\" (the image folder) or \"features\" (the region files folder)");
            if (task == "vqa" && manifest.Questions is null) throw new InvalidDataException($"{path}: a VQA manifest needs \"questions\"");
            if (task == "retrieval" && manifest.Captions is null) throw new InvalidDataException($"{path}: a retrieval manifest needs \"captions\"");
            if (task is not ("vqa" or "retrieval")) throw new InvalidDataException($"{path}: unknown task '{task}' (vqa or retrieval)");
            return manifest;
        }
    }

    public void Write() => Weights.AtomicFile.WriteAllText(Path, JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["task"] = Task, ["questions"] = Relative(Questions), ["annotations"] = Relative(Annotations), ["captions"] = Relative(Captions),
        ["splits"] = Splits.Count > 0 ? Splits : null, ["images"] = Relative(Images), ["image_pattern"] = Task == "vqa" && Images is not null ? ImagePattern : null, ["features"] = Relative(Features),
    }.Where(p => p.Value is not null).ToDictionary(p => p.Key, p => p.Value), new JsonSerializerOptions { WriteIndented = true }));

    string? Relative(string? full) => full is null ? null : System.IO.Path.GetRelativePath(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!, full);

    /// <summary>The image file of an image id: the pattern with {image_id} or {image_id:012} (zero-padded) filled in.</summary>
    public string ImagePath(long imageId) => System.IO.Path.Combine(Images ?? "", ImagePatternRegex().Replace(ImagePattern,
        m => m.Groups[1].Success ? imageId.ToString("D" + int.Parse(m.Groups[1].Value)) : imageId.ToString()));

    public List<VqaItem> ReadVqa()
    {
        if (Task != "vqa") throw new InvalidDataException($"{Path}: is a {Task} manifest, a VQA one was expected");
        return VqaData.Read(Questions!, Annotations).Select(e => new VqaItem(e, Visual(e.ImageId))).ToList();
    }

    /// <summary>
    /// An image's input: its image file and, when the manifest names region features, its regions: a folder of
    /// <c>{image_id}.safetensors</c> or <c>{image_id}.npz</c> files, or one bottom-up TSV file indexed by image id.
    /// </summary>
    public VisualInput Visual(long imageId)
    {
        var visual = new VisualInput { Path = Images is null ? null : ImagePath(imageId) };
        if (Features is null) return visual;
        if (File.Exists(Features) && Features.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase))
        {
            string tsv = Features, id = imageId.ToString();
            return visual with { RegionLoader = () => RegionFiles.FromRegionFeatures(TsvIndex(tsv).Read(id), tsv) };
        }
        string file = System.IO.Path.Combine(Features, $"{imageId}.safetensors");
        string npz = System.IO.Path.Combine(Features, $"{imageId}.npz");
        return visual with { RegionFile = !File.Exists(file) && File.Exists(npz) ? npz : file };
    }

    static readonly Dictionary<string, Processing.Regions.RegionFeatureTsvIndex> TsvIndexes = new(StringComparer.Ordinal);

    static Processing.Regions.RegionFeatureTsvIndex TsvIndex(string path)
    {
        lock (TsvIndexes)
        {
            if (!TsvIndexes.TryGetValue(path, out var index)) TsvIndexes[path] = index = Processing.Regions.RegionFeatureTsvIndex.Build(path);
            return index;
        }
    }

    public List<CaptionItem> ReadRetrieval(int? captionsPerImage = null)
    {
        if (Task != "retrieval") throw new InvalidDataException($"{Path}: is a {Task} manifest, a retrieval one was expected");
        return KarpathyCaptions.Read(Captions!, Splits.ToArray())
            .Select(i => new CaptionItem(Features is not null ? Visual(i.ImageId) with { Path = Images is null ? null : System.IO.Path.Combine(Images, i.FilePath) }
                    : VisualInput.FromFile(System.IO.Path.Combine(Images!, i.FilePath)), captionsPerImage is int k ? i.Captions.Take(k).ToList() : i.Captions))
            .ToList();
    }

    [GeneratedRegex(@"\{image_id(?::0?(\d+))?\}")]
    private static partial Regex ImagePatternRegex();
}
