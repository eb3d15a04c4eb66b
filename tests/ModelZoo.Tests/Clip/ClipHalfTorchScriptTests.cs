using System.Text;
using ModelZoo.Models.Catalog;
using ModelZoo.Models.Clip;
using ModelZoo.Tests.Support;
using ModelZoo.Tests.Weights;
using ModelZoo.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Clip;

/// <summary>
/// The openai/CLIP release files hold half-precision weights (HalfStorage) inside a TorchScript archive. The archive
/// here is written by the test itself (pickle opcodes and zip members, as torch.jit.save lays them out: a tree of
/// __torch__ module objects whose attribute dicts hold the tensors, plus constants.pkl and code/).
/// </summary>
public class ClipHalfTorchScriptTests
{
    sealed class Node
    {
        public readonly SortedDictionary<string, Node> Children = new(StringComparer.Ordinal);
        public readonly List<(string Name, Tensor Value)> Tensors = new();
    }

    static long[] Strides(long[] shape)
    {
        var stride = new long[shape.Length];
        long acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { stride[i] = acc; acc *= shape[i]; }
        return stride;
    }

    /// <summary>A TorchScript-shaped archive of <paramref name="tensors"/> (dotted names become the module tree).</summary>
    static byte[] TorchScriptArchive(IReadOnlyDictionary<string, Tensor> tensors, string archive)
    {
        var root = new Node();
        foreach (var (name, value) in tensors)
        {
            var parts = name.Split('.');
            var node = root;
            foreach (var part in parts[..^1])
            {
                if (!node.Children.TryGetValue(part, out var child)) node.Children[part] = child = new Node();
                node = child;
            }
            node.Tensors.Add((parts[^1], value));
        }
        var storages = new Dictionary<string, byte[]>();
        var w = new PickleWriter().Proto(2);
        int mangle = 0;
        void Module(Node node, string className)
        {
            w.Global(className.Length == 0 ? "__torch__" : $"__torch__.___torch_mangle_{mangle++}", className.Length == 0 ? "Root" : "Holder");
            w.EmptyTuple().NewObj().EmptyDict().Mark();
            w.Str("training").Bool(false);
            foreach (var (name, value) in node.Tensors)
            {
                string key = storages.Count.ToString();
                using var contiguous = value.contiguous();
                storages[key] = contiguous.bytes.ToArray();
                w.Str(name).Tensor(key, TorchSaveBuilder.StorageType(value.dtype), value.numel(), 0, value.shape, Strides(value.shape));
            }
            foreach (var (name, child) in node.Children)
            {
                w.Str(name);
                Module(child, name);
            }
            w.SetItems().Build();
        }
        Module(root, "");
        var pickle = w.Stop().ToArray();

        var members = new List<(string, byte[])>
        {
            (archive + "/data.pkl", pickle),
            (archive + "/code/__torch__.py", Encoding.UTF8.GetBytes("class Root(Module):\n  __parameters__ = []\n")),
            (archive + "/constants.pkl", new PickleWriter().Proto(2).EmptyTuple().Stop().ToArray()),
        };
        members.AddRange(storages.Select(kv => (archive + "/data/" + kv.Key, kv.Value)));
        members.Add((archive + "/version", "3\n"u8.ToArray()));
        return TorchSaveBuilder.ZipFile(members);
    }

    [Test]
    public void AHalfPrecisionTorchScriptReleaseLoadsIntoFloat32ClipTiny()
    {
        manual_seed(21);
        using var original = ModelCatalog.Default.Create<ClipModel>("clip-tiny");
        var config = original.Config;
        var half = original.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float16));
        // The release files' int entries beside the weights (not model weights: reported as ignored).
        half["input_resolution"] = tensor((long)config.ImageResolution);
        half["context_length"] = tensor((long)config.ContextLength);
        half["vocab_size"] = tensor((long)config.VocabSize);

        string directory = TestPaths.TempDirectory();
        try
        {
            string path = Path.Combine(directory, "ViT-tiny.pt");
            File.WriteAllBytes(path, TorchScriptArchive(half, "ViT-tiny"));
            using (var reader = Checkpoint.Open(path))
            {
                Assert.That(reader.Format, Is.EqualTo(TorchPickleReader.TorchScriptFormat));
                var entry = reader.Entries.Single(e => e.Name == "visual.transformer.resblocks.0.attn.in_proj_weight");
                Assert.That(entry.Dtype, Is.EqualTo("F16"), "the archive holds HalfStorage");
            }

            LoadReport? report = null;
            using var loaded = ModelCatalog.Default.Create<ClipModel>("clip-tiny", new ModelCreateOptions { WeightsPath = path, OnLoadReport = r => report = r });
            Assert.That(report, Is.Not.Null);
            Assert.That(report!.Ignored, Is.EquivalentTo(new[] { "input_resolution", "context_length", "vocab_size" }));
            var parameters = loaded.state_dict();
            foreach (var (name, value) in original.state_dict())
            {
                Assert.That(parameters[name].dtype, Is.EqualTo(value.dtype), $"{name} stays {value.dtype}");
                using var expected = half[name].to(value.dtype);
                Assert.That(parameters[name].equal(expected).all().item<bool>(), Is.True, $"{name} holds the half-precision values widened");
            }

            // The model runs in float32 and agrees with the float32 original to half-precision rounding.
            loaded.eval();
            original.eval();
            using var _ = no_grad();
            var images = randn(2, 3, config.ImageResolution, config.ImageResolution);
            var text = ClipModelTests.Text(3, config);
            var a = loaded.forward(images, text).LogitsPerImage;
            var b = original.forward(images, text).LogitsPerImage;
            Assert.That(a.dtype, Is.EqualTo(ScalarType.Float32));
            double difference = (a - b).abs().max().item<float>();
            Assert.That(difference, Is.LessThan(0.05 * b.abs().max().item<float>() + 1e-3), "half-precision rounding of the weights only");
        }
        finally { Directory.Delete(directory, true); }
    }
}
