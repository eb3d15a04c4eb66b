using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tokenization;

/// <summary>Encoded texts of one batch, all padded to the same length unless <see cref="Padding.None"/> was asked for.</summary>
public sealed class EncodedBatch
{
    public EncodedBatch(IReadOnlyList<EncodedText> rows) => Rows = rows;

    public IReadOnlyList<EncodedText> Rows { get; }

    public int Count => Rows.Count;

    /// <summary>The common row length (0 for an empty batch); throws when rows differ (no padding was asked for).</summary>
    public int SequenceLength
    {
        get
        {
            if (Rows.Count == 0) return 0;
            int length = Rows[0].Length;
            if (Rows.Any(r => r.Length != length))
                throw new InvalidOperationException($"the batch rows have different lengths ({string.Join(", ", Rows.Select(r => r.Length).Distinct())}); encode with padding to make a tensor");
            return length;
        }
    }

    /// <summary>Int64 tensors [B, L]: input ids, attention mask, token type ids. The caller disposes them.</summary>
    public TokenTensors ToTensors(Device? device = null)
    {
        int length = SequenceLength;
        var shape = new long[] { Rows.Count, length };
        return new TokenTensors(Tensor(r => r.InputIds), Tensor(r => r.AttentionMask), Tensor(r => r.TokenTypeIds));

        torch.Tensor Tensor(Func<EncodedText, int[]> field)
        {
            var data = new long[Rows.Count * length];
            for (int b = 0; b < Rows.Count; b++)
            {
                var values = field(Rows[b]);
                for (int i = 0; i < length; i++) data[b * length + i] = values[i];
            }
            var cpu = torch.tensor(data, shape, dtype: ScalarType.Int64);
            if (device is null || device.type == DeviceType.CPU) return cpu;
            using (cpu) return cpu.to(device);
        }
    }
}

/// <summary>Token tensors of a batch, Int64 [B, L]; dispose (or let a dispose scope take them).</summary>
public sealed record TokenTensors(torch.Tensor InputIds, torch.Tensor AttentionMask, torch.Tensor TokenTypeIds) : IDisposable
{
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask.Dispose();
        TokenTypeIds.Dispose();
    }
}
