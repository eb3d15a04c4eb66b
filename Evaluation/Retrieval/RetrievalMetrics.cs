using System.Text.Json;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Evaluation.Retrieval;

/// <summary>
/// Which caption belongs to which image: <c>txt_ids</c> (matrix rows), <c>img_ids</c> (matrix columns),
/// <c>txt2img</c> (caption id to its image id) and <c>img2txts</c> (image id to its caption ids), the layout of
/// UNITER's itm evaluation and of the retrieval-metric fixture.
/// </summary>
public sealed record RetrievalMapping(
    IReadOnlyList<string> TextIds,
    IReadOnlyList<string> ImageIds,
    IReadOnlyDictionary<string, string> TextToImage,
    IReadOnlyDictionary<string, IReadOnlyList<string>> ImageToTexts)
{
    /// <summary>A mapping where caption j belongs to image <paramref name="captionImage"/>[j]; ids are the indices.</summary>
    public static RetrievalMapping FromCaptionImages(IReadOnlyList<int> captionImage, int images)
    {
        var textIds = Enumerable.Range(0, captionImage.Count).Select(i => i.ToString()).ToList();
        var imageIds = Enumerable.Range(0, images).Select(i => i.ToString()).ToList();
        var textToImage = new Dictionary<string, string>();
        var imageToTexts = imageIds.ToDictionary(id => id, _ => new List<string>());
        for (int j = 0; j < captionImage.Count; j++)
        {
            if (captionImage[j] < 0 || captionImage[j] >= images) throw new ArgumentException($"caption {j} belongs to image {captionImage[j]}, outside 0..{images - 1}");
            textToImage[textIds[j]] = imageIds[captionImage[j]];
            imageToTexts[imageIds[captionImage[j]]].Add(textIds[j]);
        }
        return new RetrievalMapping(textIds, imageIds, textToImage, imageToTexts.ToDictionary(p => p.Key, p => (IReadOnlyList<string>)p.Value));
    }

    /// <summary>Reads mapping.json; ids may be strings or numbers. <c>img2txts</c> is derived from <c>txt2img</c> when absent.</summary>
    public static RetrievalMapping Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        JsonDocument document;
        try { document = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected an object with txt_ids, img_ids, txt2img, img2txts");
            List<string> Ids(string key) => root.TryGetProperty(key, out var list) && list.ValueKind == JsonValueKind.Array
                ? list.EnumerateArray().Select(e => Id(e, $"{path}: {key}")).ToList()
                : throw new InvalidDataException($"{path}: missing the \"{key}\" array");
            var textIds = Ids("txt_ids");
            var imageIds = Ids("img_ids");
            if (!root.TryGetProperty("txt2img", out var t2i) || t2i.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: missing the \"txt2img\" object");
            var textToImage = t2i.EnumerateObject().ToDictionary(p => p.Name, p => Id(p.Value, $"{path}: txt2img[{p.Name}]"));
            Dictionary<string, IReadOnlyList<string>> imageToTexts;
            if (root.TryGetProperty("img2txts", out var i2t) && i2t.ValueKind == JsonValueKind.Object)
                imageToTexts = i2t.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ValueKind == JsonValueKind.Array
                    ? (IReadOnlyList<string>)p.Value.EnumerateArray().Select(e => Id(e, $"{path}: img2txts[{p.Name}]")).ToList()
                    : throw new InvalidDataException($"{path}: img2txts[{p.Name}] must be an array of caption ids"));
            else
                imageToTexts = textToImage.GroupBy(p => p.Value).ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Select(p => p.Key).ToList());
            return new RetrievalMapping(textIds, imageIds, textToImage, imageToTexts);
        }
    }

    static string Id(JsonElement e, string where) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString()!,
        JsonValueKind.Number => e.GetRawText(),
        _ => throw new InvalidDataException($"{where}: an id must be a string or a number, found {e.GetRawText()}"),
    };
}

/// <summary>Recall at 1, 5 and 10 in both directions, as fractions.</summary>
public sealed record RetrievalRecall(double TxtR1, double TxtR5, double TxtR10, double ImgR1, double ImgR5, double ImgR10)
{
    /// <summary>Mean of the six recalls (a fraction, as UNITER's r_mean).</summary>
    public double RMean => (TxtR1 + TxtR5 + TxtR10 + ImgR1 + ImgR5 + ImgR10) / 6;
    /// <summary>RSUM as papers report it: the six recalls in percent, summed (0 to 600).</summary>
    public double RSum => 100 * (TxtR1 + TxtR5 + TxtR10 + ImgR1 + ImgR5 + ImgR10);
    public double TxtRMean => (TxtR1 + TxtR5 + TxtR10) / 3;
    public double ImgRMean => (ImgR1 + ImgR5 + ImgR10) / 3;
}

/// <summary>
/// Image-text retrieval recall by the textbook definition, from a [captions x images] score matrix.
/// Text retrieval (image to text): for each image, rank all captions; a hit at K when any of the image's captions
/// is among the first K. Image retrieval (text to image): for each caption, rank all images; a hit at K when its
/// image is among the first K. Equal scores rank by index (the earlier row or column first).
/// UNITER's utils/itm_eval.py over-counts image retrieval (it tests rank &lt; K on both columns of nonzero()); that is
/// a bug of the script, not reproduced here.
/// </summary>
public static class RetrievalMetrics
{
    public static RetrievalRecall Compute(Tensor scores, RetrievalMapping mapping)
    {
        if (scores.dim() != 2) throw new ArgumentException($"the score matrix must be 2-D [captions, images], got shape [{string.Join(", ", scores.shape)}]");
        int captions = (int)scores.shape[0], images = (int)scores.shape[1];
        using var cpu = scores.detach().to(ScalarType.Float32, CPU).contiguous();
        return Compute(cpu.data<float>().ToArray(), captions, images, mapping);
    }

