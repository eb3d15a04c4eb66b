using System.Text.Json;
using ModelZoo.Models.Catalog;
using ModelZoo.Tests.Support;
using NUnit.Framework;

namespace ModelZoo.Tests.OneStream;

/// <summary>
/// Each preset's exact parameter count against the arithmetic of the published configuration (the original
/// classes' modules, layer by layer), and `modelzoo info --json` against the model Create returns.
/// </summary>
public class ParameterCountTests
{
    static long Linear(long input, long output, bool bias = true) => input * output + (bias ? output : 0);
    static long LayerNorm(long width) => 2 * width;
    static long Embedding(long rows, long width) => rows * width;

    /// <summary>Post-norm BERT layer: q, k, v, attention output dense + LayerNorm, intermediate, output dense + LayerNorm.</summary>
    static long BertLayer(long h, long intermediate) =>
        4 * Linear(h, h) + LayerNorm(h) + Linear(h, intermediate) + Linear(intermediate, h) + LayerNorm(h);

    /// <summary>Word, position and token type tables, LayerNorm.</summary>
    static long BertEmbeddings(long vocab, long positions, long types, long h) =>
        Embedding(vocab, h) + Embedding(positions, h) + Embedding(types, h) + LayerNorm(h);

    /// <summary>timm ViT block: norm1, fused qkv, proj, norm2, fc1, fc2.</summary>
    static long VitBlock(long h, long mlp) => LayerNorm(h) + Linear(h, 3 * h) + Linear(h, h) + LayerNorm(h) + Linear(h, mlp) + Linear(mlp, h);

    static long Count(string name) => ModelCatalog.Default.Describe(name).Parameters;

    [Test]
    public void UniterPresetsMatchUniterConfig()
    {
        // uniter-base.json / uniter-large.json: vocab 28996 (bert-base-cased), 512 positions, 2 token types; img_dim 2048.
        long Backbone(long h, long layers, long intermediate, long vocab = 28996) =>
            BertEmbeddings(vocab, 512, 2, h)
            + Linear(2048, h) + LayerNorm(h) + LayerNorm(h) + Linear(7, h) + Embedding(2, 2048) + LayerNorm(h) // img_embeddings
            + layers * BertLayer(h, intermediate)
            + Linear(h, h);                                                                                    // pooler
        long Vqa(long h) => Linear(h, 2 * h) + LayerNorm(2 * h) + Linear(2 * h, 3129);

        foreach (var (size, h, layers, intermediate) in new[] { ("base", 768L, 12L, 3072L), ("large", 1024L, 24L, 4096L) })
        {
            long backbone = Backbone(h, layers, intermediate);
            Assert.That(Count($"uniter-{size}"), Is.EqualTo(backbone), size);
            Assert.That(Count($"uniter-{size}-vqa"), Is.EqualTo(backbone + Vqa(h)), size + " vqa");
            Assert.That(Count($"uniter-{size}-itm"), Is.EqualTo(backbone + Linear(h, 2)), size + " itm");
            Assert.That(Count($"uniter-{size}-retrieval"), Is.EqualTo(backbone + Linear(h, 2) + Linear(h, 1)), size + " retrieval");
        }
        Assert.That(Count("uniter-tiny-vqa"), Is.EqualTo(Backbone(128, 2, 512, vocab: 30522) + Vqa(128)));
    }

