using System.Collections.Concurrent;

namespace ModelZoo.Tokenization.Bpe;

/// <summary>
/// Byte-pair encoding of one pre-token in O(n log n): a min-heap of adjacent pairs ordered by (merge rank,
/// position) over a linked list of symbols. Merging the lowest-ranked pair, leftmost first, gives what the
/// reference loops give (Python's "merge every occurrence of the best bigram", tiktoken's "merge the best pair"),
/// without their quadratic cost on long pieces.
/// </summary>
public sealed class BytePairEncoder
{
    readonly Dictionary<long, (int Rank, int Merged)> _merges;
    readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    const int CacheLimit = 100_000, CachedPieceLength = 64;

    /// <param name="merges">(left id, right id) packed by <see cref="Key"/> -> the merge's rank and the merged id.</param>
    public BytePairEncoder(Dictionary<long, (int Rank, int Merged)> merges) => _merges = merges;

    public int MergeCount => _merges.Count;

    public static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>
    /// The ids of one pre-token. <paramref name="cacheKey"/> (the pre-token text) caches results of short pieces.
    /// </summary>
    public int[] Encode(ReadOnlySpan<int> symbols, string? cacheKey = null)
    {
        if (cacheKey is not null && cacheKey.Length <= CachedPieceLength && _cache.TryGetValue(cacheKey, out var cached)) return cached;
        var result = Merge(symbols);
        if (cacheKey is not null && cacheKey.Length <= CachedPieceLength && _cache.Count < CacheLimit) _cache.TryAdd(cacheKey, result);
        return result;
    }

    int[] Merge(ReadOnlySpan<int> symbols)
    {
        int n = symbols.Length;
        if (n <= 1) return symbols.ToArray();
        var ids = symbols.ToArray();
        var next = new int[n];
        var prev = new int[n];
        for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }

        var heap = new PriorityQueue<(int Position, int Left, int Right), long>();
        void Push(int position)
        {
            int right = next[position];
            if (right < 0) return;
            if (_merges.TryGetValue(Key(ids[position], ids[right]), out var merge))
                heap.Enqueue((position, ids[position], ids[right]), ((long)merge.Rank << 32) | (uint)position);
        }
        for (int i = 0; i + 1 < n; i++) Push(i);

        int alive = n;
        while (heap.TryDequeue(out var pair, out _))
        {
            int p = pair.Position, q = next[p];
            // Stale entries: a symbol only ever grows into a new id, so matching ids mean the pair is still there.
            if (q < 0 || ids[p] != pair.Left || ids[q] != pair.Right || prev[p] == -2) continue;
            ids[p] = _merges[Key(pair.Left, pair.Right)].Merged;
            next[p] = next[q];
            if (next[q] >= 0) prev[next[q]] = p;
            prev[q] = -2; // removed
            alive--;
            if (prev[p] >= 0) Push(prev[p]);
            Push(p);
        }

        var output = new int[alive];
        for (int i = 0, k = 0; i >= 0; i = next[i]) output[k++] = ids[i];
        return output;
    }
}
