"""Writes clip-vit-torchscript.pt: the clip-vit fixture weights inside a TorchScript archive.

The openai/CLIP release files (ViT-B-32.pt, ...) are TorchScript archives whose state_dict carries the CLIP
weights plus three int entries (input_resolution, context_length, vocab_size). This script rebuilds that shape
from the golden fixture checkpoint so the C# loader can be tested on a real TorchScript file without the
release weights. Run with any PyTorch (made with Debian's python3-torch 1.13):

    python3 make_torchscript_archive.py ../../../data/fixtures/clip-vit/model.safetensors clip-vit-torchscript.pt
"""
import json
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "I64": torch.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    body = data[8 + length:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        tensors[name] = torch.frombuffer(bytearray(body[start:end]), dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"]).clone()
    return tensors


class Holder(torch.nn.Module):
    """A node of the module tree; only the root is called."""

    def forward(self):
        return 0


class Root(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.logit_scale.exp()


def main(source, target):
    root = Root()
    for key, value in read_safetensors(source).items():
        *path, leaf = key.split(".")
        node = root
        for part in path:
            if not hasattr(node, part):
                node.add_module(part, Holder())
            node = getattr(node, part)
        node.register_parameter(leaf, torch.nn.Parameter(value, requires_grad=False))
    for name, value in (("input_resolution", 16), ("context_length", 16), ("vocab_size", 120)):
        root.register_buffer(name, torch.tensor(value))
    torch.jit.save(torch.jit.script(root), target)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