    [Test]
    public void ViltPresetsMatchViltConfig()
    {
        // ViltConfig(image_size=384, patch_size=32): 12x12 patch grid, max_position_embeddings 40, vocab 30522.
        long Backbone(long h, long layers, long mlp, long modalityTypes, long grid, long patch) =>
            BertEmbeddings(30522, 40, 2, h)                       // text_embeddings
            + Embedding(modalityTypes, h)                         // token_type_embeddings (modality)
            + h                                                   // cls_token
            + (grid * grid + 1) * h                               // pos_embed
            + 3 * patch * patch * h + h                           // patch_embed.proj (Conv2d)
            + layers * VitBlock(h, mlp) + LayerNorm(h)            // blocks, norm
            + Linear(h, h);                                       // pooler
        long h = 768;
        long b32 = Backbone(h, 12, 4 * h, 2, 384 / 32, 32);
        long Classifier(long input, long outputs) => Linear(input, 2 * h) + LayerNorm(2 * h) + Linear(2 * h, outputs);
        long mlm = Linear(h, h) + LayerNorm(h) + Linear(h, 30522, bias: false) + 30522;

        Assert.That(Count("vilt-b32-mlm"), Is.EqualTo(b32 + mlm));
        Assert.That(Count("vilt-b32-mlm-itm"), Is.EqualTo(b32 + mlm + Linear(h, 2)));
        Assert.That(Count("vilt-b32-vqa"), Is.EqualTo(b32 + Classifier(h, 3129)));
        Assert.That(Count("vilt-b32-nlvr2"), Is.EqualTo(Backbone(h, 12, 4 * h, 3, 12, 32) + Classifier(2 * h, 2)));
        Assert.That(Count("vilt-b32-coco-retrieval"), Is.EqualTo(b32 + Linear(h, 1)));
        Assert.That(Count("vilt-b32-f30k-retrieval"), Is.EqualTo(b32 + Linear(h, 1)));
        Assert.That(Count("vilt-tiny"), Is.EqualTo(Backbone(64, 2, 128, 2, 2, 32) + Linear(64, 128) + LayerNorm(128) + Linear(128, 3129)));
    }

    [Test]
    public void VisualBertPresetsMatchVisualBertConfig()
    {
        // VisualBertConfig defaults (bert-base-uncased: vocab 30522, 512 positions, 2 types) with each checkpoint's visual_embedding_dim.
        long Backbone(long visualDim, long h = 768, long layers = 12, long intermediate = 3072) =>
            BertEmbeddings(30522, 512, 2, h)
            + Embedding(2, h) + Embedding(512, h) + Linear(visualDim, h) // visual token type, visual position, visual projection
            + layers * BertLayer(h, intermediate)
            + Linear(h, h);                                              // pooler
        long h = 768;
        long preTraining = Linear(h, h) + LayerNorm(h) + 30522 + Linear(h, 2); // transform, bias (decoder tied to the word embeddings), seq_relationship
        foreach (var (task, dim) in new[] { ("vqa", 2048L), ("nlvr2", 1024L), ("vcr", 512L) })
        {
            Assert.That(Count($"visualbert-{task}-coco-pre"), Is.EqualTo(Backbone(dim) + preTraining), task);
            Assert.That(Count($"visualbert-{task}-pre"), Is.EqualTo(Backbone(dim) + preTraining), task);
        }
        Assert.That(Count("visualbert-vqa"), Is.EqualTo(Backbone(2048) + Linear(h, 3129)));
        Assert.That(Count("visualbert-nlvr2"), Is.EqualTo(Backbone(1024) + Linear(h, 2)));
        Assert.That(Count("visualbert-vcr"), Is.EqualTo(Backbone(512) + Linear(h, 1)));
        Assert.That(Count("visualbert-tiny"), Is.EqualTo(Backbone(2048, 128, 2, 512) + Linear(128, 3129)));
    }

    [TestCase("uniter-tiny-vqa")]
    [TestCase("vilt-tiny")]
    [TestCase("visualbert-tiny")]
    public void InfoJsonReportsTheCountOfTheCreatedModel(string name)
    {
        var (code, output, error) = CliRunner.Run("info", name, "--json");
        Assert.That(code, Is.EqualTo(0), error);
        using var json = JsonDocument.Parse(output);
        using var model = ModelCatalog.Default.Create(name);
        Assert.That(json.RootElement.GetProperty("parameters").GetInt64(), Is.EqualTo(model.parameters().Sum(p => p.numel())));
        Assert.That(json.RootElement.GetProperty("heads").GetArrayLength(), Is.GreaterThan(0));
    }
}