    /// <summary>Reads the <c>score_matrix</c> tensor of a safetensors file and the mapping JSON, as the fixture stores them.</summary>
    public static RetrievalRecall ComputeFiles(string scoresPath, string mappingPath, string tensorName = "score_matrix")
    {
        var mapping = RetrievalMapping.Load(mappingPath);
        using var reader = new SafetensorsReader(scoresPath);
        if (!reader.Entries.Any(e => e.Name == tensorName))
            throw new InvalidDataException($"{scoresPath}: no tensor \"{tensorName}\" (found: {string.Join(", ", reader.Entries.Select(e => e.Name))})");
        using var scores = reader.Read(tensorName);
        try
        {
            return Compute(scores, mapping);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{scoresPath} with {mappingPath}: {e.Message}", e);
        }
    }

    /// <summary><paramref name="scores"/> is row-major [captions, images].</summary>
    public static RetrievalRecall Compute(ReadOnlySpan<float> scores, int captions, int images, RetrievalMapping mapping)
    {
        var (captionImage, imageCaptions) = Resolve(mapping, captions, images);
        if (scores.Length != (long)captions * images) throw new ArgumentException($"score matrix has {scores.Length} values, expected {captions} x {images}");
        foreach (var s in scores)
            if (float.IsNaN(s)) throw new ArgumentException("the score matrix contains NaN");

        int[] ks = { 1, 5, 10 };
        var imageHits = new int[ks.Length];
        for (int row = 0; row < captions; row++)
        {
            var line = scores.Slice(row * images, images);
            int rank = RankInRow(line, captionImage[row]);
            for (int k = 0; k < ks.Length; k++) if (rank < ks[k]) imageHits[k]++;
        }

        var textHits = new int[ks.Length];
        for (int column = 0; column < images; column++)
        {
            int best = int.MaxValue;
            foreach (int caption in imageCaptions[column]) best = Math.Min(best, RankInColumn(scores, captions, images, column, caption));
            for (int k = 0; k < ks.Length; k++) if (best < ks[k]) textHits[k]++;
        }

        double Img(int k) => captions == 0 ? 0 : (double)imageHits[k] / captions;
        double Txt(int k) => images == 0 ? 0 : (double)textHits[k] / images;
        return new RetrievalRecall(Txt(0), Txt(1), Txt(2), Img(0), Img(1), Img(2));
    }

    /// <summary>0-based position of <paramref name="target"/> when the row is sorted by descending score (ties by index).</summary>
    static int RankInRow(ReadOnlySpan<float> row, int target)
    {
        float value = row[target];
        int rank = 0;
        for (int i = 0; i < row.Length; i++)
            if (row[i] > value || row[i] == value && i < target) rank++;
        return rank;
    }

    static int RankInColumn(ReadOnlySpan<float> scores, int captions, int images, int column, int target)
    {
        float value = scores[target * images + column];
        int rank = 0;
        for (int j = 0; j < captions; j++)
        {
            float s = scores[j * images + column];
            if (s > value || s == value && j < target) rank++;
        }
        return rank;
    }

    static (int[] CaptionImage, int[][] ImageCaptions) Resolve(RetrievalMapping mapping, int captions, int images)
    {
        if (mapping.TextIds.Count != captions || mapping.ImageIds.Count != images)
            throw new ArgumentException($"the score matrix is [{captions} captions, {images} images] but the mapping lists {mapping.TextIds.Count} txt_ids and {mapping.ImageIds.Count} img_ids");
        var textIndex = Index(mapping.TextIds, "txt_ids");
        var imageIndex = Index(mapping.ImageIds, "img_ids");
        var captionImage = new int[captions];
        for (int j = 0; j < captions; j++)
        {
            var id = mapping.TextIds[j];
            if (!mapping.TextToImage.TryGetValue(id, out var imageId)) throw new ArgumentException($"txt2img has no entry for caption '{id}'");
            if (!imageIndex.TryGetValue(imageId, out captionImage[j])) throw new ArgumentException($"txt2img['{id}'] = '{imageId}' is not in img_ids");
        }
        var imageCaptions = new int[images][];
        for (int i = 0; i < images; i++)
        {
            var id = mapping.ImageIds[i];
            if (!mapping.ImageToTexts.TryGetValue(id, out var texts) || texts.Count == 0) throw new ArgumentException($"img2txts has no captions for image '{id}'");
            imageCaptions[i] = texts.Select(t => textIndex.TryGetValue(t, out int j) ? j : throw new ArgumentException($"img2txts['{id}'] lists '{t}', which is not in txt_ids")).ToArray();
        }
        return (captionImage, imageCaptions);
    }

    static Dictionary<string, int> Index(IReadOnlyList<string> ids, string what)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < ids.Count; i++)
            if (!index.TryAdd(ids[i], i)) throw new ArgumentException($"{what} lists '{ids[i]}' twice");
        return index;
    }
}
