using System.Buffers.Binary;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Processing;

/// <summary>Audio as float samples in [-1, 1]: <see cref="Samples"/> [channels, frames] at <see cref="SampleRate"/> Hz.</summary>
public sealed class AudioWaveform : IDisposable
{
    public Tensor Samples { get; }
    public int SampleRate { get; }
    public int Channels => (int)Samples.shape[0];
    public long Frames => Samples.shape[1];
    public double Seconds => (double)Frames / SampleRate;

    public AudioWaveform(Tensor samples, int sampleRate)
    {
        if (samples.dim() != 2) throw new ArgumentException($"samples must be [channels, frames], got [{string.Join(", ", samples.shape)}]");
        if (sampleRate <= 0) throw new ArgumentException($"sample rate must be positive, got {sampleRate}");
        Samples = samples;
        SampleRate = sampleRate;
    }

    /// <summary>The channels averaged: [frames].</summary>
    public Tensor Mono() => Samples.mean(new long[] { 0 });

    /// <summary>Linear-interpolation resampling to <paramref name="targetRate"/> Hz (a new waveform).</summary>
    public AudioWaveform Resample(int targetRate)
    {
        if (targetRate <= 0) throw new ArgumentException($"sample rate must be positive, got {targetRate}");
        if (targetRate == SampleRate) return new AudioWaveform(Samples.clone(), SampleRate);
        long frames = Math.Max(1, (long)Math.Round(Frames * (double)targetRate / SampleRate));
        using var scope = NewDisposeScope();
        var resampled = nn.functional.interpolate(Samples.unsqueeze(0), new[] { frames }, mode: InterpolationMode.Linear, align_corners: false).squeeze(0);
        return new AudioWaveform(resampled.MoveToOuterDisposeScope(), targetRate);
    }

    public void Dispose() => Samples.Dispose();
}

/// <summary>
/// Reads and writes RIFF/WAVE files: PCM 8, 16, 24 and 32 bit, IEEE float 32 and 64 bit, plain or
/// WAVE_FORMAT_EXTENSIBLE. Errors name the file and what is wrong; writing goes to a temporary file that is renamed.
/// </summary>
public static class WavFile
{
    const ushort FormatPcm = 1, FormatFloat = 3, FormatExtensible = 0xFFFE;

