using System.Diagnostics;
using System.Text;
using ModelZoo.Build;
using ModelZoo.Tests.Support;
using NUnit.Framework;

namespace ModelZoo.Tests.Build;

public class ElfPatcherTests
{
    const string Missing = ElfVersionNeedPatcher.TorchSharpMissingVersion;

    /// <summary>A minimal ELF64 file: null, string table and SHT_GNU_verneed sections; one Verneed on libstdc++ with the given versions.</summary>
    static (byte[] Image, int[] FlagOffsets) SyntheticElf(params string[] versions)
    {
        var strings = new MemoryStream();
        strings.WriteByte(0);
        int fileName = (int)strings.Length;
        strings.Write(Encoding.ASCII.GetBytes("libstdc++.so.6\0"));
        var nameOffsets = new List<int>();
        foreach (var v in versions)
        {
            nameOffsets.Add((int)strings.Length);
            strings.Write(Encoding.ASCII.GetBytes(v + "\0"));
        }
        var image = new List<byte>(new byte[64]);
        int stringsOffset = image.Count;
        image.AddRange(strings.ToArray());
        while (image.Count % 8 != 0) image.Add(0);
        int verneedOffset = image.Count;
        var verneed = new byte[16 + 16 * versions.Length];
        BitConverter.GetBytes((ushort)1).CopyTo(verneed, 0);
        BitConverter.GetBytes((ushort)versions.Length).CopyTo(verneed, 2);
        BitConverter.GetBytes(fileName).CopyTo(verneed, 4);
        BitConverter.GetBytes(16).CopyTo(verneed, 8);
        var flagOffsets = new int[versions.Length];
        for (int i = 0; i < versions.Length; i++)
        {
            int aux = 16 + 16 * i;
            BitConverter.GetBytes(0x0a0b0c0d + i).CopyTo(verneed, aux);
            BitConverter.GetBytes((ushort)(2 + i)).CopyTo(verneed, aux + 6); // vna_other
            BitConverter.GetBytes(nameOffsets[i]).CopyTo(verneed, aux + 8);
            BitConverter.GetBytes(i == versions.Length - 1 ? 0 : 16).CopyTo(verneed, aux + 12);
            flagOffsets[i] = verneedOffset + aux + 4;
        }
        image.AddRange(verneed);
        while (image.Count % 8 != 0) image.Add(0);
        int sectionHeaders = image.Count;
        image.AddRange(new byte[64]); // null section
        image.AddRange(SectionHeader(3, stringsOffset, (int)strings.Length, 0, 0));
        image.AddRange(SectionHeader(0x6ffffffe, verneedOffset, verneed.Length, 1, 1));
        var bytes = image.ToArray();
        new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1 }.CopyTo(bytes, 0);
        BitConverter.GetBytes((ulong)sectionHeaders).CopyTo(bytes, 0x28);
        BitConverter.GetBytes((ushort)64).CopyTo(bytes, 0x3A);
        BitConverter.GetBytes((ushort)3).CopyTo(bytes, 0x3C);
        return (bytes, flagOffsets);
    }

    static byte[] SectionHeader(uint type, long offset, long size, uint link, uint info)
    {
        var header = new byte[64];
        BitConverter.GetBytes(type).CopyTo(header, 4);
        BitConverter.GetBytes((ulong)offset).CopyTo(header, 0x18);
        BitConverter.GetBytes((ulong)size).CopyTo(header, 0x20);
        BitConverter.GetBytes(link).CopyTo(header, 0x28);
        BitConverter.GetBytes(info).CopyTo(header, 0x2C);
        return header;
    }

    [Test]
    public void SetsTheWeakFlagOnThatVersionAndChangesNothingElse()
    {
        var (image, flags) = SyntheticElf("GLIBCXX_3.4.30", Missing, "GLIBCXX_3.4.29");
        var original = (byte[])image.Clone();
        Assert.That(ElfVersionNeedPatcher.MarkVersionNeedWeak(image, Missing), Is.EqualTo(ElfPatchOutcome.Patched));
        var changed = Enumerable.Range(0, image.Length).Where(i => image[i] != original[i]).ToList();
        Assert.That(changed, Is.EqualTo(new[] { flags[1] }));
        Assert.That(BitConverter.ToUInt16(image, flags[1]), Is.EqualTo(ElfVersionNeedPatcher.VerFlagWeak));
    }

    [Test]
    public void PatchingTwiceIsANoOp()
    {
        var (image, _) = SyntheticElf(Missing);
        ElfVersionNeedPatcher.MarkVersionNeedWeak(image, Missing);
        var once = (byte[])image.Clone();
        Assert.That(ElfVersionNeedPatcher.MarkVersionNeedWeak(image, Missing), Is.EqualTo(ElfPatchOutcome.AlreadyWeak));
        Assert.That(image, Is.EqualTo(once));
    }

    [Test]
    public void AFileWithoutThatVersionNeedIsLeftUnchanged()
    {
        var (image, _) = SyntheticElf("GLIBCXX_3.4.30", "GLIBCXX_3.4.21");
        var original = (byte[])image.Clone();
        Assert.That(ElfVersionNeedPatcher.MarkVersionNeedWeak(image, Missing), Is.EqualTo(ElfPatchOutcome.NotRequired));
        Assert.That(image, Is.EqualTo(original));
    }

    [Test]
    public void ANonElfFileIsAClearError()
    {
        var e = Assert.Throws<ElfFormatException>(() => ElfVersionNeedPatcher.MarkVersionNeedWeak(Encoding.ASCII.GetBytes("#!/bin/sh\necho hi\n"), Missing));
        Assert.That(e!.Message, Does.Contain("not an ELF"));
    }

    [Test]
    public void EveryTruncationIsAClearErrorNeverACrash()
    {
        var (image, _) = SyntheticElf("GLIBCXX_3.4.30", Missing);
        for (int length = 0; length < image.Length; length++)
        {
            var truncated = image.Take(length).ToArray();
            Assert.Throws<ElfFormatException>(() => ElfVersionNeedPatcher.MarkVersionNeedWeak(truncated, Missing), $"length {length}");
        }
    }

    [Test]
    public void PatchFileReplacesTheFileAndNeverWritesThroughAHardLink()
    {
        var directory = TestPaths.TempDirectory();
        try
        {
            var (image, flags) = SyntheticElf(Missing);
            string cacheCopy = Path.Combine(directory, "cache.so"), outputCopy = Path.Combine(directory, "output.so");
            File.WriteAllBytes(cacheCopy, image);
            var link = Process.Start(new ProcessStartInfo("ln", new[] { cacheCopy, outputCopy }) { UseShellExecute = false })!;
            link.WaitForExit();
            Assume.That(link.ExitCode, Is.EqualTo(0), "ln failed");
            var stamp = new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc);
            File.SetLastWriteTimeUtc(outputCopy, stamp);

            Assert.That(ElfVersionNeedPatcher.PatchFile(outputCopy, Missing), Is.EqualTo(ElfPatchOutcome.Patched));
            Assert.That(File.ReadAllBytes(cacheCopy), Is.EqualTo(image), "the linked original must not change");
            Assert.That(File.ReadAllBytes(outputCopy)[flags[0]], Is.EqualTo(ElfVersionNeedPatcher.VerFlagWeak));
            Assert.That(File.GetLastWriteTimeUtc(outputCopy), Is.EqualTo(stamp), "timestamp kept so incremental copies stay quiet");
            Assert.That(Directory.GetFiles(directory), Has.Length.EqualTo(2), "no temporary file left behind");
            Assert.That(ElfVersionNeedPatcher.PatchFile(outputCopy, Missing), Is.EqualTo(ElfPatchOutcome.AlreadyWeak));
        }
        finally
        {
            Directory.Delete(directory, true);
        }
    }

    [Test]
    public void TheRealTorchSharpLibraryNeedsExactlyOneTwoByteChange()
    {
        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string native = Path.Combine(packages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assume.That(File.Exists(native), "TorchSharp 0.107.0 is not in the NuGet cache at " + native);
        var image = File.ReadAllBytes(native);
        var original = (byte[])image.Clone();
        var offsets = ElfVersionNeedPatcher.FindVernauxFlagOffsets(image, Missing);
        Assert.That(offsets, Has.Count.EqualTo(1));
        Assert.That(ElfVersionNeedPatcher.MarkVersionNeedWeak(image, Missing), Is.EqualTo(ElfPatchOutcome.Patched));
        var changed = Enumerable.Range(0, image.Length).Where(i => image[i] != original[i]).ToList();
        Assert.That(changed, Is.EqualTo(new[] { offsets[0] }));
    }

    [Test]
    public void TheBuildOutputCopyIsPatchedWhereTheSystemNeedsIt()
    {
        string output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assume.That(File.Exists(output), "no libLibTorchSharp.so in the test output");
        var image = File.ReadAllBytes(output);
        var offsets = ElfVersionNeedPatcher.FindVernauxFlagOffsets(image, Missing);
        Assume.That(offsets, Is.Not.Empty);
        bool systemHasIt = ElfVersionNeedPatcher.SystemLibStdCxxDefines(Missing);
        bool weak = (BitConverter.ToUInt16(image, offsets[0]) & ElfVersionNeedPatcher.VerFlagWeak) != 0;
        Assert.That(weak, Is.EqualTo(!systemHasIt));
    }
}
