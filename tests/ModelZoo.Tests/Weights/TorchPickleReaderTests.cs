using System.Numerics;
using System.Text;
using System.Text.Json;
using ModelZoo.Models.Bert;
using ModelZoo.Tests.Support;
using ModelZoo.Weights;
using ModelZoo.Weights.Pickle;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Weights;

public class TorchPickleReaderTests
{
    static string Data(string name) => Path.Combine(TestPaths.RepositoryRoot, "tests", "ModelZoo.Tests", "Weights", "Data", name);

    string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = TestPaths.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, true);

    string WriteFile(string name, byte[] bytes)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    static void AssertSameTensors(ICheckpointReader actual, ICheckpointReader expected)
    {
        Assert.That(actual.Entries.Select(e => e.Name), Is.EquivalentTo(expected.Entries.Select(e => e.Name)));
        foreach (var entry in expected.Entries)
        {
            var mine = actual.Entries.Single(e => e.Name == entry.Name);
            Assert.That(mine.Dtype, Is.EqualTo(entry.Dtype), entry.Name);
            Assert.That(mine.Shape, Is.EqualTo(entry.Shape), entry.Name);
            using var a = actual.Read(entry.Name);
            using var b = expected.Read(entry.Name);
            Assert.That(a.dtype, Is.EqualTo(b.dtype), entry.Name);
            Assert.That(a.shape, Is.EqualTo(b.shape), entry.Name);
            Assert.That(a.is_contiguous(), Is.True, entry.Name);
            // Bitwise: compare the raw bytes (NaN-safe, and exact for every dtype).
            Assert.That(a.bytes.ToArray(), Is.EqualTo(b.bytes.ToArray()), entry.Name);
        }
    }

    [TestCase("uniter")]
    [TestCase("vilbert")]
    public void FixturePickleHoldsExactlyTheSafetensorsTensors(string fixture)
    {
        using var pickle = Checkpoint.Open(Path.Combine(TestPaths.Fixture(fixture), "model.bin"));
        using var safetensors = Checkpoint.Open(Path.Combine(TestPaths.Fixture(fixture), "model.safetensors"));
        Assert.That(pickle, Is.InstanceOf<TorchPickleReader>());
        Assert.That(pickle.Format, Is.EqualTo(TorchPickleReader.ZipFormat));
        Assert.That(pickle.Entries.Count, Is.GreaterThan(10));
        AssertSameTensors(pickle, safetensors);
        // The fixture README: tied tensors share storage in the pickle.
        if (fixture == "vilbert")
            Assert.That(pickle.Metadata["pickle.shared_storage"], Does.Contain("bert.embeddings.word_embeddings.weight").And.Contain("cls.predictions.decoder.weight"));
    }

    [TestCase("zip_protocol2.pt", TorchPickleReader.ZipFormat)]
    [TestCase("zip_protocol4.pt", TorchPickleReader.ZipFormat)]
    [TestCase("zip_bigendian.pt", TorchPickleReader.ZipFormat)]
    [TestCase("legacy_protocol2.pt", TorchPickleReader.LegacyFormat)]
    public void PythonWrittenCheckpointsReadExactlyIncludingViewsTiesAndEveryDtype(string file, string format)
    {
        using var reader = Checkpoint.Open(Data(file));
        using var expected = Checkpoint.Open(Data("state_dict.expected.safetensors"));
        Assert.That(reader.Format, Is.EqualTo(format));
        AssertSameTensors(reader, expected);
        Assert.That(reader.Metadata["pickle.shared_storage"], Does.Contain("embeddings.weight = decoder.weight"));
        // The transposed view really is the transpose of the stored order.
        using var weight = reader.Read("encoder.layer.0.weight");
        Assert.That(weight.shape, Is.EqualTo(new long[] { 4, 3 }));
        Assert.That(weight[1, 0].item<float>(), Is.EqualTo(MathF.Sin(1)).Within(1e-7));
        Assert.That(weight[0, 1].item<float>(), Is.EqualTo(MathF.Sin(4)).Within(1e-7));
    }

    [Test]
    public void LightningCheckpointUsesItsStateDictAndKeepsEverythingElseInert()
    {
        using var reader = Checkpoint.Open(Data("lightning.ckpt"));
        using var expected = Checkpoint.Open(Data("lightning.expected.safetensors"));
        AssertSameTensors(reader, expected);
        Assert.That(((TorchPickleReader)reader).StateDictPath, Is.EqualTo("state_dict"));
        var metadata = reader.Metadata;
        Assert.That(metadata["epoch"], Is.EqualTo("3"));
        Assert.That(metadata["pytorch-lightning_version"], Is.EqualTo("'2.1.0'"));
        Assert.That(metadata["hyper_parameters"], Does.Contain("lightning.fabric.utilities.data.AttributeDict object, not executed")
            .And.Contain("argparse.Namespace object, not executed").And.Contain("'vit'"));
        Assert.That(metadata["optimizer_states"], Does.Contain("'param_groups'"));
        Assert.That(metadata["pickle.foreign_globals"], Does.Contain("argparse.Namespace").And.Contain("lightning.fabric.utilities.data.AttributeDict"));
        Assert.That(reader.Entries.All(e => e.Name.StartsWith("model.")), Is.True);

        // The "model." prefix is a key map's business.
        var mapped = KeyMap.Identity.StripPrefix("model.").Apply(reader);
        Assert.That(mapped.Tensors.Select(t => t.Name), Does.Contain("encoder.layer.0.weight"));
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    [TestCase(4)]
    [TestCase(5)]
    public void InterpreterReadsEveryPickleProtocolAsPythonWroteIt(int protocol)
    {
        string file = $"plain_protocol{protocol}.pkl";
        var expected = JsonDocument.Parse(File.ReadAllText(Data("plain_expected.json"))).RootElement.GetProperty(file).GetString();
        using var stream = File.OpenRead(Data(file));
        var machine = new PickleMachine(new PickleInput(stream, 0, stream.Length), _ => throw new InvalidOperationException());
        Assert.That(Canonical(machine.Run()), Is.EqualTo(expected));
    }

    /// <summary>The same text form as make_pickles.py's canonical().</summary>
    static string Canonical(object? value) => value switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        long l => "i" + l,
        BigInteger big => "i" + big,
        double d => "f" + Convert.ToHexString(BitConverter.GetBytes(d)).ToLowerInvariant(),
        string s => "s" + Convert.ToHexString(Encoding.UTF8.GetBytes(s)).ToLowerInvariant(),
        byte[] bytes => "b" + Convert.ToHexString(bytes).ToLowerInvariant(),
        PyTuple t => "(" + string.Join(",", t.Select(Canonical)) + ")",
        PyList l => "[" + string.Join(",", l.Items.Select(Canonical)) + "]",
        PySet s => "{" + string.Join(",", s.Items.Select(Canonical)) + "}",
        PyDict d => "{" + string.Join(",", d.Items.Select(kv => Canonical(kv.Key) + ":" + Canonical(kv.Value))) + "}",
        _ => throw new AssertionException("unexpected value " + value),
    };

    [Test]
    public void NestedDictsAreFlattenedToDottedKeysUnderAWellKnownKey()
    {
        var w = new PickleWriter().Proto(2).EmptyDict().Mark();
        w.Str("config").EmptyDict().Mark().Str("hidden").Int(8).Str("name").Str("tiny").SetItems();
        w.Str("model").EmptyDict().Mark();
        w.Str("encoder").EmptyDict().Mark().Str("w").Tensor("0", "FloatStorage", 6, 0, new long[] { 2, 3 }, new long[] { 3, 1 }).SetItems();
        w.Str("heads").EmptyList().Mark().Tensor("1", "FloatStorage", 2, 0, new long[] { 2 }, new long[] { 1 })
            .Tensor("1", "FloatStorage", 2, 1, new long[] { 1 }, new long[] { 1 }).Appends();
        w.Str("step").Int(7);
        w.SetItems().SetItems().Stop();
        var storages = new Dictionary<string, byte[]>
        {
            ["0"] = arange(6f).bytes.ToArray(),
            ["1"] = tensor(new[] { 10f, 20f }).bytes.ToArray(),
        };
        var path = WriteFile("nested.pt", TorchSaveBuilder.Zip(w.ToArray(), storages));
        using var reader = new TorchPickleReader(path);
        Assert.That(reader.StateDictPath, Is.EqualTo("model"));
        Assert.That(reader.Entries.Select(e => e.Name), Is.EqualTo(new[] { "encoder.w", "heads.0", "heads.1" }));
        Assert.That(reader.Metadata["config"], Is.EqualTo("{'hidden': 8, 'name': 'tiny'}"));
        Assert.That(reader.Metadata["step"], Is.EqualTo("7"));
        using var second = reader.Read("heads.1");
        Assert.That(second.item<float>(), Is.EqualTo(20f));

        // An explicit choice: the root, flattened.
        using var whole = new TorchPickleReader(path, stateDictPath: "");
        Assert.That(whole.Entries.Select(e => e.Name), Is.EqualTo(new[] { "model.encoder.w", "model.heads.0", "model.heads.1" }));
        Assert.That(whole.Metadata["config.hidden"], Is.EqualTo("8"));
        var e = Assert.Throws<CheckpointException>(() => new TorchPickleReader(path, stateDictPath: "optimizer"));
        Assert.That(e!.Message, Does.Contain("optimizer").And.Contain("config, model"));
    }

    [Test]
    public void LoadsAPickleIntoAModelThroughAKeyMap()
    {
        var config = new BertConfig { VocabSize = 40, HiddenSize = 8, NumHiddenLayers = 1, NumAttentionHeads = 2, IntermediateSize = 16, MaxPositionEmbeddings = 12 };
        using var source = new BertModel(config);
        var state = source.state_dict().ToDictionary(kv => "module." + kv.Key, kv => kv.Value.detach().clone());
        foreach (var (format, bytes) in new[] { ("zip", TorchSaveBuilder.Zip(state)), ("legacy", TorchSaveBuilder.Legacy(state)) })
        {
            var path = WriteFile($"pytorch_model_{format}.bin", bytes);
            using var target = new BertModel(config);
            var report = ModelLoader.Load(target, path, KeyMap.Identity.StripPrefix("module."));
            Assert.That(report.IsComplete, Is.True, report.ToText());
            Assert.That(report.TensorsLoaded, Is.EqualTo(state.Count));
            foreach (var (key, value) in source.state_dict())
                Assert.That(target.state_dict()[key].equal(value).all().item<bool>(), Is.True, format + " " + key);
        }
    }

    [Test]
    public void ADirectoryWithPytorchModelBinOpens()
    {
        WriteFile("pytorch_model.bin", TorchSaveBuilder.Zip(new Dictionary<string, Tensor> { ["w"] = ones(2) }));
        using var reader = Checkpoint.Open(_directory);
        Assert.That(reader.Format, Is.EqualTo(TorchPickleReader.ZipFormat));
        Assert.That(reader.Entries.Single().Name, Is.EqualTo("w"));
    }

    [Test]
    public void ZIP64ArchivesRead()
    {
        var tensors = new Dictionary<string, Tensor> { ["a"] = arange(10f), ["b"] = ones(2, 2, dtype: ScalarType.Float16) };
        var (pickle, storages) = TorchSaveBuilder.StateDict(tensors);
        var path = WriteFile("zip64.pt", TorchSaveBuilder.Zip(pickle, storages, zip64: true));
        using var reader = Checkpoint.Open(path);
        using var a = reader.Read("a");
        Assert.That(a.equal(arange(10f)).all().item<bool>(), Is.True);
    }

    // ---- refused content ------------------------------------------------------------------------------------

    static byte[] StateDictWithValue(Action<PickleWriter> value, string key = "encoder.weight")
    {
        var w = new PickleWriter().Proto(2).OrderedDict().Mark();
        w.Str("ok.weight").Tensor("0", "FloatStorage", 4, 0, new long[] { 4 }, new long[] { 1 });
        w.Str(key);
        value(w);
        w.SetItems().Stop();
        return TorchSaveBuilder.Zip(w.ToArray(), new Dictionary<string, byte[]> { ["0"] = new byte[16] });
    }

    [TestCase("posix", "system")]
    [TestCase("builtins", "eval")]
    [TestCase("nt", "system")]
    [TestCase("subprocess", "Popen")]
    [TestCase("os", "system")]
    public void AForeignCallWhereATensorShouldBeFailsNamingTheGlobalAndRunsNothing(string module, string name)
    {
        var marker = Path.Combine(_directory, "pwned");
        var path = WriteFile("evil.bin", StateDictWithValue(w => w.Global(module, name).Str($"touch {marker}").Tuple1().Reduce()));
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain($"{module}.{name}").And.Contain("encoder.weight").And.Contain("evil.bin").And.Contain("nothing was called"));
        Assert.That(File.Exists(marker), Is.False);

        // The bare global (no call) is refused the same way.
        path = WriteFile("evil2.bin", StateDictWithValue(w => w.Global(module, name)));
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain($"{module}.{name}").And.Contain("encoder.weight"));
    }

    [Test]
    public void AForeignCallInsideATensorRebuildFails()
    {
        var w = new PickleWriter().Proto(2).OrderedDict().Mark().Str("w");
        w.Global("torch._utils", "_rebuild_tensor_v2").Mark().Global("posix", "system").Str("id").Tuple1().Reduce();
        w.Int(0).IntTuple(new long[] { 1 }).IntTuple(new long[] { 1 }).Bool(false).OrderedDict().Tuple().Reduce();
        var path = WriteFile("evil.pt", TorchSaveBuilder.Zip(w.SetItems().Stop().ToArray(), new Dictionary<string, byte[]>()));
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain("posix.system").And.Contain("_rebuild_tensor_v2"));
    }

    [Test]
    public void AWholePickledModuleIsRefusedWithAHint()
    {
        // torch.save(model): the root is an instance of the user's class, rebuilt with NEWOBJ + BUILD.
        var w = new PickleWriter().Proto(2).Global("__main__", "Net").Put(0).EmptyTuple().NewObj().EmptyDict().Mark()
            .Str("training").Bool(false).SetItems().Build().Stop();
        var path = WriteFile("model.pt", TorchSaveBuilder.Zip(w.ToArray(), new Dictionary<string, byte[]>()));
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain("__main__.Net").And.Contain("state_dict()"));
    }

    [Test]
    public void APlainPickleWithoutTorchsMagicIsRefused()
    {
        var path = WriteFile("plain.pkl", File.ReadAllBytes(Data("plain_protocol2.pkl")));
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain("plain.pkl").And.Contain("magic number"));
    }

    public static IEnumerable<TestCaseData> Bombs()
    {
        // Deep nesting: 200,000 lists inside each other.
        yield return new TestCaseData(new Action<PickleWriter>(w =>
        {
            for (int i = 0; i < 200_000; i++) w.EmptyList();
            for (int i = 0; i < 199_999; i++) w.Append();
        }), "nests deeper").SetName("DeepNesting");
        // A billion laughs: each list holds the previous one twice (2^64 leaves if expanded).
        yield return new TestCaseData(new Action<PickleWriter>(w =>
        {
            w.EmptyList().Put(0).Op('0');
            for (int i = 1; i <= 20; i++) w.EmptyList().Mark().Get(i - 1).Get(i - 1).Appends().Put(i).Raw(i < 20 ? new[] { (byte)'0' } : Array.Empty<byte>());
        }), "appears twice").SetName("MemoLaughs");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Op('X').Raw(0xff, 0xff, 0xff, 0x7f)), "declares 2147483647 bytes").SetName("HugeString");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Raw(0x8e).Raw(BitConverter.GetBytes(1L << 62))), "declares").SetName("HugeBytes8");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Raw(0x8b).Raw(BitConverter.GetBytes(int.MaxValue))), "declares").SetName("HugeLong4");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Raw(0x95).Raw(BitConverter.GetBytes(1L << 40)).None()), "frame").SetName("HugeFrame");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Op('L').Raw(Encoding.ASCII.GetBytes(new string('9', 100_000) + "L\n"))), "digits").SetName("HugeTextInteger");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Get(200)), "memo slot 200").SetName("UnsetMemo");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Op('j').Raw(0xff, 0xff, 0xff, 0xff)), "never written").SetName("FarMemo");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Op('r').Raw(0xff, 0xff, 0xff, 0x7f).Op('0').Op('0').Op('0').Op('0')), "empty stack").SetName("PutThenUnderflow");
        yield return new TestCaseData(new Action<PickleWriter>(w =>
        {
            for (int i = 0; i < 100_000; i++) w.Mark();
        }), "stack").SetName("UnclosedMarks");
        yield return new TestCaseData(new Action<PickleWriter>(w =>
        {
            w.EmptyDict().EmptyTuple();
            for (int i = 0; i < 39; i++) w.Tuple1();
            w.None().SetItem();
        }), "dict key").SetName("DeepTupleKey");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Tensor("0", "FloatStorage", 1L << 50, 0, new long[] { 4 }, new long[] { 1 })), "declares").SetName("HugeStorage");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Tensor("0", "FloatStorage", 4, 0, new long[] { 1L << 20, 1L << 20 }, new long[] { 0, 0 })), "more than the whole file").SetName("ExpandedView");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Tensor("0", "FloatStorage", 4, 2, new long[] { 2, 2 }, new long[] { 2, 1 })), "reaches element").SetName("ViewPastStorage");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Tensor("0", "FloatStorage", 4, 0, new long[] { 1L << 40, 1L << 40 }, new long[] { 1L << 40, 1 })), "too large").SetName("OverflowingShape");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Tensor("0", "FloatStorage", 4, 0, new long[] { 1L << 20, 2 }, new long[] { 1L << 62, 1 })), "overflows").SetName("OverflowingStrides");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Tensor("c", "ComplexFloatStorage", 2, 0, new long[] { 2 }, new long[] { 1 })), "not supported").SetName("UnsupportedDtype");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Tensor("7", "FloatStorage", 4, 0, new long[] { 4 }, new long[] { 1 })), "not in the file").SetName("MissingStorage");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Raw(0x82, 1)), "extension registry").SetName("ExtensionCode");
        yield return new TestCaseData(new Action<PickleWriter>(w => w.Raw(0xfe)), "unknown pickle opcode").SetName("UnknownOpcode");
    }

    [TestCaseSource(nameof(Bombs))]
    public void PickleBombsFailCleanlyWithoutAllocatingBeyondTheFile(Action<PickleWriter> value, string expected)
    {
        var path = WriteFile("bomb.pt", StateDictWithValue(value));
        long fileLength = new FileInfo(path).Length;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Catch<CheckpointException>(() =>
        {
            using var reader = Checkpoint.Open(path);
            foreach (var entry in reader.Entries) reader.Read(entry.Name).Dispose();
        });
        long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        Assert.That(e!.Message, Does.Contain(expected).IgnoreCase.And.Contain("bomb.pt"));
        Assert.That(watch.Elapsed.TotalSeconds, Is.LessThan(10));
        // Managed memory for the pickle structure is proportional to the pickle (a few dozen bytes per opcode).
        Assert.That(allocated, Is.LessThan(100 * fileLength + (4 << 20)), $"allocated {allocated} bytes for a {fileLength}-byte file");
    }

    [Test]
    public void ForeignObjectsAndLaughsOutsideTheStateDictStayInert()
    {
        var w = new PickleWriter().Proto(2).EmptyDict().Mark();
        w.Str("state_dict").OrderedDict().Mark().Str("w").Tensor("0", "FloatStorage", 2, 0, new long[] { 2 }, new long[] { 1 }).SetItems();
        w.Str("hyper_parameters").Global("posix", "system").Str("id").Tuple1().Reduce();
        w.Str("laughs").EmptyList().Put(0).Op('0');
        for (int i = 1; i <= 64; i++) w.EmptyList().Mark().Get(i - 1).Get(i - 1).Appends().Put(i).Raw(i < 64 ? new[] { (byte)'0' } : Array.Empty<byte>());
        w.SetItems().Stop();
        var path = WriteFile("inert.ckpt", TorchSaveBuilder.Zip(w.ToArray(), new Dictionary<string, byte[]> { ["0"] = new byte[8] }));
        using var reader = Checkpoint.Open(path);
        Assert.That(reader.Entries.Single().Name, Is.EqualTo("w"));
        Assert.That(reader.Metadata["hyper_parameters"], Does.Contain("posix.system object, not executed"));
        Assert.That(reader.Metadata["laughs"].Length, Is.LessThanOrEqualTo(300));
        Assert.That(reader.Metadata["pickle.foreign_globals"], Does.Contain("posix.system"));
    }

    [Test]
    public void ZipArchiveProblemsNameWhatIsWrong()
    {
        var tensors = new Dictionary<string, Tensor> { ["w"] = arange(4f) };
        var (pickle, storages) = TorchSaveBuilder.StateDict(tensors);

        var path = WriteFile("nopickle.pt", TorchSaveBuilder.ZipFile(new[] { ("archive/version", "3\n"u8.ToArray()) }));
        Assert.That(Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose())!.Message, Does.Contain("without data.pkl"));

        path = WriteFile("deflated.pt", TorchSaveBuilder.Zip(pickle, storages, deflate: new HashSet<string> { "archive/data/0" }));
        Assert.That(Assert.Throws<UnsupportedCheckpointException>(() => Checkpoint.Open(path).Dispose())!.Message, Does.Contain("archive/data/0").And.Contain("compressed"));

        path = WriteFile("short.pt", TorchSaveBuilder.Zip(pickle, new Dictionary<string, byte[]> { ["0"] = new byte[12] }));
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain("'w'").And.Contain("16 bytes").And.Contain("12 bytes"));

        path = WriteFile("twice.pt", TorchSaveBuilder.ZipFile(new[] { ("a/data.pkl", pickle), ("b/data.pkl", pickle) }));
        Assert.That(Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose())!.Message, Does.Contain("several data.pkl"));
    }

    /// <summary>A scripted module as torch.jit.save pickles it: GLOBAL class, EMPTY_TUPLE, NEWOBJ, then its attribute dict and BUILD.</summary>
    internal static PickleWriter ScriptModule(PickleWriter w, string module, string cls, Action<PickleWriter> attributes)
    {
        w.Global(module, cls).EmptyTuple().NewObj().EmptyDict().Mark().Str("training").Bool(false);
        attributes(w);
        return w.SetItems().Build();
    }

    /// <summary>The members of a small archive shaped like openai/CLIP's released .pt files (torch.jit.save of the model).</summary>
    internal static List<(string Name, byte[] Data)> ClipLikeScriptArchive()
    {
        var w = new PickleWriter().Proto(2);
        ScriptModule(w, "__torch__.clip.model", "CLIP", root =>
        {
            root.Str("positional_embedding").Tensor("0", "FloatStorage", 6, 0, new long[] { 3, 2 }, new long[] { 2, 1 });
            root.Str("visual");
            ScriptModule(root, "__torch__.clip.model", "VisionTransformer", visual =>
            {
                visual.Str("input_resolution").Int(224);
                visual.Str("conv1");
                ScriptModule(visual, "__torch__.torch.nn.modules.conv", "Conv2d", conv =>
                    conv.Str("weight").Tensor("1", "HalfStorage", 4, 0, new long[] { 1, 1, 2, 2 }, new long[] { 4, 4, 2, 1 }).Str("bias").None());
                visual.Str("attn");
                ScriptModule(visual, "__torch__.torch.nn.modules.activation", "MultiheadAttention", attn =>
                    attn.Str("in_proj_weight").Tensor("2", "FloatStorage", 2, 0, new long[] { 2 }, new long[] { 1 })
                        .Str("dims").Global("torch.jit._pickle", "build_intlist").EmptyList().Mark().Int(1).Int(2).Appends().Tuple1().Reduce());
            });
            root.Str("logit_scale").Tensor("3", "FloatStorage", 1, 0, Array.Empty<long>(), Array.Empty<long>());
        });
        var storages = new Dictionary<string, byte[]>
        {
            ["0"] = arange(6f).bytes.ToArray(), ["1"] = ones(4, dtype: ScalarType.Float16).bytes.ToArray(),
            ["2"] = tensor(new[] { 5f, 6f }).bytes.ToArray(), ["3"] = tensor(new[] { 4.6f }).bytes.ToArray(),
        };
        var members = new List<(string, byte[])> { ("ViT-B-32/data.pkl", w.Stop().ToArray()), ("ViT-B-32/constants.pkl", new PickleWriter().Proto(2).EmptyTuple().Stop().ToArray()),
            ("ViT-B-32/code/__torch__/clip/model.py", "class CLIP: ..."u8.ToArray()) };
        members.AddRange(storages.Select(kv => ("ViT-B-32/data/" + kv.Key, kv.Value)));
        return members;
    }

    [Test]
    public void TorchScriptArchivesYieldTheTensorsOfTheirModuleTree()
    {
        var members = ClipLikeScriptArchive();
        var path = WriteFile("ViT-B-32.pt", TorchSaveBuilder.ZipFile(members));
        using var reader = Checkpoint.Open(path);
        Assert.That(reader.Format, Is.EqualTo(TorchPickleReader.TorchScriptFormat));
        Assert.That(reader.Entries.Select(e => e.Name), Is.EqualTo(new[] { "positional_embedding", "visual.conv1.weight", "visual.attn.in_proj_weight", "logit_scale" }));
        Assert.That(reader.Metadata["pickle.state_dict"], Does.Contain("__torch__.clip.model.CLIP"));
        using var conv = reader.Read("visual.conv1.weight");
        Assert.That(conv.dtype, Is.EqualTo(ScalarType.Float16));
        using var scale = reader.Read("logit_scale");
        Assert.That(scale.item<float>(), Is.EqualTo(4.6f));

        // A module tree that shares modules exponentially is stopped by the budget, not expanded.
        var bomb = new PickleWriter().Proto(2);
        bomb.Global("__torch__", "M").EmptyTuple().NewObj().EmptyDict().Mark().Str("w").Tensor("0", "FloatStorage", 6, 0, new long[] { 6 }, new long[] { 1 }).SetItems().Build().Put(0).Op('0');
        for (int i = 1; i <= 40; i++)
            bomb.Global("__torch__", "M").EmptyTuple().NewObj().EmptyDict().Mark().Str("a").Get(i - 1).Str("b").Get(i - 1).SetItems().Build().Put(i).Raw(i < 40 ? new[] { (byte)'0' } : Array.Empty<byte>());
        members[0] = ("ViT-B-32/data.pkl", bomb.Stop().ToArray());
        path = WriteFile("bomb.pt", TorchSaveBuilder.ZipFile(members));
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain("nests deeper").Or.Contain("more than a million"));
        Assert.That(e.Message, Does.Not.Contain("libtorch").And.Not.Contain("cannot read"), "a bomb must not fall back to torch.jit.load");
    }

    /// <summary>A TorchScript-shaped archive whose data.pkl is <paramref name="dataPkl"/>, with the rest of the CLIP-like members.</summary>
    string ScriptArchiveWith(string name, byte[] dataPkl)
    {
        var members = ClipLikeScriptArchive();
        members[0] = (members[0].Name, dataPkl);
        return WriteFile(name, TorchSaveBuilder.ZipFile(members));
    }

    [Test]
    public void TorchScriptArchivesCallingForeignGlobalsAreRefusedWithoutFallingBackToJitLoad()
    {
        // posix.system as a module's attribute: refused naming the global and the attribute, never handed to libtorch.
        var w = new PickleWriter().Proto(2);
        ScriptModule(w, "__torch__.clip.model", "CLIP", root =>
            root.Str("positional_embedding").Tensor("0", "FloatStorage", 6, 0, new long[] { 3, 2 }, new long[] { 2, 1 })
                .Str("visual").Global("posix", "system").Str("echo pwned").Tuple1().Reduce());
        var path = ScriptArchiveWith("attribute.pt", w.Stop().ToArray());
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain("posix.system").And.Contain("'visual'").And.Contain("attribute.pt").And.Contain("refused"));
        Assert.That(e.Message, Does.Not.Contain("libtorch").And.Not.Contain("cannot read"));
        Assert.That(e.InnerException, Is.Null, "no fallback was tried");

        // posix.system as the archive's root object.
        w = new PickleWriter().Proto(2).Global("posix", "system").Str("echo pwned").Tuple1().Reduce();
        path = ScriptArchiveWith("root.pt", w.Stop().ToArray());
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain("posix.system").And.Contain("root.pt").And.Contain("refused"));
        Assert.That(e.Message, Does.Not.Contain("libtorch"));

        // builtins.eval where a weight should be.
        w = new PickleWriter().Proto(2);
        ScriptModule(w, "__torch__.clip.model", "CLIP", root => root.Str("logit_scale").Global("builtins", "eval").Str("1+1").Tuple1().Reduce());
        path = ScriptArchiveWith("eval.pt", w.Stop().ToArray());
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain("builtins.eval").And.Contain("'logit_scale'"));

        // Something unsupported (a quantized tensor) earlier in the tree than a foreign global: still refused, no fallback.
        w = new PickleWriter().Proto(2);
        ScriptModule(w, "__torch__.clip.model", "CLIP", root =>
            root.Str("quantized").Global("torch._utils", "_rebuild_qtensor").EmptyTuple().Reduce()
                .Str("visual").Global("posix", "system").Str("echo pwned").Tuple1().Reduce());
        path = ScriptArchiveWith("mixed.pt", w.Stop().ToArray());
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain("posix.system").And.Contain("refused").And.Not.Contain("libtorch"));
        Assert.That(e.InnerException, Is.Null, "no fallback was tried");

        // Corruption (a truncated pickle) is an error of its own, not a reason to try libtorch.
        var good = ClipLikeScriptArchive()[0].Data;
        path = ScriptArchiveWith("truncated.pt", good[..(good.Length / 2)]);
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain("truncated.pt").And.Not.Contain("libtorch"));
        Assert.That(e.InnerException, Is.Null);
    }

    [Test]
    public void TorchScriptArchivesFallBackToJitLoadOnlyForWhatTheReaderDoesNotSupport()
    {
        // A compressed data.pkl is unsupported, not refused: libtorch's loader is tried (and fails on this fake archive's code).
        var members = ClipLikeScriptArchive();
        var path = WriteFile("deflated.pt", TorchSaveBuilder.ZipFile(members, deflate: new HashSet<string> { members[0].Name }));
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain("TorchScript archive this library cannot read").And.Contain("compressed"));
        Assert.That(e.InnerException, Is.TypeOf<UnsupportedCheckpointException>());
    }

    [Test]
    public void LegacyFileProblemsNameWhatIsWrong()
    {
        var tensors = new Dictionary<string, Tensor> { ["w"] = arange(4f), ["b"] = ones(3) };
        var good = TorchSaveBuilder.Legacy(tensors);
        using (var reader = Checkpoint.Open(WriteFile("good.pt", good)))
        {
            Assert.That(reader.Format, Is.EqualTo(TorchPickleReader.LegacyFormat));
            using var w = reader.Read("w");
            Assert.That(w.equal(arange(4f)).all().item<bool>(), Is.True);
        }
        var path = WriteFile("truncated.pt", good[..^5]);
        Assert.That(Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose())!.Message, Does.Contain("truncated"));
        path = WriteFile("trailing.pt", good.Concat(new byte[3]).ToArray());
        Assert.That(Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose())!.Message, Does.Contain("3 bytes after the last storage"));
    }
}
