using ModelZoo.Models.OneStream;
using ModelZoo.Processing.Regions;
using ModelZoo.Tests.Support;
using NUnit.Framework;

namespace ModelZoo.Tests.TwoStream;

/// <summary>The C# example of docs/two-stream.md, line for line, through the catalog with the tiny presets and files written here.</summary>
public class DocExampleTests : SingleThreadedTests
{
    [TestCase("lxmert-tiny-vqa", 41)]
    [TestCase("vilbert-tiny-multitask", 42)]
    public void TheVqaExampleRuns(string preset, int seed)
    {
        var dir = TestPaths.TempDirectory();
        try
        {
            var weights = TwoStreamVqaCommandTests.SaveCheckpoint(dir, preset, seed);
            var answers = TwoStreamVqaCommandTests.SaveAnswers(dir, 3129);
            var tsv = Path.Combine(dir, "val2014_obj36.tsv");
            var image = TwoStreamVqaCommandTests.Regions("262148", 10, seed);
            File.WriteAllLines(tsv, new[] { RegionFeatureTsv.Format(TwoStreamVqaCommandTests.Regions("57870", 6, seed + 1)), RegionFeatureTsv.Format(image) });
            var printed = new List<string>();

            // docs/two-stream.md, "VQA on region features (C#)":
            using var vqa = VqaPipeline.Load(preset, weights, answers);
            using var features = RegionFeatureTsvIndex.Build(tsv);
            var regions = DetectorRegions.From(features.Read("262148"));
            foreach (var a in vqa.Answer(regions, "What is the man holding?"))
                printed.Add($"{a.Answer,-12} {a.Score:0.000}");

            Assert.That(printed, Has.Count.EqualTo(5));
            Assert.That(printed, Has.All.Match(@"^a\d+ +0\.\d{3}$"));
            // The regions read back from the TSV are the ones written, so the answers equal those of the regions given directly.
            var direct = vqa.Answer(DetectorRegions.From(image), "What is the man holding?");
            Assert.That(printed, Is.EqualTo(direct.Select(a => $"{a.Answer,-12} {a.Score:0.000}")));
            Assert.That(vqa.EncodeQuestion("What is the man holding?"), Is.EqualTo(new long[] { 101, 2054, 2003, 1996, 2158, 3173, 1029, 102 }));
        }
        finally { Directory.Delete(dir, true); }
    }
}
