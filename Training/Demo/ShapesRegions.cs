using ModelZoo.Training.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Training.Demo;

/// <summary>
/// Detector regions for the shapes data set, so that the region models (UNITER, VisualBERT, ViLBERT, LXMERT) run on
/// it: an oracle detector that knows where it drew each shape. Boxes: the whole image first, then each shape's
/// bounding square, left to right (pixels). Features: each box's pixels resized to 8x8, scaled to [-1, 1] and mapped
/// to <see cref="FeatureSize"/> dimensions by one fixed random projection (the same for every image and seed), the
/// width of bottom-up Faster R-CNN features.
/// </summary>
public static class ShapesRegions
{
    public const int FeatureSize = 2048;
    const int CropSide = 8;
    static readonly object ProjectionLock = new();
    static readonly Dictionary<int, Tensor> Projections = new();

    /// <summary>Features [1 + shapes, featureSize] and boxes [1 + shapes, 4] (x1, y1, x2, y2 in pixels) of a scene.</summary>
    public static (Tensor Features, Tensor Boxes) Detect(Scene scene, int featureSize = FeatureSize)
    {
        using var scope = NewDisposeScope();
        int height = (int)scene.Pixels.shape[1], width = (int)scene.Pixels.shape[2];
        var boxes = new List<float[]> { new float[] { 0, 0, width, height } };
        foreach (var shape in scene.Shapes)
        {
            float r = shape.Size / 2;
            float x1 = MathF.Floor(Math.Max(0, shape.X - r)), y1 = MathF.Floor(Math.Max(0, shape.Y - r));
            float x2 = MathF.Max(x1 + 1, MathF.Ceiling(Math.Min(width, shape.X + r))), y2 = MathF.Max(y1 + 1, MathF.Ceiling(Math.Min(height, shape.Y + r)));
            boxes.Add(new[] { x1, y1, x2, y2 });
        }
        var crops = boxes.Select(b =>
        {
            var crop = scene.Pixels.narrow(1, (long)b[1], (long)(b[3] - b[1])).narrow(2, (long)b[0], (long)(b[2] - b[0])).unsqueeze(0);
            return nn.functional.interpolate(crop, new long[] { CropSide, CropSide }, mode: InterpolationMode.Bilinear, align_corners: false).flatten() * 2 - 1;
        }).ToArray();
        var features = stack(crops).matmul(Projection(featureSize));
        var boxTensor = tensor(boxes.SelectMany(b => b).ToArray(), new long[] { boxes.Count, 4 });
        return (features.MoveToOuterDisposeScope(), boxTensor.MoveToOuterDisposeScope());
    }

    static Tensor Projection(int featureSize)
    {
        lock (ProjectionLock)
        {
            if (!Projections.TryGetValue(featureSize, out var projection))
            {
                int inputs = 3 * CropSide * CropSide;
                using var _ = NewDisposeScope();
                using var generator = new Generator(0x5EED);
                projection = (randn(new long[] { inputs, featureSize }, generator: generator) / Math.Sqrt(inputs)).DetachFromDisposeScope();
                Projections[featureSize] = projection;
            }
            return projection;
        }
    }

    /// <summary>Writes one region file per scene: <c>{image_id}.safetensors</c> (features stored as float16).</summary>
    public static void Write(string directory, IEnumerable<Scene> scenes)
    {
        Directory.CreateDirectory(directory);
        foreach (var scene in scenes)
        {
            using var scope = NewDisposeScope();
            var (features, boxes) = Detect(scene);
            int height = (int)scene.Pixels.shape[1], width = (int)scene.Pixels.shape[2];
            using var size = tensor(new long[] { width, height });
            Weights.SafetensorsWriter.Write(Path.Combine(directory, $"{scene.ImageId}.safetensors"),
                new Dictionary<string, Tensor> { ["features"] = features.to(ScalarType.Float16), ["boxes"] = boxes, ["image_size"] = size });
        }
    }
}
