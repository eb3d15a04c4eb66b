using ModelZoo.Evaluation.Data;
using ModelZoo.Evaluation.ZeroShot;
using ModelZoo.Models.Clip;
using static TorchSharp.torch;

namespace ModelZoo.Training.Tasks;

/// <summary>Per-class and overall result of zero-shot classification over a labelled image folder.</summary>
public sealed record ZeroShotFolderResult(TopKAccuracy Accuracy, IReadOnlyList<string> Classes, IReadOnlyList<string> Labels,
    IReadOnlyList<(string Image, int Label, int Predicted)> Predictions);

/// <summary>
/// CLIP zero-shot classification of a folder with one subfolder per class (root/CLASS/*.jpg): the class names (or
/// given label texts, in the folders' sorted order) go through the prompt templates, every image is scored against
/// every class, top-1 / top-5 accuracy. Images are processed in batches; memory does not grow with the folder.
/// </summary>
public static class ZeroShotEvaluation
{
    /// <summary>Folder names as label text: underscores and hyphens become spaces ("golden_retriever" → "golden retriever").</summary>
    public static string LabelText(string folder) => folder.Replace('_', ' ').Replace('-', ' ').Trim();

    public static ZeroShotFolderResult Run(ClipZeroShotClassifier classifier, string folder, IReadOnlyList<string>? labels = null,
        IReadOnlyList<string>? templates = null, int batchSize = 32, Action<int, int>? progress = null)
    {
        if (batchSize <= 0) throw new ArgumentException($"the batch size must be positive, not {batchSize}");
        var data = ImageFolder.Scan(folder);
        if (data.Classes.Count < 2)
            throw new InvalidDataException($"{folder}: zero-shot accuracy needs at least two class subfolders (root/CLASS/image), found {data.Classes.Count}");
        var labelTexts = labels ?? data.Classes.Select(LabelText).ToList();
        if (labelTexts.Count != data.Classes.Count)
            throw new ArgumentException($"{labelTexts.Count} labels for the {data.Classes.Count} class folders of {folder} ({string.Join(", ", data.Classes)})");

        using var classes = classifier.ClassEmbeddings(labelTexts, templates);
        var predictions = new List<(string, int, int)>();
        double top1 = 0, top5 = 0;   // hits, counted batch by batch: nothing per image is kept but the prediction
        for (int start = 0; start < data.Images.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var chunk = data.Images.Skip(start).Take(batchSize).ToList();
            using var images = classifier.ImageProcessor.ProcessFiles(chunk.Select(i => i.Path));
            var probabilities = classifier.Probabilities(images.Pixels, classes);
            var truth = chunk.Select(i => (long)i.Label).ToList();
            top1 += Math.Round(ZeroShotClassification.TopK(probabilities, truth, 1) * chunk.Count);
            top5 += Math.Round(ZeroShotClassification.TopK(probabilities, truth, 5) * chunk.Count);
            var predicted = probabilities.argmax(1).data<long>().ToArray();
            for (int i = 0; i < chunk.Count; i++) predictions.Add((chunk[i].Path, chunk[i].Label, (int)predicted[i]));
            progress?.Invoke(Math.Min(start + batchSize, data.Images.Count), data.Images.Count);
        }
        int count = data.Images.Count;
        return new ZeroShotFolderResult(new TopKAccuracy(top1 / count, top5 / count, count), data.Classes, labelTexts, predictions);
    }
}
