"""Writes the pickle test files in this folder with Python's own pickler (standard library only, no torch).

A stand-in `torch` module provides the globals torch.save references (torch._utils._rebuild_tensor_v2, the
storage types), and the files are laid out as torch.save lays them out: the zip format (<name>/data.pkl,
<name>/data/<key>, <name>/byteorder, <name>/version) and the legacy format (magic number, protocol version,
system info, the pickle, the storage key list, then each storage as an int64 element count and raw bytes).
Every tensor is also written to <file>.expected.safetensors (plain contiguous copies) for the tests to compare.

Run: python3 make_pickles.py   (outputs are committed; the tests never run Python)
"""
import collections
import io
import json
import math
import os
import pickle
import struct
import sys
import types
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- a stand-in torch ------------------------------------------------------------------------------------------
torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
torch._utils = torch_utils
sys.modules["torch"] = torch
sys.modules["torch._utils"] = torch_utils


def _rebuild_tensor_v2(*args):
    raise AssertionError("never called")


def _rebuild_parameter(*args):
    raise AssertionError("never called")


for fn in (_rebuild_tensor_v2, _rebuild_parameter):
    fn.__module__ = "torch._utils"
    setattr(torch_utils, fn.__name__, fn)

DTYPES = {  # name: (storage class name, struct format or None, element size, safetensors dtype)
    "f32": ("FloatStorage", "f", 4, "F32"),
    "f64": ("DoubleStorage", "d", 8, "F64"),
    "f16": ("HalfStorage", "e", 2, "F16"),
    "bf16": ("BFloat16Storage", None, 2, "BF16"),
    "i64": ("LongStorage", "q", 8, "I64"),
    "i32": ("IntStorage", "i", 4, "I32"),
    "i16": ("ShortStorage", "h", 2, "I16"),
    "i8": ("CharStorage", "b", 1, "I8"),
    "u8": ("ByteStorage", "B", 1, "U8"),
    "bool": ("BoolStorage", "?", 1, "BOOL"),
}
for storage_name, *_ in DTYPES.values():
    cls = type(storage_name, (), {})
    cls.__module__ = "torch"
    setattr(torch, storage_name, cls)

# Lightning's AttributeDict and other foreign objects, under their real module names.
lightning_data = types.ModuleType("lightning.fabric.utilities.data")
sys.modules["lightning"] = types.ModuleType("lightning")
sys.modules["lightning.fabric"] = types.ModuleType("lightning.fabric")
sys.modules["lightning.fabric.utilities"] = types.ModuleType("lightning.fabric.utilities")
sys.modules["lightning.fabric.utilities.data"] = lightning_data


class AttributeDict(dict):
    pass


AttributeDict.__module__ = "lightning.fabric.utilities.data"
lightning_data.AttributeDict = AttributeDict


def encode(values, dtype):
    storage_name, fmt, size, _ = DTYPES[dtype]
    if dtype == "bf16":
        return b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0])[2:] for v in values)
    return struct.pack("<" + fmt * len(values), *values)


class Storage:
    def __init__(self, key, dtype, values):
        self.key, self.dtype, self.values = key, dtype, list(values)

    @property
    def data(self):
        return encode(self.values, self.dtype)


class Tensor:
    """A strided view of a storage; pickles exactly as torch.Tensor does (via _rebuild_tensor_v2)."""

    def __init__(self, storage, offset, size, stride, parameter=False):
        self.storage, self.offset, self.size, self.stride, self.parameter = storage, offset, tuple(size), tuple(stride), parameter

    def __reduce_ex__(self, protocol):
        plain = Tensor(self.storage, self.offset, self.size, self.stride)
        if self.parameter:
            return (_rebuild_parameter, (plain, True, collections.OrderedDict()))
        return (_rebuild_tensor_v2, (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))

    def values(self):
        out = []

        def walk(dim, at):
            if dim == len(self.size):
                out.append(self.storage.values[at])
                return
            for i in range(self.size[dim]):
                walk(dim + 1, at + i * self.stride[dim])

        if all(s > 0 for s in self.size):
            walk(0, self.offset)
        return out


