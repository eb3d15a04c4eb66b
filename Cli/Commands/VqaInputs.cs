using ModelZoo.Processing.Regions;

namespace ModelZoo.Cli.Commands;

/// <summary>Finds one image's detector regions for `modelzoo vqa --features PATH --image-id ID`.</summary>
static class VqaInputs
{
    /// <summary>
    /// PATH is a bottom-up-attention TSV (LXMERT / ViLBERT; the line of that image id), a UNITER .npz file, or a
    /// directory of UNITER .npz files (ID.npz, or a name ending in _ID, also with COCO's 12-digit zero padding).
    /// </summary>
    public static RegionFeatures LoadRegions(string path, string imageId)
    {
        if (Directory.Exists(path))
        {
            var exact = Path.Combine(path, imageId + ".npz");
            if (File.Exists(exact)) return UniterNpz.Read(exact);
            var suffixes = new[] { "_" + imageId, "_" + imageId.PadLeft(12, '0') };
            var matches = Directory.EnumerateFiles(path, "*.npz")
                .Where(f => suffixes.Any(sfx => Path.GetFileNameWithoutExtension(f).EndsWith(sfx, StringComparison.Ordinal))).ToList();
            return matches.Count switch
            {
                1 => UniterNpz.Read(matches[0]),
                0 => throw new FileNotFoundException($"{path}: no region file for image '{imageId}' (looked for {imageId}.npz and *_{imageId}.npz)"),
                _ => throw new InvalidDataException($"{path}: several region files match image '{imageId}': {string.Join(", ", matches.Select(Path.GetFileName))}"),
            };
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such feature file or directory", path);
        if (path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase)) return UniterNpz.Read(path);
        using var index = RegionFeatureTsvIndex.Build(path);
        if (!index.Contains(imageId))
            throw new KeyNotFoundException($"{path}: no image '{imageId}' among its {index.Count} images");
        return index.Read(imageId);
    }
}
