"""Extra two-stream fixtures beside ../shared/fixtures: other co-attention placements, frozen layers, out-of-order
ids, fast mode, no co-attention, and an LXMERT without relationship layers.

ViLBERT fixtures run the original facebookresearch/vilbert-multi-task vilbert/vilbert.py (commit f22b84a) given on
the command line; only its `from .utils import PreTrainedModel` is replaced by a stub with the two members the model
uses (config storage and weight tying, as in utils.py). The LXMERT fixture runs the original airsplay/lxmert
src/lxrt/modeling.py (commit 0db1182) with its module-global VISUAL_CONFIG set, inside a VQAModel-shaped container
(lxrt_encoder.model = LXRTFeatureExtraction(mode 'x'), logit_fc as in src/tasks/vqa_model.py); only its
`from .file_utils import cached_path` (downloads) is stubbed. Same fixture format as ../shared/fixtures. Weights:
the reference initialisation with initializer_range 0.2, then norm weights/biases + N(0, 0.1) and other biases
+ N(0, 0.05). CPU, float32, one thread. safetensors files are written directly when the package is missing.

Usage: python3 generate.py PATH/TO/vilbert.py PATH/TO/lxrt/modeling.py OUT_DIR
"""
import json
import os
import shutil
import struct
import sys
import tempfile
import traceback

import torch

try:
    from safetensors.torch import save_file
except ImportError:
    def save_file(tensors, path):
        """The safetensors layout: u64 header length, JSON header, raw little-endian data."""
        names = {"float32": "F32", "int64": "I64", "bool": "BOOL"}
        header, blobs, offset = {}, [], 0
        for key, value in tensors.items():
            array = value.detach().cpu().contiguous().numpy()
            data = array.tobytes()
            header[key] = {"dtype": names[str(array.dtype)], "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
            blobs.append(data)
            offset += len(data)
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * ((8 - len(text) % 8) % 8)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for data in blobs:
                f.write(data)

torch.set_num_threads(1)
VILBERT_PY, LXMERT_PY, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
SUMMARY = {}

UTILS_STUB = '''
import torch.nn as nn

class PreTrainedModel(nn.Module):
    def __init__(self, config, *inputs, **kwargs):
        super().__init__()
        self.config = config

    def _tie_or_clone_weights(self, first_module, second_module):
        first_module.weight = second_module.weight
'''


def load_vilbert():
    try:  # vilbert.py imports it (for a commented-out classifier); newer torch may only have the parametrizations one
        import torch.nn.utils.weight_norm  # noqa: F401
    except ImportError:
        import types
        stub = types.ModuleType("torch.nn.utils.weight_norm")
        stub.weight_norm = None
        sys.modules["torch.nn.utils.weight_norm"] = stub
    root = tempfile.mkdtemp()
    package = os.path.join(root, "vilbert_reference")
    os.makedirs(package)
    shutil.copy(VILBERT_PY, os.path.join(package, "vilbert.py"))
    open(os.path.join(package, "__init__.py"), "w").close()
    with open(os.path.join(package, "utils.py"), "w") as f:
        f.write(UTILS_STUB)
    sys.path.insert(0, root)
    import vilbert_reference.vilbert as vilbert
    return vilbert


def perturb(model, seed):
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for _, module in model.named_modules():
            norm = isinstance(module, torch.nn.LayerNorm) or "norm" in type(module).__name__.lower()
            for pname, p in module.named_parameters(recurse=False):
                if norm:
                    p.add_(torch.randn(p.shape, generator=g) * 0.1)
                elif pname == "bias":
                    p.add_(torch.randn(p.shape, generator=g) * 0.05)


def save(name, family, reference, model, config_dict, extra, inputs, outputs, description, seed):
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, os.path.join(folder, "model.safetensors"))
    save_file({k: v.contiguous() for k, v in inputs.items()}, os.path.join(folder, "inputs.safetensors"))
    save_file({k: v.detach().float().contiguous().clone() for k, v in outputs.items()}, os.path.join(folder, "outputs.safetensors"))
    fixture = {"family": family, "reference": reference, "config": config_dict, "checkpoint": "model.safetensors",
               "inputs": "inputs.safetensors", "outputs": "outputs.safetensors", "tolerance": {"atol": 1e-4, "rtol": 1e-4},
               "seed": seed, "description": description, "torch": torch.__version__,
               "tensors": {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in list(inputs.items()) + list(outputs.items())}}
    fixture.update(extra)
    with open(os.path.join(folder, "fixture.json"), "w") as f:
        json.dump(fixture, f, indent=1, default=str)
    SUMMARY[name] = "ok"


