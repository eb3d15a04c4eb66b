using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace ModelZoo.Training;

/// <summary>
/// Training progress: a bar with step, loss, learning rate and throughput on stderr (redrawn in place on a
/// terminal; one line every few steps when stderr is a file or pipe), and a JSON-lines metrics log.
/// </summary>
public sealed class ProgressReporter : IDisposable
{
    readonly TextWriter _error;
    readonly bool _terminal, _enabled;
    readonly int _logEvery;
    readonly string _label;
    readonly StreamWriter? _log;
    readonly Stopwatch _clock = Stopwatch.StartNew();
    double _lastTime;
    long _examplesSinceLast;
    int _lastWidth;

    public ProgressReporter(string label, bool enabled, int logEvery, string? metricsLogPath, TextWriter? error = null, bool? terminal = null)
    {
        _label = label;
        _enabled = enabled;
        _logEvery = Math.Max(1, logEvery);
        _error = error ?? Console.Error;
        _terminal = terminal ?? (!Console.IsErrorRedirected && error is null);
        if (metricsLogPath is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(metricsLogPath))!);
            _log = new StreamWriter(new FileStream(metricsLogPath, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
        }
    }

    public void Step(int step, int totalSteps, int epoch, double loss, double learningRate, double gradNorm, long examples)
    {
        _examplesSinceLast += examples;
        double now = _clock.Elapsed.TotalSeconds;
        double throughput = now > _lastTime ? _examplesSinceLast / (now - _lastTime) : 0;
        bool due = step % _logEvery == 0 || step == totalSteps;
        if (due || _terminal)
        {
            _lastTime = now;
            _examplesSinceLast = 0;
        }
        Write(new Dictionary<string, object>
        {
            ["step"] = step, ["epoch"] = epoch, ["loss"] = loss, ["lr"] = learningRate, ["grad_norm"] = gradNorm,
            ["examples_per_s"] = Math.Round(throughput, 2), ["elapsed_s"] = Math.Round(now, 3),
        });
        if (!_enabled) return;
        string text = $"{_label} {Bar(step, totalSteps)} {step}/{totalSteps} loss {Format(loss)} lr {learningRate:0.##e+0} {throughput:0.0} ex/s";
        if (_terminal)
        {
            _error.Write("\r" + text.PadRight(_lastWidth));
            _lastWidth = text.Length;
            if (step == totalSteps) { _error.WriteLine(); _lastWidth = 0; }
        }
        else if (due)
        {
            _error.WriteLine(text);
        }
    }

    public void Evaluation(int step, IReadOnlyDictionary<string, double> metrics)
    {
        if (metrics.Count == 0) return;
        Write(new Dictionary<string, object> { ["step"] = step, ["eval"] = metrics, ["elapsed_s"] = Math.Round(_clock.Elapsed.TotalSeconds, 3) });
        if (!_enabled) return;
        if (_terminal && _lastWidth > 0) { _error.WriteLine(); _lastWidth = 0; }
        _error.WriteLine($"{_label} eval at step {step}: " + string.Join("  ", metrics.Select(m => $"{m.Key} {Format(m.Value)}")));
    }

    public void Message(string text)
    {
        if (!_enabled) return;
        if (_terminal && _lastWidth > 0) { _error.WriteLine(); _lastWidth = 0; }
        _error.WriteLine($"{_label}: {text}");
    }

    /// <summary>Keeps the records of a metrics log up to <paramref name="step"/> (rewritten atomically; a missing log is left alone).</summary>
    public static void TruncateLog(string path, int step)
    {
        if (!File.Exists(path)) return;
        var kept = File.ReadLines(path).Where(line =>
        {
            try
            {
                using var record = JsonDocument.Parse(line);
                var root = record.RootElement;
                if (root.ValueKind != JsonValueKind.Object) return false;
                return !root.TryGetProperty("step", out var s) || s.ValueKind != JsonValueKind.Number || !s.TryGetInt32(out int n) || n <= step;
            }
            catch (JsonException)
            {
                return false;   // a line cut short by the interruption
            }
        }).ToList();
        ModelZoo.Weights.AtomicFile.WriteAllText(path, kept.Count == 0 ? "" : string.Join("\n", kept) + "\n");
    }

    void Write(Dictionary<string, object> record) => _log?.WriteLine(JsonSerializer.Serialize(record));

    static string Bar(int step, int total)
    {
        const int width = 20;
        int filled = total <= 0 ? 0 : (int)Math.Round((double)width * step / total);
        return "[" + new string('#', filled) + new string('-', width - filled) + "]";
    }

    static string Format(double value) => value.ToString(Math.Abs(value) >= 100 ? "0.0" : "0.0000", CultureInfo.InvariantCulture);

    public void Dispose() => _log?.Dispose();
}
