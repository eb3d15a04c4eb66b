using System.Globalization;
using System.Numerics;
using System.Text;

namespace ModelZoo.Weights.Pickle;

/// <summary>
/// A pickle interpreter (protocols 0 to 5) that never imports or calls anything the pickle names. Globals on the
/// allow-list (the torch tensor-rebuild functions, storage types, OrderedDict and the plain containers) are
/// interpreted by our own code; any other global becomes a <see cref="PyGlobal"/>, and "calling" it (REDUCE,
/// NEWOBJ, INST, OBJ) yields an inert <see cref="PyObject"/> that records the call. The caller decides whether
/// such a placeholder is harmless (a Lightning hyper-parameter) or fatal (where a weight should be).
/// Memory is proportional to the pickle's own size: no length read from the file is trusted before it is checked
/// against the bytes that remain.
/// </summary>
internal sealed class PickleMachine
{
    /// <summary>Python's own limit on the digits of a text integer; also keeps BigInteger parsing linear.</summary>
    const int MaxIntegerDigits = 4300;

    readonly PickleInput _input;
    readonly Func<object?, object?> _persistentLoad;
    readonly List<object?> _stack = new();
    readonly Stack<int> _marks = new();
    readonly Dictionary<long, object?> _memo = new();

    /// <summary>Globals outside the allow-list that the pickle referenced (never resolved).</summary>
    public SortedSet<string> ForeignGlobals { get; } = new(StringComparer.Ordinal);

    public PickleMachine(PickleInput input, Func<object?, object?> persistentLoad)
    {
        _input = input;
        _persistentLoad = persistentLoad;
    }

    public static string TypeName(object? value) => value switch
    {
        null => "None",
        bool => "bool",
        long or BigInteger => "int",
        double => "float",
        string => "str",
        byte[] => "bytes",
        PyTuple => "tuple",
        PyList => "list",
        PyDict => "dict",
        PySet => "set",
        PyGlobal g => "global " + g.FullName,
        PyObject o => "object built by " + o.Callable.FullName,
        TensorRef => "tensor",
        StorageRef => "storage",
        _ => value.GetType().Name,
    };