def vilbert_fixture(vilbert, name, seed, config_args, text_batch, image_batch, length, regions, description):
    torch.manual_seed(seed)
    config = vilbert.BertConfig(config_args.pop("vocab_size"), initializer_range=0.2, **config_args)
    model = vilbert.VILBertForVLTasks(config, num_labels=3).eval()
    perturb(model, seed)
    captured = {}

    def hook(key, pick):
        def run(module, args, output):
            captured[key] = pick(output).detach().clone()
        return run

    bert = model.bert
    bert.embeddings.register_forward_hook(hook("embedding_output_t", lambda o: o))
    bert.v_embeddings.register_forward_hook(hook("embedding_output_v", lambda o: o))
    for i, layer in enumerate(bert.encoder.layer):
        layer.register_forward_hook(hook(f"t_layer.{i}", lambda o: o[0]))
    for i, layer in enumerate(bert.encoder.v_layer):
        layer.register_forward_hook(hook(f"v_layer.{i}", lambda o: o[0]))
    for i, layer in enumerate(bert.encoder.c_layer):
        layer.register_forward_hook(hook(f"c_layer.{i}.v", lambda o: o[0]))
        layer.register_forward_hook(hook(f"c_layer.{i}.t", lambda o: o[1]))

    input_txt = torch.randint(1, config.vocab_size, (text_batch, length))
    attention_mask = torch.ones(text_batch, length, dtype=torch.long)
    for b in range(text_batch):
        real = length - (b * 2) % (length - 2)
        attention_mask[b, real:] = 0
        input_txt[b, real:] = 0
    token_type_ids = torch.randint(0, 2, (text_batch, length)) * attention_mask
    input_imgs = torch.randn(image_batch, regions, config.v_feature_size)
    image_loc = torch.rand(image_batch, regions, 5)
    image_attention_mask = torch.ones(image_batch, regions, dtype=torch.long)
    for b in range(image_batch):
        real = regions - b % (regions - 1)
        image_attention_mask[b, real:] = 0
        input_imgs[b, real:] = 0
        image_loc[b, real:] = 0
    task_ids = torch.randint(0, 20, (text_batch, 1)) if config.task_specific_tokens else None
    inputs = dict(input_txt=input_txt, input_imgs=input_imgs, image_loc=image_loc, token_type_ids=token_type_ids,
                  attention_mask=attention_mask, image_attention_mask=image_attention_mask)
    if task_ids is not None:
        inputs["task_ids"] = task_ids
    with torch.no_grad():
        seq_t, seq_v, pooled_t, pooled_v, _ = bert(input_txt, input_imgs, image_loc, token_type_ids, attention_mask,
                                                    image_attention_mask, None, task_ids, output_all_encoded_layers=False)
        heads = model(input_txt, input_imgs, image_loc, token_type_ids, attention_mask, image_attention_mask, None, task_ids)
    names = ["vil_prediction", "vil_prediction_gqa", "vil_logit", "vil_binary_prediction", "vil_tri_prediction",
             "vision_prediction", "vision_logit", "linguisic_prediction", "linguisic_logit"]
    outputs = dict(sequence_output_t=seq_t, sequence_output_v=seq_v, pooled_output_t=pooled_t, pooled_output_v=pooled_v)
    outputs.update(dict(zip(names, heads[:9])))
    outputs.update(captured)
    save(name, "vilbert", {"repo": "facebookresearch/vilbert-multi-task", "path": "vilbert/vilbert.py", "class": "VILBertForVLTasks",
                           "commit": "f22b84a9918a9aea2106e14ac1f6b32ad71492e3"},
         model, config.to_dict(), {"constructor": {"num_labels": 3}}, inputs, outputs, description, seed)


