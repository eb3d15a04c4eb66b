using ModelZoo.Evaluation.Data;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Training.Demo;

/// <summary>One drawn object.</summary>
public sealed record Shape(string Kind, string Color, float X, float Y, float Size);

/// <summary>One scene: 1 to 3 shapes left to right, the pixels, its questions and captions.</summary>
public sealed record Scene(long ImageId, IReadOnlyList<Shape> Shapes, Tensor Pixels, IReadOnlyList<VqaExample> Questions, IReadOnlyList<string> Captions);

/// <summary>
/// The demo's own multimodal data set: coloured shapes drawn with SkiaSharp on a small canvas, with VQA questions
/// (colour, shape, count, yes/no, relative position: "what color is the shape left of the square?"), ten human
/// answers each (a few annotators write "Red", "red." or "two"; a few are wrong, as in VQA), and five captions per
/// image. Everything follows from the seed.
/// </summary>
public sealed class ShapesWorld
{
    public static readonly string[] Kinds = { "circle", "square", "triangle" };
    public static readonly string[] Colors = { "red", "green", "blue", "yellow" };
    static readonly Dictionary<string, SKColor> Paint = new()
    {
        ["red"] = new SKColor(220, 40, 40), ["green"] = new SKColor(40, 170, 60), ["blue"] = new SKColor(40, 80, 220), ["yellow"] = new SKColor(230, 200, 30),
    };
    static readonly string[] NumberWords = { "zero", "one", "two", "three" };

    public int ImageSize { get; }

    public ShapesWorld(int imageSize = 48) => ImageSize = imageSize;

    /// <summary><paramref name="count"/> scenes; image ids start at <paramref name="firstId"/>.</summary>
    public List<Scene> Generate(int count, long seed, long firstId = 0, int questionsPerImage = 3)
    {
        var random = SeededRandom.For(seed, 0x5A4E);
        var scenes = new List<Scene>(count);
        for (int i = 0; i < count; i++)
        {
            long id = firstId + i;
            var shapes = Layout(random);
            var pixels = Draw(shapes, random);
            scenes.Add(new Scene(id, shapes, pixels, Questions(id, shapes, random, questionsPerImage), Captions(shapes, random)));
        }
        return scenes;
    }

    List<Shape> Layout(SeededRandom random)
    {
        // Up to three horizontal slots, so "left of" is never ambiguous.
        int n = 1 + random.NextInt(3);
        var slots = new List<int> { 0, 1, 2 };
        random.Shuffle(slots);
        float slotWidth = ImageSize / 3f;
        var shapes = slots.Take(n).Order().Select(slot =>
        {
            float size = ImageSize * (0.2f + 0.06f * (float)random.NextDouble());
            float x = slotWidth * (slot + 0.5f) + (float)(random.NextDouble() - 0.5) * (slotWidth - size) * 0.6f;
            float y = size / 2 + 2 + (float)random.NextDouble() * (ImageSize - size - 4);
            return new Shape(Kinds[random.NextInt(Kinds.Length)], Colors[random.NextInt(Colors.Length)], x, y, size);
        }).ToList();
        return shapes;
    }