def contiguous(key, dtype, shape, values):
    stride, acc = [], 1
    for s in reversed(shape):
        stride.insert(0, acc)
        acc *= s
    return Tensor(Storage(key, dtype, values), 0, shape, stride)


def persistent_id_zip(obj):
    if isinstance(obj, Storage):
        return ("storage", getattr(torch, DTYPES[obj.dtype][0]), obj.key, "cpu", len(obj.values))
    return None


def collect_storages(obj, found):
    if isinstance(obj, Tensor):
        found[obj.storage.key] = obj.storage
    elif isinstance(obj, dict):
        for v in obj.values():
            collect_storages(v, found)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            collect_storages(v, found)
    return found


def save_zip(path, obj, protocol=2, archive="archive", byteorder="little"):
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=protocol)
    pickler.persistent_id = persistent_id_zip
    pickler.dump(obj)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(archive + "/data.pkl", buffer.getvalue())
        z.writestr(archive + "/byteorder", byteorder)
        for key, storage in sorted(collect_storages(obj, {}).items()):
            data = storage.data
            if byteorder == "big":
                size = DTYPES[storage.dtype][2]
                data = b"".join(data[i:i + size][::-1] for i in range(0, len(data), size))
            z.writestr(archive + "/data/" + key, data)
        z.writestr(archive + "/version", "3\n")


def save_legacy(path, obj, protocol=2):
    storages = collect_storages(obj, {})

    def persistent_id(o):
        if isinstance(o, Storage):
            return ("storage", getattr(torch, DTYPES[o.dtype][0]), o.key, "cpu", len(o.values), None)
        return None

    with open(path, "wb") as f:
        pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=protocol)
        pickle.dump(1001, f, protocol=protocol)
        pickle.dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=protocol)
        pickler = pickle.Pickler(f, protocol=protocol)
        pickler.persistent_id = persistent_id
        pickler.dump(obj)
        keys = sorted(storages)
        pickle.dump(keys, f, protocol=protocol)
        for key in keys:
            f.write(struct.pack("<q", len(storages[key].values)))
            f.write(storages[key].data)


def save_expected(path, tensors):
    header, data = {}, b""
    for name, t in tensors.items():
        values = t.values()
        raw = encode(values, t.storage.dtype)
        header[name] = {"dtype": DTYPES[t.storage.dtype][3], "shape": list(t.size), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def state_dict(prefix=""):
    sd = collections.OrderedDict()
    sd[prefix + "embeddings.weight"] = contiguous("0", "f32", (5, 3), [0.25 * i - 1.5 for i in range(15)])
    big = Storage("1", "f32", [math.sin(i) for i in range(24)])
    sd[prefix + "encoder.layer.0.weight"] = Tensor(big, 0, (4, 3), (1, 4))  # a transpose (non-contiguous)
    sd[prefix + "encoder.layer.0.bias"] = Tensor(big, 20, (3,), (1,))  # a slice at an offset
    sd[prefix + "encoder.layer.1.weight"] = Tensor(big, 1, (2, 2), (12, 2), parameter=True)  # strided, as a Parameter
    sd[prefix + "decoder.weight"] = sd[prefix + "embeddings.weight"]  # tied: same storage
    sd[prefix + "half"] = contiguous("2", "f16", (2, 3), [0.5, -1.0, 2.0, 1024.0, -0.125, 3.5])
    sd[prefix + "bhalf"] = contiguous("3", "bf16", (4,), [1.0, -2.5, 0.15625, 96.0])
    sd[prefix + "double"] = contiguous("4", "f64", (2,), [math.pi, -1e-300])
    sd[prefix + "ids"] = contiguous("5", "i64", (3,), [-(2 ** 40), 0, 7])
    sd[prefix + "int32"] = contiguous("6", "i32", (2,), [-5, 2 ** 30])
    sd[prefix + "int16"] = contiguous("7", "i16", (2,), [-300, 300])
    sd[prefix + "int8"] = contiguous("8", "i8", (2,), [-128, 127])
    sd[prefix + "bytes"] = contiguous("9", "u8", (2,), [0, 255])
    sd[prefix + "mask"] = contiguous("10", "bool", (3,), [True, False, True])
    sd[prefix + "scalar"] = contiguous("11", "f32", (), [42.0])
    sd[prefix + "empty"] = Tensor(Storage("12", "f32", []), 0, (0, 4), (4, 1))
    return sd


def plain_object():
    # Every kind of value checkpoints carry outside their tensors.
    return {
        "none": None, "true": True, "false": False, "small": 7, "negative": -300, "int32": 2 ** 31 - 1, "int64": -(2 ** 62),
        "big": 2 ** 100, "float": 0.1, "nan_free": -2.5e-300, "text": "héllo \u20ac\n\"'\\", "bytes": b"\x00\x01\xff",
        "tuple": (1, (2, 3), ()), "list": [1, [2, [3]], []], "set": {5}, "frozenset": frozenset([6]), "dict_int_keys": {0: "a", 1: "b"},
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]), "shared": None,
    }