def vilbert_fixtures():
    vilbert = load_vilbert()
    vilbert_fixture(vilbert, "vilbert-placement-frozen", 2101, dict(
        vocab_size=70, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=40, max_position_embeddings=24,
        v_feature_size=14, v_target_size=9, v_hidden_size=20, v_num_hidden_layers=4, v_num_attention_heads=4, v_intermediate_size=36,
        bi_hidden_size=12, bi_num_attention_heads=3, v_biattention_id=[1, 3], t_biattention_id=[0, 2], fixed_v_layer=1,
        fixed_t_layer=0, fusion_method="sum", task_specific_tokens=False), 4, 4, 7, 5,
        "co-attention before visual layers 1 and 3 and text layers 0 and 2; visual layer 0 frozen; fusion sum; no task tokens; batch 4")
    vilbert_fixture(vilbert, "vilbert-placement-out-of-order", 2102, dict(
        vocab_size=50, hidden_size=24, num_hidden_layers=3, num_attention_heads=3, intermediate_size=30, max_position_embeddings=16,
        v_feature_size=10, v_target_size=6, v_hidden_size=16, v_num_hidden_layers=2, v_num_attention_heads=2, v_intermediate_size=22,
        bi_hidden_size=16, bi_num_attention_heads=4, v_biattention_id=[1, 1], t_biattention_id=[2, 1], fixed_t_layer=1,
        fusion_method="mul", task_specific_tokens=True), 2, 2, 6, 4,
        "t_biattention_id [2, 1] (decreasing: the reference then runs text layers 1-2 again at the end), v_biattention_id [1, 1], text layer 0 frozen, task tokens")
    vilbert_fixture(vilbert, "vilbert-fast-mode", 2103, dict(
        vocab_size=40, hidden_size=16, num_hidden_layers=3, num_attention_heads=4, intermediate_size=20, max_position_embeddings=16,
        v_feature_size=8, v_target_size=5, v_hidden_size=12, v_num_hidden_layers=2, v_num_attention_heads=3, v_intermediate_size=18,
        bi_hidden_size=12, bi_num_attention_heads=2, v_biattention_id=[0, 1], t_biattention_id=[1, 2], fast_mode=True,
        task_specific_tokens=True), 1, 3, 6, 4,
        "fast_mode: one text against three images (expanded before the first co-attention layer); odd batch, so vil_binary_prediction is the cls alignment head")
    vilbert_fixture(vilbert, "vilbert-no-coattention", 2104, dict(
        vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=20, max_position_embeddings=16,
        v_feature_size=8, v_target_size=5, v_hidden_size=12, v_num_hidden_layers=2, v_num_attention_heads=2, v_intermediate_size=18,
        bi_hidden_size=8, bi_num_attention_heads=2, v_biattention_id=[0, 1], t_biattention_id=[0, 1], with_coattention=False,
        model="roberta", hidden_act="relu", v_hidden_act="gelu", fusion_method="sum"), 2, 2, 5, 3,
        "with_coattention false (co-attention layers exist but never run), model roberta (same embeddings in the reference), hidden_act relu (also used by the visual prediction transform)")


def load_lxmert():
    root = tempfile.mkdtemp()
    package = os.path.join(root, "lxmert_reference")
    os.makedirs(package)
    shutil.copy(LXMERT_PY, os.path.join(package, "modeling.py"))
    open(os.path.join(package, "__init__.py"), "w").close()
    with open(os.path.join(package, "file_utils.py"), "w") as f:
        f.write("def cached_path(*args, **kwargs):\n    raise RuntimeError('no downloads')\n")
    sys.path.insert(0, root)
    import lxmert_reference.modeling as modeling
    return modeling


