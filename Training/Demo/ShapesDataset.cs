using System.Text.Json;
using ModelZoo.Training.Tasks;
using ModelZoo.Weights;
using SkiaSharp;
using static TorchSharp.torch;

namespace ModelZoo.Training.Demo;

/// <summary>
/// Writes the shapes data set in the formats real data sets use, so `modelzoo finetune` and `modelzoo eval` run on
/// it: PNG images, region files of an oracle detector (<see cref="ShapesRegions"/>: regions/{image_id}.safetensors, for
/// the region models), VQA v2 questions/annotations JSON, a Karpathy-layout caption file, and one manifest per task and
/// split (vqa-train.json, vqa-val.json, retrieval-train.json, retrieval-val.json) naming both the images and the regions.
/// </summary>
public static class ShapesDataset
{
    public static IReadOnlyList<string> Write(string directory, IReadOnlyList<Scene> train, IReadOnlyList<Scene> validation)
    {
        var images = Path.Combine(directory, "images");
        Directory.CreateDirectory(images);
        foreach (var scene in train.Concat(validation)) WritePng(Path.Combine(images, $"{scene.ImageId}.png"), scene.Pixels);
        var regions = Path.Combine(directory, "regions");
        ShapesRegions.Write(regions, train.Concat(validation));

        var written = new List<string>();
        foreach (var (split, scenes) in new[] { ("train", train), ("val", validation) })
        {
            string questions = Path.Combine(directory, $"vqa_{split}_questions.json"), annotations = Path.Combine(directory, $"vqa_{split}_annotations.json");
            WriteJson(questions, new Dictionary<string, object>
            {
                ["info"] = Info, ["license"] = License, ["task_type"] = "Open-Ended", ["data_type"] = "shapes", ["data_subtype"] = split,
                ["questions"] = scenes.SelectMany(s => s.Questions).Select(q => new { image_id = q.ImageId, question = q.Question, question_id = q.QuestionId }),
            });
            WriteJson(annotations, new Dictionary<string, object>
            {
                ["info"] = Info, ["license"] = License, ["data_type"] = "shapes", ["data_subtype"] = split,
                ["annotations"] = scenes.SelectMany(s => s.Questions).Select(q => new
                {
                    question_type = q.QuestionType, multiple_choice_answer = q.MultipleChoiceAnswer, image_id = q.ImageId, answer_type = q.AnswerType,
                    question_id = q.QuestionId,
                    answers = q.Answers.Select((a, j) => new { answer = a, answer_confidence = "yes", answer_id = j + 1 }),
                }),
            });
            var manifest = new TaskManifest(Path.Combine(directory, $"vqa-{split}.json"), "vqa", questions, annotations, null, Array.Empty<string>(), images, "{image_id}.png", regions);
            manifest.Write();
            written.Add(manifest.Path);
        }

        string captions = Path.Combine(directory, "captions.json");
        WriteJson(captions, new Dictionary<string, object>
        {
            ["dataset"] = "shapes",
            ["images"] = train.Select(s => (s, "train")).Concat(validation.Select(s => (s, "val"))).Select(x => new
            {
                filename = $"{x.s.ImageId}.png", imgid = x.s.ImageId, split = x.Item2,
                sentences = x.s.Captions.Select(c => new { raw = c, tokens = c.Split(' ', ',', ':').Where(t => t.Length > 0) }),
            }),
        });
        foreach (var split in new[] { "train", "val" })
        {
            var manifest = new TaskManifest(Path.Combine(directory, $"retrieval-{split}.json"), "retrieval", null, null, captions, new[] { split }, images, "", regions);
            manifest.Write();
            written.Add(manifest.Path);
        }
        return written;
    }

    static readonly object Info = new { description = "ModelZoo demo shapes data set (generated)", version = "1.0" };
    // The official VQA files carry a license object; the generated data set is public domain (CC0), no link needed.
    static readonly object License = new { name = "CC0 1.0 (public domain dedication)", url = "" };

    static void WriteJson(string path, object value) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(value));

    static void WritePng(string path, Tensor pixels)
    {
        int height = (int)pixels.shape[1], width = (int)pixels.shape[2];
        var values = (pixels.clamp(0, 1) * 255).round().to(ScalarType.Byte).permute(1, 2, 0).contiguous().data<byte>().ToArray();
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var rgba = new byte[width * height * 4];
        for (int i = 0; i < width * height; i++)
        {
            rgba[4 * i] = values[3 * i];
            rgba[4 * i + 1] = values[3 * i + 1];
            rgba[4 * i + 2] = values[3 * i + 2];
            rgba[4 * i + 3] = 255;
        }
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var image = SKImage.FromBitmap(bitmap);
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.Write(path, stream => png.SaveTo(stream));
    }
}
