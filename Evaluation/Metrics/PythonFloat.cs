using System.Globalization;
using System.Numerics;

namespace ModelZoo.Evaluation.Metrics;

/// <summary>
/// Python's float arithmetic where reference metrics depend on it bit for bit: <c>round(x, n)</c> (correctly rounded
/// from the exact binary value, ties to even; not <see cref="Math.Round(double, int)"/>) and the builtin <c>sum</c>
/// of CPython 3.12+ (an exact integer prefix, then Neumaier-compensated float addition).
/// </summary>
public static class PythonFloat
{
    /// <summary>Python's <c>round(x, ndigits)</c> for a float.</summary>
    public static double Round(double x, int ndigits)
    {
        if (!double.IsFinite(x)) return x;
        // Beyond these bounds CPython returns x (or a signed zero) unchanged.
        if (ndigits > 323) return x;
        if (ndigits < -308) return 0.0 * x;
        if (x == 0) return x;

        long bits = BitConverter.DoubleToInt64Bits(x);
        bool negative = bits < 0;
        int biasedExponent = (int)((bits >> 52) & 0x7FF);
        long fraction = bits & 0xFFFFFFFFFFFFFL;
        // |x| = mantissa * 2^exponent exactly.
        BigInteger mantissa = biasedExponent == 0 ? fraction : fraction | (1L << 52);
        int exponent = biasedExponent == 0 ? -1074 : biasedExponent - 1075;

        // q = |x| * 10^ndigits rounded half-to-even, from the exact rational numerator / denominator.
        BigInteger numerator = mantissa * BigInteger.Pow(10, Math.Max(ndigits, 0)) << Math.Max(exponent, 0);
        BigInteger denominator = BigInteger.Pow(10, Math.Max(-ndigits, 0)) << Math.Max(-exponent, 0);
        var quotient = BigInteger.DivRem(numerator, denominator, out var remainder);
        int half = (remainder * 2).CompareTo(denominator);
        if (half > 0 || half == 0 && !quotient.IsEven) quotient += 1;

        // The decimal q * 10^-ndigits back to the nearest double (.NET parsing is correctly rounded, as strtod).
        string text = (negative ? "-" : "") + quotient.ToString(CultureInfo.InvariantCulture) + "e" + (-ndigits).ToString(CultureInfo.InvariantCulture);
        return double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// A number as Python holds it: an int or a float. Only what the reference metrics produce (small ints).
    /// </summary>
    public readonly record struct Number(bool IsInt, long Int, double Float)
    {
        public static Number FromInt(long value) => new(true, value, 0);
        public static Number FromFloat(double value) => new(false, 0, value);
        public double AsDouble => IsInt ? Int : Float;
    }

    /// <summary>
    /// CPython 3.12+ <c>sum(items)</c> (start 0) as a float: ints add exactly until the first float; from then on
    /// floats use Neumaier compensation and ints are added to the running value uncompensated, as bltinmodule.c does.
    /// </summary>
    public static double Sum(IEnumerable<Number> items)
    {
        long intResult = 0;
        bool floatMode = false;
        double result = 0, compensation = 0;
        foreach (var item in items)
        {
            if (!floatMode)
            {
                if (item.IsInt)
                {
                    intResult = checked(intResult + item.Int);
                    continue;
                }
                result = intResult + item.Float; // int + float: the int becomes a double first
                floatMode = true;
                continue;
            }
            if (item.IsInt)
            {
                result += item.Int;
                continue;
            }
            double x = item.Float, t = result + x;
            if (Math.Abs(result) >= Math.Abs(x)) compensation += (result - t) + x;
            else compensation += (x - t) + result;
            result = t;
        }
        if (!floatMode) return intResult;
        if (compensation != 0 && double.IsFinite(compensation)) result += compensation;
        return result;
    }

    /// <summary>CPython 3.12+ <c>sum</c> of floats (start 0).</summary>
    public static double Sum(IEnumerable<double> items) => Sum(items.Select(Number.FromFloat));
}