    Tensor Draw(IReadOnlyList<Shape> shapes, SeededRandom random)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(ImageSize, ImageSize, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            byte shade = (byte)(225 + random.NextInt(30));
            canvas.Clear(new SKColor(shade, shade, shade));
            foreach (var s in shapes)
            {
                using var paint = new SKPaint { Color = Paint[s.Color], IsAntialias = true, Style = SKPaintStyle.Fill };
                float r = s.Size / 2;
                switch (s.Kind)
                {
                    case "circle": canvas.DrawCircle(s.X, s.Y, r, paint); break;
                    case "square": canvas.DrawRect(s.X - r, s.Y - r, s.Size, s.Size, paint); break;
                    default:
                        using (var path = new SKPath())
                        {
                            path.MoveTo(s.X, s.Y - r);
                            path.LineTo(s.X + r, s.Y + r);
                            path.LineTo(s.X - r, s.Y + r);
                            path.Close();
                            canvas.DrawPath(path, paint);
                        }
                        break;
                }
            }
        }
        return Tasks.ImageFiles.FromBitmap(bitmap);
    }

    static List<VqaExample> Questions(long imageId, IReadOnlyList<Shape> shapes, SeededRandom random, int wanted)
    {
        var candidates = new List<(string Question, string Answer, string QuestionType, string AnswerType)>();
        bool UniqueKind(string k) => shapes.Count(s => s.Kind == k) == 1;
        bool UniqueColor(string c) => shapes.Count(s => s.Color == c) == 1;

        foreach (var s in shapes)
        {
            if (UniqueKind(s.Kind)) candidates.Add(($"what color is the {s.Kind}?", s.Color, "what color is the", "other"));
            if (UniqueColor(s.Color)) candidates.Add(($"what shape is the {s.Color} one?", s.Kind, "what shape is the", "other"));
        }
        for (int i = 0; i < shapes.Count; i++)
        {
            if (!UniqueKind(shapes[i].Kind)) continue;
            if (i > 0) candidates.Add(($"what color is the shape left of the {shapes[i].Kind}?", shapes[i - 1].Color, "what color is the", "other"));
            if (i < shapes.Count - 1) candidates.Add(($"what color is the shape right of the {shapes[i].Kind}?", shapes[i + 1].Color, "what color is the", "other"));
        }
        candidates.Add(("how many shapes are there?", shapes.Count.ToString(), "how many", "number"));
        string color = Colors[random.NextInt(Colors.Length)];
        candidates.Add(($"how many {color} shapes are there?", shapes.Count(s => s.Color == color).ToString(), "how many", "number"));
        // Yes/no: half about an object that is there, half about one that is not.
        var present = shapes[random.NextInt(shapes.Count)];
        var asked = random.NextInt(2) == 0 ? (present.Color, present.Kind) : (Colors[random.NextInt(Colors.Length)], Kinds[random.NextInt(Kinds.Length)]);
        bool there = shapes.Any(s => s.Color == asked.Item1 && s.Kind == asked.Item2);
        candidates.Add(($"is there a {asked.Item1} {asked.Item2}?", there ? "yes" : "no", "is there a", "yes/no"));

        random.Shuffle(candidates);
        // Relative-position questions first when there are any, so every split has them.
        var ordered = candidates.OrderBy(c => c.Question.Contains(" of the ") ? 0 : 1).ToList();
        return ordered.Take(wanted).Select((c, q) => new VqaExample(imageId * 10 + q, imageId, c.Question, HumanAnswers(c.Answer, random),
            c.QuestionType, c.AnswerType, c.Answer)).ToList();
    }

    /// <summary>Ten annotators: most write the answer, some vary its form, about one in twenty is wrong.</summary>
    static List<string> HumanAnswers(string answer, SeededRandom random)
    {
        var answers = new List<string>(10);
        for (int i = 0; i < 10; i++)
        {
            double roll = random.NextDouble();
            if (roll < 0.05) answers.Add(Wrong(answer, random));
            else if (roll < 0.12) answers.Add(char.ToUpperInvariant(answer[0]) + answer[1..]);
            else if (roll < 0.17) answers.Add(answer + ".");
            else if (roll < 0.22 && int.TryParse(answer, out int n) && n < NumberWords.Length) answers.Add(NumberWords[n]);
            else answers.Add(answer);
        }
        return answers;
    }

    static string Wrong(string answer, SeededRandom random)
    {
        string[] pool = Colors.Contains(answer) ? Colors : Kinds.Contains(answer) ? Kinds : answer is "yes" or "no" ? new[] { "yes", "no" } : new[] { "0", "1", "2", "3" };
        var others = pool.Where(p => p != answer).ToArray();
        return others[random.NextInt(others.Length)];
    }

    static List<string> Captions(IReadOnlyList<Shape> shapes, SeededRandom random)
    {
        string Name(Shape s) => $"{s.Color} {s.Kind}";
        string A(Shape s) => $"a {Name(s)}";
        var captions = new List<string>();
        string[] where = shapes.Count == 1 ? new[] { "in the middle" } : shapes.Count == 2 ? new[] { "on the left", "on the right" } : new[] { "on the left", "in the middle", "on the right" };
        switch (shapes.Count)
        {
            case 1:
                captions.Add(A(shapes[0]));
                captions.Add($"one {Name(shapes[0])} on a grey background");
                captions.Add($"a single {shapes[0].Kind} that is {shapes[0].Color}");
                captions.Add($"there is only a {Name(shapes[0])}");
                captions.Add($"a picture with one {shapes[0].Color} shape, a {shapes[0].Kind}");
                break;
            default:
                captions.Add(string.Join(" left of ", shapes.Select(A)));
                captions.Add("from left to right: " + string.Join(", ", shapes.Select(Name)));
                captions.Add($"{NumberWords[shapes.Count]} shapes, " + string.Join(" and ", shapes.Select(A)));
                var pick = random.NextInt(shapes.Count);
                captions.Add($"{A(shapes[pick])} {where[pick]} and {NumberWords[shapes.Count - 1]} other shape{(shapes.Count > 2 ? "s" : "")}");
                captions.Add(string.Join(" right of ", shapes.Reverse().Select(A)));
                break;
        }
        return captions;
    }
}
