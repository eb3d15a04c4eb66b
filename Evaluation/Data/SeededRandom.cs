namespace ModelZoo.Evaluation.Data;

/// <summary>
/// A small deterministic generator (SplitMix64) whose sequence depends only on its seed, on every platform and
/// .NET version, with a state that can be saved and restored (checkpoints resume the same data order).
/// </summary>
public sealed class SeededRandom
{
    ulong _state;

    public SeededRandom(ulong seed) => _state = seed;

    /// <summary>A generator for one purpose of a run, e.g. (run seed, epoch): independent streams from one seed.</summary>
    public static SeededRandom For(long seed, long stream) => new(Mix((ulong)seed ^ Mix((ulong)stream + 0x632BE59BD9B4E019UL)));

    public ulong State { get => _state; set => _state = value; }

    public ulong NextUInt64() => Mix(_state += 0x9E3779B97F4A7C15UL);

    /// <summary>Uniform in [0, bound) without modulo bias.</summary>
    public int NextInt(int bound)
    {
        if (bound <= 0) throw new ArgumentOutOfRangeException(nameof(bound), "bound must be positive");
        ulong limit = ulong.MaxValue - ulong.MaxValue % (ulong)bound;
        ulong x;
        do x = NextUInt64(); while (x >= limit);
        return (int)(x % (ulong)bound);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Fisher-Yates shuffle in place.</summary>
    public void Shuffle<T>(IList<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>A permutation of 0..count-1.</summary>
    public int[] Permutation(int count)
    {
        var order = Enumerable.Range(0, count).ToArray();
        Shuffle(order);
        return order;
    }

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
