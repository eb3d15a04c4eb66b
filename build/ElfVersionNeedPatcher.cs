// Marks one symbol-version requirement of an ELF shared library as weak (VER_FLG_WEAK), so that the
// dynamic loader accepts the file on systems whose libstdc++ lacks that version.
//
// Why: TorchSharp 0.107's libLibTorchSharp.so requires GLIBCXX_3.4.32 (GCC 13) for exactly one symbol,
// std::ios_base_library_init(), which is referenced but never called. Debian 12 / Ubuntu 22.04 ship
// GLIBCXX_3.4.30, so the library fails to load. A weak version need that is missing is not an error.
//
// This file is compiled twice: by MSBuild's RoslynCodeTaskFactory (build/ModelZoo.TorchSharpNative.targets),
// and by the test project with MODELZOO_ELF_PATCHER_NO_TASK defined, which unit-tests the patcher itself.
// It must stay self-contained and use only the base class library.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace ModelZoo.Build
{
    public enum ElfPatchOutcome
    {
        /// <summary>The version need was found and its weak flag was set.</summary>
        Patched,
        /// <summary>The version need was found and was already weak: nothing to do.</summary>
        AlreadyWeak,
        /// <summary>The file has no need for that version: nothing to do.</summary>
        NotRequired,
    }

    public sealed class ElfFormatException : Exception
    {
        public ElfFormatException(string message) : base(message) { }
    }

    public static class ElfVersionNeedPatcher
    {
        public const string TorchSharpMissingVersion = "GLIBCXX_3.4.32";
        public const ushort VerFlagWeak = 0x2;
        const uint ShtGnuVerneed = 0x6ffffffe;

        /// <summary>Sets VER_FLG_WEAK on every Vernaux entry named <paramref name="versionName"/>; edits <paramref name="image"/> in place.</summary>
        public static ElfPatchOutcome MarkVersionNeedWeak(byte[] image, string versionName)
        {
            var offsets = FindVernauxFlagOffsets(image, versionName);
            if (offsets.Count == 0) return ElfPatchOutcome.NotRequired;
            bool changed = false;
            foreach (int flagsOffset in offsets)
            {
                ushort flags = ReadU16(image, flagsOffset);
                if ((flags & VerFlagWeak) != 0) continue;
                WriteU16(image, flagsOffset, (ushort)(flags | VerFlagWeak));
                changed = true;
            }
            return changed ? ElfPatchOutcome.Patched : ElfPatchOutcome.AlreadyWeak;
        }

        /// <summary>
        /// Patches a file on disk. The file is rewritten through a temporary file and a rename (never in place, so a
        /// hard link into a package cache is never modified), and keeps its timestamp so incremental copies stay quiet.
        /// </summary>
        public static ElfPatchOutcome PatchFile(string path, string versionName)
        {
            byte[] image;
            try { image = File.ReadAllBytes(path); }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                throw new ElfFormatException(path + ": cannot read: " + e.Message);
            }
            ElfPatchOutcome outcome;
            try { outcome = MarkVersionNeedWeak(image, versionName); }
            catch (ElfFormatException e) { throw new ElfFormatException(path + ": " + e.Message); }
            if (outcome != ElfPatchOutcome.Patched) return outcome;

            DateTime lastWrite = File.GetLastWriteTimeUtc(path);
            string temp = path + ".patch-" + Guid.NewGuid().ToString("N") + ".tmp";
            try
            {
                File.WriteAllBytes(temp, image);
                File.SetLastWriteTimeUtc(temp, lastWrite);
                File.Replace(temp, path, null);
            }
            finally
            {
                if (File.Exists(temp)) File.Delete(temp);
            }
            return outcome;
        }

        /// <summary>True when a libstdc++ found on this system already defines <paramref name="versionName"/>.</summary>
        public static bool SystemLibStdCxxDefines(string versionName)
        {
            byte[] needle = Encoding.ASCII.GetBytes(versionName + "\0");
            foreach (string candidate in SystemLibStdCxxCandidates())
            {
                try
                {
                    if (File.Exists(candidate) && Contains(File.ReadAllBytes(candidate), needle)) return true;
                }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
            return false;
        }

        static IEnumerable<string> SystemLibStdCxxCandidates()
        {
            string[] dirs =
            {
                "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu",
                "/usr/lib64", "/lib64", "/usr/lib", "/lib",
            };
            foreach (string dir in dirs) yield return Path.Combine(dir, "libstdc++.so.6");
        }

        static bool Contains(byte[] haystack, byte[] needle)
        {
            for (int i = 0; i + needle.Length <= haystack.Length; i++)
            {
                if (haystack[i] != needle[0]) continue;
                int j = 1;
                while (j < needle.Length && haystack[i + j] == needle[j]) j++;
                if (j == needle.Length) return true;
            }
            return false;
        }

        /// <summary>File offsets of the 16-bit vna_flags field of each Vernaux entry named <paramref name="versionName"/>.</summary>
        public static List<int> FindVernauxFlagOffsets(byte[] image, string versionName)
        {
            if (image.Length < 4 || image[0] != 0x7f || image[1] != (byte)'E' || image[2] != (byte)'L' || image[3] != (byte)'F')
                throw new ElfFormatException("not an ELF file (bad magic)");
            if (image.Length < 64) throw new ElfFormatException("truncated ELF header (" + image.Length + " bytes)");
            if (image[4] != 2) throw new ElfFormatException("only 64-bit ELF files are supported (EI_CLASS=" + image[4] + ")");
            if (image[5] != 1) throw new ElfFormatException("only little-endian ELF files are supported (EI_DATA=" + image[5] + ")");

            ulong sectionHeaderOffset = ReadU64(image, 0x28);
            ushort sectionHeaderSize = ReadU16(image, 0x3A);
            ushort sectionCount = ReadU16(image, 0x3C);
            if (sectionCount == 0) throw new ElfFormatException("no section headers");
            if (sectionHeaderSize < 64) throw new ElfFormatException("section header size " + sectionHeaderSize + " is too small");
            CheckRange(image, sectionHeaderOffset, (ulong)sectionHeaderSize * sectionCount, "section header table");

            var result = new List<int>();
            for (int s = 0; s < sectionCount; s++)
            {
                int header = (int)sectionHeaderOffset + s * sectionHeaderSize;
                if (ReadU32(image, header + 4) != ShtGnuVerneed) continue;
                ulong verneedOffset = ReadU64(image, header + 0x18);
                ulong verneedSize = ReadU64(image, header + 0x20);
                uint linkedStrings = ReadU32(image, header + 0x28);
                uint entryCount = ReadU32(image, header + 0x2C); // sh_info: number of Verneed entries
                CheckRange(image, verneedOffset, verneedSize, "SHT_GNU_verneed section");
                if (linkedStrings >= sectionCount) throw new ElfFormatException("version-need section links to missing string table " + linkedStrings);
                int stringsHeader = (int)sectionHeaderOffset + (int)linkedStrings * sectionHeaderSize;
                ulong stringsOffset = ReadU64(image, stringsHeader + 0x18);
                ulong stringsSize = ReadU64(image, stringsHeader + 0x20);
                CheckRange(image, stringsOffset, stringsSize, "version string table");

                ulong verneed = verneedOffset;
                for (uint n = 0; n < entryCount; n++)
                {
                    CheckRange(image, verneed, 16, "Verneed entry");
                    ushort auxCount = ReadU16(image, (int)verneed + 2);
                    uint auxOffset = ReadU32(image, (int)verneed + 8);
                    uint nextOffset = ReadU32(image, (int)verneed + 12);
                    ulong aux = verneed + auxOffset;
                    for (int a = 0; a < auxCount; a++)
                    {
                        CheckRange(image, aux, 16, "Vernaux entry");
                        uint nameOffset = ReadU32(image, (int)aux + 8);
                        uint auxNext = ReadU32(image, (int)aux + 12);
                        if (ReadString(image, stringsOffset, stringsSize, nameOffset) == versionName) result.Add((int)aux + 4);
                        if (auxNext == 0) break;
                        aux += auxNext;
                    }
                    if (nextOffset == 0) break;
                    verneed += nextOffset;
                }
            }
            return result;
        }

        static string ReadString(byte[] image, ulong tableOffset, ulong tableSize, uint offset)
        {
            if (offset >= tableSize) throw new ElfFormatException("string offset " + offset + " outside its table");
            int start = (int)(tableOffset + offset);
            int end = start;
            int limit = (int)(tableOffset + tableSize);
            while (end < limit && image[end] != 0) end++;
            if (end == limit) throw new ElfFormatException("unterminated string at offset " + start);
            return Encoding.ASCII.GetString(image, start, end - start);
        }

        static void CheckRange(byte[] image, ulong offset, ulong length, string what)
        {
            if (offset > (ulong)image.Length || length > (ulong)image.Length - offset)
                throw new ElfFormatException("truncated or corrupt: " + what + " at offset " + offset + " (" + length +
                                             " bytes) lies outside the file (" + image.Length + " bytes)");
        }

        static ushort ReadU16(byte[] b, int o) { Need(b, o, 2); return (ushort)(b[o] | (b[o + 1] << 8)); }
        static uint ReadU32(byte[] b, int o) { Need(b, o, 4); return (uint)(b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)); }
        static ulong ReadU64(byte[] b, int o) { Need(b, o, 8); return ReadU32(b, o) | ((ulong)ReadU32(b, o + 4) << 32); }
        static void WriteU16(byte[] b, int o, ushort v) { b[o] = (byte)v; b[o + 1] = (byte)(v >> 8); }

        static void Need(byte[] b, int o, int n)
        {
            if (o < 0 || o + n > b.Length) throw new ElfFormatException("truncated: read of " + n + " bytes at offset " + o + " past end of file (" + b.Length + " bytes)");
        }
    }

#if !MODELZOO_ELF_PATCHER_NO_TASK
    /// <summary>MSBuild task: patches each libLibTorchSharp.so given, unless the system libstdc++ needs no help.</summary>
    public class PatchTorchSharpNative : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        public override bool Execute()
        {
            if (Files.Length == 0) return true;
            if (ElfVersionNeedPatcher.SystemLibStdCxxDefines(ElfVersionNeedPatcher.TorchSharpMissingVersion))
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low,
                    "ModelZoo: system libstdc++ defines " + ElfVersionNeedPatcher.TorchSharpMissingVersion + "; libLibTorchSharp.so left as it is.");
                return true;
            }
            foreach (var item in Files)
            {
                string path = item.ItemSpec;
                try
                {
                    var outcome = ElfVersionNeedPatcher.PatchFile(path, ElfVersionNeedPatcher.TorchSharpMissingVersion);
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, "ModelZoo: " + path + ": " + outcome);
                }
                catch (ElfFormatException e)
                {
                    Log.LogWarning("ModelZoo: could not patch " + path + ": " + e.Message);
                }
            }
            return true;
        }
    }
#endif
}