def canonical(v):
    """A text form of a value that the C# test computes the same way from the interpreter's result."""
    if v is None:
        return "None"
    if v is True or v is False:
        return str(v)
    if isinstance(v, int):
        return "i" + str(v)
    if isinstance(v, float):
        return "f" + struct.pack("<d", v).hex()
    if isinstance(v, str):
        return "s" + v.encode("utf-8").hex()
    if isinstance(v, bytes):
        return "b" + v.hex()
    if isinstance(v, tuple):
        return "(" + ",".join(canonical(x) for x in v) + ")"
    if isinstance(v, list):
        return "[" + ",".join(canonical(x) for x in v) + "]"
    if isinstance(v, (set, frozenset)):
        return "{" + ",".join(canonical(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ",".join(canonical(k) + ":" + canonical(x) for k, x in v.items()) + "}"
    raise TypeError(type(v))


def main():
    # Plain pickles in every protocol, for the interpreter itself.
    obj = plain_object()
    shared = [1, 2]
    obj["shared"] = (shared, shared)  # memo: the same list twice
    expected = {}
    for protocol in range(0, 6):
        name = f"plain_protocol{protocol}.pkl"
        with open(os.path.join(HERE, name), "wb") as f:
            pickle.dump(obj, f, protocol=protocol)
        expected[name] = canonical(obj)
    with open(os.path.join(HERE, "plain_expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)

    # torch.save zip files: protocol 2 (the default) under a custom archive name; protocol 4; big-endian.
    sd = state_dict()
    save_zip(os.path.join(HERE, "zip_protocol2.pt"), sd, protocol=2, archive="my_model-v1")
    save_zip(os.path.join(HERE, "zip_protocol4.pt"), sd, protocol=4)
    save_zip(os.path.join(HERE, "zip_bigendian.pt"), sd, protocol=2, byteorder="big")
    save_legacy(os.path.join(HERE, "legacy_protocol2.pt"), sd, protocol=2)
    save_expected(os.path.join(HERE, "state_dict.expected.safetensors"), sd)

    # A Lightning-style checkpoint: the state dict under "state_dict" with a "model." prefix, optimizer states
    # holding tensors, and hyper-parameters that are foreign objects (never called by the reader).
    import argparse
    lsd = state_dict("model.")
    step = contiguous("100", "f32", (), [12.0])
    ckpt = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.1.0",
        "state_dict": lsd,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 4}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'val_loss'}": {"best_model_score": step, "best_model_path": "/tmp/x.ckpt"}},
        "optimizer_states": [{"state": {0: {"step": step, "exp_avg": contiguous("101", "f32", (5, 3), [0.0] * 15)}},
                              "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "params": [0]}]}],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": AttributeDict(lr=0.001, backbone="vit", args=argparse.Namespace(layers=4, name="tiny")),
    }
    save_zip(os.path.join(HERE, "lightning.ckpt"), ckpt, protocol=2, archive="lightning")
    save_expected(os.path.join(HERE, "lightning.expected.safetensors"), lsd)


if __name__ == "__main__":
    main()