    /// <summary>Runs until STOP and returns the pickled object.</summary>
    public object? Run()
    {
        while (true)
        {
            long at = _input.Position;
            byte op = _input.ReadByte();
            switch (op)
            {
                case 0x80: // PROTO
                    int protocol = _input.ReadByte();
                    if (protocol > 5) throw new PickleException($"pickle protocol {protocol} is newer than 5 (pickle byte {at})", unsupported: true);
                    break;
                case 0x95: // FRAME: a length hint only
                    long frame = (long)_input.ReadUInt(8);
                    if (frame < 0 || frame > _input.Remaining) throw Error(at, $"a frame declares {frame} bytes but only {_input.Remaining} remain");
                    break;
                case (byte)'.': // STOP
                    if (_marks.Count > 0) throw Error(at, "STOP with an open MARK");
                    var result = Pop(at);
                    if (_stack.Count != 0) throw Error(at, $"STOP leaves {_stack.Count} values on the stack");
                    return result;
                case (byte)'0': Pop(at); break; // POP
                case (byte)'1': PopMark(at); break; // POP_MARK
                case (byte)'2': Push(Peek(at)); break; // DUP
                case (byte)'(': _marks.Push(_stack.Count); break; // MARK
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'I': Push(ParseTextInt(_input.ReadLine(), at, allowBool: true)); break;
                case (byte)'J': Push((long)(int)_input.ReadUInt(4)); break; // BININT
                case (byte)'K': Push((long)_input.ReadByte()); break; // BININT1
                case (byte)'M': Push((long)_input.ReadUInt(2)); break; // BININT2
                case (byte)'L': // LONG (text)
                    {
                        var line = _input.ReadLine();
                        if (line.Length > 0 && line[^1] == (byte)'L') line = line[..^1];
                        Push(ParseTextInt(line, at, allowBool: false));
                        break;
                    }
                case 0x8a: Push(ParseLong(_input.ReadBytes(_input.ReadByte(), "LONG1"))); break;
                case 0x8b: // LONG4
                    {
                        long n = (int)_input.ReadUInt(4);
                        if (n < 0) throw Error(at, "LONG4 with a negative length");
                        Push(ParseLong(_input.ReadBytes(n, "LONG4")));
                        break;
                    }
                case (byte)'F': // FLOAT (text)
                    {
                        string text = Encoding.ASCII.GetString(_input.ReadLine(64));
                        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d))
                            throw Error(at, $"FLOAT '{text}' is not a number");
                        Push(d);
                        break;
                    }
                case (byte)'G': // BINFLOAT, big-endian
                    {
                        var bytes = _input.ReadBytes(8, "BINFLOAT");
                        if (BitConverter.IsLittleEndian) Array.Reverse(bytes);
                        Push(BitConverter.ToDouble(bytes));
                        break;
                    }
                case (byte)'S': Push(ParseQuotedString(_input.ReadLine(), at)); break; // STRING (text, Python 2 str)
                case (byte)'T': Push(Utf8(_input.ReadBytes((long)_input.ReadUInt(4), "BINSTRING"))); break;
                case (byte)'U': Push(Utf8(_input.ReadBytes(_input.ReadByte(), "SHORT_BINSTRING"))); break;
                case (byte)'V': Push(RawUnicodeEscape(_input.ReadLine())); break; // UNICODE (text)
                case (byte)'X': Push(Utf8(_input.ReadBytes((long)_input.ReadUInt(4), "BINUNICODE"))); break;
                case 0x8c: Push(Utf8(_input.ReadBytes(_input.ReadByte(), "SHORT_BINUNICODE"))); break;
                case 0x8d: Push(Utf8(_input.ReadBytes(ReadLength8(at), "BINUNICODE8"))); break;
                case (byte)'B': Push(_input.ReadBytes((long)_input.ReadUInt(4), "BINBYTES")); break;
                case (byte)'C': Push(_input.ReadBytes(_input.ReadByte(), "SHORT_BINBYTES")); break;
                case 0x8e: Push(_input.ReadBytes(ReadLength8(at), "BINBYTES8")); break;
                case 0x96: Push(_input.ReadBytes(ReadLength8(at), "BYTEARRAY8")); break;
                case (byte)')': Push(PyTuple.Empty); break;
                case (byte)'t': Push(new PyTuple(PopMark(at).ToArray())); break;
                case 0x85: Push(new PyTuple(new[] { Pop(at) })); break;
                case 0x86: { var b = Pop(at); var a = Pop(at); Push(new PyTuple(new[] { a, b })); break; }
                case 0x87: { var c = Pop(at); var b = Pop(at); var a = Pop(at); Push(new PyTuple(new[] { a, b, c })); break; }
                case (byte)']': Push(new PyList()); break;
                case (byte)'l': { var list = new PyList(); list.Items.AddRange(PopMark(at)); Push(list); break; }
                case (byte)'a': { var item = Pop(at); Append(Peek(at), item, at); break; }
                case (byte)'e': { var items = PopMark(at); var target = Peek(at); foreach (var item in items) Append(target, item, at); break; }
                case (byte)'}': Push(new PyDict()); break;
                case (byte)'d': // DICT
                    {
                        var items = PopMark(at);
                        if (items.Count % 2 != 0) throw Error(at, "DICT with an odd number of items");
                        var dict = new PyDict();
                        for (int i = 0; i < items.Count; i += 2) dict.Set(items[i], items[i + 1]);
                        Push(dict);
                        break;
                    }
                case (byte)'s': { var value = Pop(at); var key = Pop(at); SetItem(Peek(at), key, value, at); break; }
                case (byte)'u': // SETITEMS
                    {
                        var items = PopMark(at);
                        if (items.Count % 2 != 0) throw Error(at, "SETITEMS with an odd number of items");
                        var target = Peek(at);
                        for (int i = 0; i < items.Count; i += 2) SetItem(target, items[i], items[i + 1], at);
                        break;
                    }
                case 0x8f: Push(new PySet()); break; // EMPTY_SET
                case 0x90: // ADDITEMS
                    {
                        var items = PopMark(at);
                        if (Peek(at) is not PySet set) throw Error(at, "ADDITEMS on something that is not a set");
                        set.Items.AddRange(items);
                        break;
                    }
                case 0x91: { var set = new PySet(); set.Items.AddRange(PopMark(at)); Push(set); break; } // FROZENSET
                case (byte)'c': // GLOBAL
                    {
                        string module = Ascii(_input.ReadLine(1024));
                        string name = Ascii(_input.ReadLine(1024));
                        Push(Global(module, name));
                        break;
                    }
                case 0x93: // STACK_GLOBAL
                    {
                        var name = Pop(at);
                        var module = Pop(at);
                        if (module is not string m || name is not string n) throw Error(at, "STACK_GLOBAL needs two strings");
                        Push(Global(m, n));
                        break;
                    }
                case (byte)'R': // REDUCE
                    {
                        var args = Pop(at);
                        var callable = Pop(at);
                        Push(Call(callable, args, at));
                        break;
                    }
                case 0x81: // NEWOBJ: cls.__new__(cls, *args)
                    {
                        var args = Pop(at);
                        var cls = Pop(at);
                        Push(Call(cls, args, at));
                        break;
                    }
                case 0x92: // NEWOBJ_EX
                    {
                        Pop(at); // kwargs
                        var args = Pop(at);
                        var cls = Pop(at);
                        Push(Call(cls, args, at));
                        break;
                    }
                case (byte)'i': // INST
                    {
                        string module = Ascii(_input.ReadLine(1024));
                        string name = Ascii(_input.ReadLine(1024));
                        var args = PopMark(at);
                        Push(Call(Global(module, name), new PyTuple(args.ToArray()), at));
                        break;
                    }
                case (byte)'o': // OBJ
                    {
                        var items = PopMark(at);
                        if (items.Count == 0) throw Error(at, "OBJ without a class");
                        Push(Call(items[0], new PyTuple(items.Skip(1).ToArray()), at));
                        break;
                    }
                case (byte)'b': { var state = Pop(at); Build(Peek(at), state, at); break; } // BUILD
                case (byte)'P': Push(_persistentLoad(Ascii(_input.ReadLine(1024)))); break; // PERSID
                case (byte)'Q': Push(_persistentLoad(Pop(at))); break; // BINPERSID
                case (byte)'g': Push(MemoGet(ParseMemoIndex(_input.ReadLine(32), at), at)); break;
                case (byte)'h': Push(MemoGet(_input.ReadByte(), at)); break;
                case (byte)'j': Push(MemoGet((long)_input.ReadUInt(4), at)); break;
                case (byte)'p': _memo[ParseMemoIndex(_input.ReadLine(32), at)] = Peek(at); break;
                case (byte)'q': _memo[_input.ReadByte()] = Peek(at); break;
                case (byte)'r': _memo[(long)_input.ReadUInt(4)] = Peek(at); break;
                case 0x94: _memo[_memo.Count] = Peek(at); break; // MEMOIZE
                case 0x82 or 0x83 or 0x84:
                    throw Error(at, "the pickle uses the copyreg extension registry (EXT1/EXT2/EXT4), which checkpoints never need");
                case 0x97 or 0x98:
                    throw Error(at, "the pickle uses out-of-band buffers (protocol 5 NEXT_BUFFER/READONLY_BUFFER), which checkpoints never need");
                default:
                    throw Error(at, $"unknown pickle opcode 0x{op:x2}");
            }
        }
    }

    PickleException Error(long at, string message) => new($"{message} (pickle byte {at})");

    void Push(object? value) => _stack.Add(value);

    object? Pop(long at)
    {
        int floor = _marks.Count > 0 ? _marks.Peek() : 0;
        if (_stack.Count <= floor) throw Error(at, "the pickle pops from an empty stack");
        var value = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    object? Peek(long at)
    {
        int floor = _marks.Count > 0 ? _marks.Peek() : 0;
        if (_stack.Count <= floor) throw Error(at, "the pickle reads from an empty stack");
        return _stack[^1];
    }

    List<object?> PopMark(long at)
    {
        if (_marks.Count == 0) throw Error(at, "the pickle closes a MARK it never opened");
        int mark = _marks.Pop();
        var items = _stack.GetRange(mark, _stack.Count - mark);
        _stack.RemoveRange(mark, _stack.Count - mark);
        return items;
    }

    object? MemoGet(long index, long at) =>
        _memo.TryGetValue(index, out var value) ? value : throw Error(at, $"the pickle reads memo slot {index}, which was never written");

    long ReadLength8(long at)
    {
        ulong n = _input.ReadUInt(8);
        if (n > (ulong)_input.Remaining) throw Error(at, $"a string declares {n} bytes but only {_input.Remaining} remain");
        return (long)n;
    }

    static long ParseMemoIndex(byte[] line, long at)
    {
        if (!long.TryParse(Encoding.ASCII.GetString(line), NumberStyles.Integer, CultureInfo.InvariantCulture, out long index) || index < 0)
            throw new PickleException($"bad memo index '{Encoding.ASCII.GetString(line)}' (pickle byte {at})");
        return index;
    }

    object ParseTextInt(byte[] line, long at, bool allowBool)
    {
        string text = Encoding.ASCII.GetString(line).Trim();
        if (allowBool && text == "00") return false;
        if (allowBool && text == "01") return true;
        if (text.Length > MaxIntegerDigits) throw Error(at, $"an integer with more than {MaxIntegerDigits} digits");
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long small)) return small;
        if (BigInteger.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var big)) return big;
        throw Error(at, $"'{(text.Length > 40 ? text[..40] + "..." : text)}' is not an integer");
    }

    static object ParseLong(byte[] bytes)
    {
        if (bytes.Length == 0) return 0L;
        var value = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        return value >= long.MinValue && value <= long.MaxValue ? (object)(long)value : value;
    }

    static string Utf8(byte[] bytes) => Encoding.UTF8.GetString(bytes);

    static string Ascii(byte[] bytes) => Encoding.UTF8.GetString(bytes).TrimEnd('\r');

    /// <summary>Protocol 0 STRING: a Python repr in quotes, with backslash escapes.</summary>
    string ParseQuotedString(byte[] line, long at)
    {
        string text = Encoding.Latin1.GetString(line);
        if (text.Length < 2 || text[0] != text[^1] || (text[0] != '\'' && text[0] != '"'))
            throw Error(at, "STRING is not quoted");
        var body = text[1..^1];
        var bytes = new List<byte>(body.Length);
        for (int i = 0; i < body.Length; i++)
        {
            char ch = body[i];
            if (ch != '\\' || i + 1 == body.Length) { bytes.Add((byte)ch); continue; }
            char next = body[++i];
            switch (next)
            {
                case 'n': bytes.Add((byte)'\n'); break;
                case 't': bytes.Add((byte)'\t'); break;
                case 'r': bytes.Add((byte)'\r'); break;
                case '0': bytes.Add(0); break;
                case 'x' when i + 2 < body.Length && int.TryParse(body.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int hex):
                    bytes.Add((byte)hex);
                    i += 2;
                    break;
                default: bytes.Add((byte)next); break;
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>Protocol 0 UNICODE: latin-1 text with \uXXXX and \UXXXXXXXX escapes.</summary>
    static string RawUnicodeEscape(byte[] line)
    {
        string text = Encoding.Latin1.GetString(line);
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\' && i + 5 < text.Length && text[i + 1] == 'u'
                && int.TryParse(text.AsSpan(i + 2, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int code))
            {
                sb.Append((char)code);
                i += 5;
            }
            else if (text[i] == '\\' && i + 9 < text.Length && text[i + 1] == 'U'
                && int.TryParse(text.AsSpan(i + 2, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int wide) && wide is >= 0 and <= 0x10FFFF)
            {
                sb.Append(char.ConvertFromUtf32(wide is >= 0xD800 and <= 0xDFFF ? 0xFFFD : wide));
                i += 9;
            }
            else sb.Append(text[i]);
        }
        return sb.ToString();
    }

    PyGlobal Global(string module, string name)
    {
        if (module == "__builtin__") module = "builtins"; // Python 2 pickles
        if (module == "copy_reg") module = "copyreg";
        var global = new PyGlobal(module, name);
        if (!PickleAllowList.IsKnown(global)) ForeignGlobals.Add(global.FullName);
        return global;
    }

    void Append(object? target, object? item, long at)
    {
        switch (target)
        {
            case PyList list: list.Items.Add(item); break;
            case PyObject obj: obj.Items.Add(item); break;
            default: throw Error(at, $"APPEND to a {TypeName(target)}");
        }
    }

    void SetItem(object? target, object? key, object? value, long at)
    {
        switch (target)
        {
            case PyDict dict: dict.Set(key, value); break;
            case PyObject obj: (obj.Mapping ??= new PyDict()).Set(key, value); break;
            default: throw Error(at, $"SETITEM on a {TypeName(target)}");
        }
    }

    void Build(object? target, object? state, long at)
    {
        switch (target)
        {
            case PyObject obj: obj.State = state; break;
            case PyDict dict: dict.State = state; break;
            case TensorRef: break; // tensor attributes (e.g. a parameter's Python state): not needed
            case PyList or PySet: break;
            default: throw Error(at, $"BUILD on a {TypeName(target)}");
        }
    }

    object? Call(object? callable, object? args, long at)
    {
        if (args is not PyTuple arguments) throw Error(at, $"a call with {TypeName(args)} arguments instead of a tuple");
        return callable switch
        {
            PyGlobal global when PickleAllowList.IsCallable(global) => PickleAllowList.Call(global, arguments, this, at),
            PyGlobal global => new PyObject(global, arguments),
            PyObject obj => new PyObject(obj.Callable, arguments), // calling an inert object stays inert
            _ => throw Error(at, $"the pickle calls a {TypeName(callable)}"),
        };
    }

    internal object? CallAllowed(object? callable, PyTuple args, long at) => Call(callable, args, at);
}