    public static AudioWaveform Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such WAV file", path);
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{path}: cannot read: {e.Message}", e);
        }
        return Read(bytes, path);
    }

    public static AudioWaveform Read(byte[] bytes, string source = "WAV data")
    {
        InvalidDataException Bad(string message) => new($"{source}: {message}");
        if (bytes.Length < 12 || Encoding.ASCII.GetString(bytes, 0, 4) != "RIFF" || Encoding.ASCII.GetString(bytes, 8, 4) != "WAVE")
            throw Bad("not a RIFF/WAVE file (no 'RIFF....WAVE' header)");
        int offset = 12;
        ushort format = 0, channels = 0, bits = 0, blockAlign = 0;
        int sampleRate = 0;
        bool haveFormat = false;
        while (offset + 8 <= bytes.Length)
        {
            string id = Encoding.ASCII.GetString(bytes, offset, 4);
            long size = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 4));
            int body = offset + 8;
            if (id == "fmt ")
            {
                if (size < 16 || body + 16 > bytes.Length) throw Bad($"the fmt chunk is {size} bytes, too short");
                var fmt = bytes.AsSpan(body);
                format = BinaryPrimitives.ReadUInt16LittleEndian(fmt);
                channels = BinaryPrimitives.ReadUInt16LittleEndian(fmt[2..]);
                sampleRate = BinaryPrimitives.ReadInt32LittleEndian(fmt[4..]);
                blockAlign = BinaryPrimitives.ReadUInt16LittleEndian(fmt[12..]);
                bits = BinaryPrimitives.ReadUInt16LittleEndian(fmt[14..]);
                if (format == FormatExtensible)
                {
                    if (size < 40 || body + 40 > bytes.Length) throw Bad("a WAVE_FORMAT_EXTENSIBLE fmt chunk shorter than 40 bytes");
                    format = BinaryPrimitives.ReadUInt16LittleEndian(fmt[24..]); // first two bytes of the sub-format GUID
                }
                haveFormat = true;
            }
            else if (id == "data")
            {
                if (!haveFormat) throw Bad("the data chunk comes before any fmt chunk");
                if (channels == 0 || sampleRate <= 0) throw Bad($"the fmt chunk says {channels} channel(s) at {sampleRate} Hz");
                int bytesPerSample = bits / 8;
                if (bits % 8 != 0 || blockAlign != channels * bytesPerSample)
                    throw Bad($"unsupported sample layout: {bits} bits, block align {blockAlign} for {channels} channel(s)");
                long available = Math.Min(size, bytes.Length - body);
                if (size != 0xFFFFFFFF && available < size && size - available >= blockAlign)
                    throw Bad($"the data chunk says {size} bytes but the file holds {available} (truncated)");
                long frames = available / blockAlign;
                return Decode(bytes.AsSpan(body, (int)(frames * blockAlign)), format, bits, channels, frames, sampleRate, Bad);
            }
            offset = body + (int)Math.Min(size + (size & 1), int.MaxValue - body); // chunks are padded to even sizes
        }
        throw Bad(haveFormat ? "no data chunk" : "no fmt chunk");
    }

    static AudioWaveform Decode(ReadOnlySpan<byte> data, ushort format, ushort bits, int channels, long frames, int sampleRate, Func<string, InvalidDataException> bad)
    {
        var samples = new float[channels * frames];
        int step = bits / 8;
        // Interleaved frames → planar [channels, frames].
        for (long f = 0; f < frames; f++)
        for (int c = 0; c < channels; c++)
        {
            var s = data.Slice((int)((f * channels + c) * step), step);
            float value = (format, bits) switch
            {
                (FormatPcm, 8) => (s[0] - 128) / 128f,
                (FormatPcm, 16) => BinaryPrimitives.ReadInt16LittleEndian(s) / 32768f,
                (FormatPcm, 24) => ((s[0] | (s[1] << 8) | ((sbyte)s[2] << 16))) / 8388608f,
                (FormatPcm, 32) => (float)(BinaryPrimitives.ReadInt32LittleEndian(s) / 2147483648.0),
                (FormatFloat, 32) => BinaryPrimitives.ReadSingleLittleEndian(s),
                (FormatFloat, 64) => (float)BinaryPrimitives.ReadDoubleLittleEndian(s),
                _ => throw bad($"unsupported encoding: format {format} with {bits} bits (PCM 8/16/24/32 and float 32/64 are read)"),
            };
            samples[c * frames + f] = value;
        }
        return new AudioWaveform(tensor(samples).view(channels, frames), sampleRate);
    }

    /// <summary>Writes [channels, frames] (or [frames]) samples in [-1, 1] as 16-bit PCM (or 32-bit float), atomically.</summary>
    public static void Write(string path, Tensor samples, int sampleRate, bool float32 = false)
    {
        if (samples.dim() == 1) samples = samples.unsqueeze(0);
        if (samples.dim() != 2) throw new ArgumentException($"samples must be [channels, frames] or [frames], got [{string.Join(", ", samples.shape)}]");
        if (sampleRate <= 0) throw new ArgumentException($"sample rate must be positive, got {sampleRate}");
        int channels = (int)samples.shape[0];
        long frames = samples.shape[1];
        int bytesPerSample = float32 ? 4 : 2;
        long dataSize = frames * channels * bytesPerSample;
        if (dataSize > uint.MaxValue - 44) throw new ArgumentException("the audio is too long for a WAV file (4 GiB)");
        var planar = samples.to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        var bytes = new byte[44 + dataSize];
        var span = bytes.AsSpan();
        Encoding.ASCII.GetBytes("RIFF").CopyTo(span);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], (uint)(36 + dataSize));
        Encoding.ASCII.GetBytes("WAVEfmt ").CopyTo(span[8..]);
        BinaryPrimitives.WriteUInt32LittleEndian(span[16..], 16);
        BinaryPrimitives.WriteUInt16LittleEndian(span[20..], float32 ? FormatFloat : FormatPcm);
        BinaryPrimitives.WriteUInt16LittleEndian(span[22..], (ushort)channels);
        BinaryPrimitives.WriteInt32LittleEndian(span[24..], sampleRate);
        BinaryPrimitives.WriteInt32LittleEndian(span[28..], sampleRate * channels * bytesPerSample);
        BinaryPrimitives.WriteUInt16LittleEndian(span[32..], (ushort)(channels * bytesPerSample));
        BinaryPrimitives.WriteUInt16LittleEndian(span[34..], (ushort)(8 * bytesPerSample));
        Encoding.ASCII.GetBytes("data").CopyTo(span[36..]);
        BinaryPrimitives.WriteUInt32LittleEndian(span[40..], (uint)dataSize);
        int offset = 44;
        for (long f = 0; f < frames; f++)
        for (int c = 0; c < channels; c++)
        {
            float value = planar[c * frames + f];
            if (float32) BinaryPrimitives.WriteSingleLittleEndian(span[offset..], value);
            else BinaryPrimitives.WriteInt16LittleEndian(span[offset..], (short)Math.Clamp(Math.Round(value * 32768.0), -32768, 32767));
            offset += bytesPerSample;
        }
        string temporary = path + ".tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            File.WriteAllBytes(temporary, bytes);
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }
}