def lxmert_fixture():
    m = load_lxmert()
    seed = 2201
    torch.manual_seed(seed)
    visual = dict(l_layers=3, x_layers=1, r_layers=0, visual_feat_dim=12, visual_pos_dim=4)
    m.VISUAL_CONFIG.l_layers, m.VISUAL_CONFIG.x_layers, m.VISUAL_CONFIG.r_layers = visual["l_layers"], visual["x_layers"], visual["r_layers"]
    m.VISUAL_CONFIG.set_visual_dims(visual["visual_feat_dim"], visual["visual_pos_dim"])
    config = m.BertConfig(90, hidden_size=24, num_attention_heads=3, intermediate_size=40, max_position_embeddings=30, initializer_range=0.2)

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = m.LXRTFeatureExtraction(config, mode="x")

    class VQAModel(torch.nn.Module):
        def __init__(self, answers):
            super().__init__()
            self.lxrt_encoder = Encoder()
            hid = config.hidden_size
            self.logit_fc = torch.nn.Sequential(torch.nn.Linear(hid, hid * 2), m.GeLU(), m.BertLayerNorm(hid * 2, eps=1e-12),
                                                torch.nn.Linear(hid * 2, answers))
            self.logit_fc.apply(self.lxrt_encoder.model.init_bert_weights)

    model = VQAModel(5).eval()
    perturb(model, seed)
    bert = model.lxrt_encoder.model.bert
    captured = {}

    def hook(key, pick):
        def run(module, args, output):
            captured[key] = pick(output).detach().clone()
        return run

    bert.embeddings.register_forward_hook(hook("embedding_output", lambda o: o))
    bert.encoder.visn_fc.register_forward_hook(hook("visn_embedding_output", lambda o: o))
    for i, layer in enumerate(bert.encoder.layer):
        layer.register_forward_hook(hook(f"l_layers.{i}", lambda o: o))
    for i, layer in enumerate(bert.encoder.r_layers):
        layer.register_forward_hook(hook(f"r_layers.{i}", lambda o: o))
    for i, layer in enumerate(bert.encoder.x_layers):
        layer.register_forward_hook(hook(f"x_layers.{i}.lang", lambda o: o[0]))
        layer.register_forward_hook(hook(f"x_layers.{i}.visn", lambda o: o[1]))

    input_ids = torch.randint(1, 90, (3, 7))
    attention_mask = torch.ones(3, 7, dtype=torch.long)
    attention_mask[1, 5:] = 0
    attention_mask[2, 3:] = 0
    input_ids = input_ids * attention_mask
    token_type_ids = torch.zeros(3, 7, dtype=torch.long)
    feat = torch.randn(3, 4, 12)
    pos = torch.rand(3, 4, 4)
    visual_attention_mask = torch.ones(3, 4, dtype=torch.long)
    visual_attention_mask[0, 2:] = 0
    outputs = {}
    with torch.no_grad():
        # Without the visual mask first, so that the hooks keep the masked run's values.
        (lang, visn), pooled = bert(input_ids, token_type_ids, attention_mask, visual_feats=(feat, pos), visual_attention_mask=None)
        logits = model.logit_fc(model.lxrt_encoder.model(input_ids, token_type_ids, attention_mask, visual_feats=(feat, pos)))
        outputs.update(lang_feats_no_visual_mask=lang, visn_feats_no_visual_mask=visn, pooled_output_no_visual_mask=pooled,
                       vqa_logits_no_visual_mask=logits)
        captured.clear()
        (lang, visn), pooled = bert(input_ids, token_type_ids, attention_mask, visual_feats=(feat, pos), visual_attention_mask=visual_attention_mask)
        logits = model.logit_fc(model.lxrt_encoder.model(input_ids, token_type_ids, attention_mask, visual_feats=(feat, pos),
                                                         visual_attention_mask=visual_attention_mask))
        outputs.update(lang_feats=lang, visn_feats=visn, pooled_output=pooled, vqa_logits=logits)
    outputs.update(captured)
    inputs = dict(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask, feat=feat, pos=pos,
                  visual_attention_mask=visual_attention_mask)
    save("lxmert-no-relationship-layers", "lxmert",
         {"repo": "airsplay/lxmert", "path": "src/lxrt/modeling.py", "class": "LXRTFeatureExtraction",
          "commit": "0db1182b9030da3ce41f17717cc628e1cd0a95d5"},
         model, config.to_dict(), {"visual_config": visual, "constructor": {"num_answers": 5, "mode": "x"}}, inputs, outputs,
         "l_layers 3, x_layers 1, r_layers 0 (no relationship layers); masks on both sides; *_no_visual_mask without the visual mask", seed)


for name, fn in [("vilbert", vilbert_fixtures), ("lxmert", lxmert_fixture)]:
    try:
        fn()
    except Exception:
        SUMMARY[name] = "FAILED: " + traceback.format_exc()
print(json.dumps(SUMMARY, indent=1))
