"""Golden fixtures in the Hugging Face layouts, produced by running Hugging Face transformers' own model classes.

The shared fixtures (../shared/fixtures) come from the original repositories. This script adds the Hugging Face
layouts our key maps claim to load (ViLT, VisualBERT, LXMERT, CLIP, GPT-2), in the same fixture format, so that
`modelzoo parity` checks them too. It needs torch, transformers and safetensors (it ran on the project's GPU
machine, on its CPU, float32, one thread). Usage: python3 generate.py OUT_DIR
"""
import json
import os
import sys
import traceback

import torch
from safetensors.torch import save_file

torch.set_num_threads(1)
OUT = sys.argv[1]
SUMMARY = {}


def perturb(model, seed, extra_weight_noise=0.0):
    """Norm weights/biases get N(0, 0.1) noise, other biases N(0, 0.05), so unit gains and zero biases hide nothing."""
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, module in model.named_modules():
            norm = isinstance(module, (torch.nn.LayerNorm, torch.nn.BatchNorm2d)) or "norm" in type(module).__name__.lower()
            for pname, p in module.named_parameters(recurse=False):
                if norm:
                    p.add_(torch.randn(p.shape, generator=g) * 0.1)
                elif pname == "bias":
                    p.add_(torch.randn(p.shape, generator=g) * 0.05)
                elif extra_weight_noise and pname == "weight":
                    p.add_(torch.randn(p.shape, generator=g) * extra_weight_noise)


def save_fixture(name, family, model, config, inputs, outputs, description, seed, reference_class):
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(folder, "model.safetensors"))
    save_file({k: v.contiguous() for k, v in inputs.items()}, os.path.join(folder, "inputs.safetensors"))
    save_file({k: v.detach().float().contiguous().clone() for k, v in outputs.items()}, os.path.join(folder, "outputs.safetensors"))
    import transformers
    fixture = {
        "family": family,
        "reference": {"repo": "huggingface/transformers", "version": transformers.__version__, "class": reference_class},
        "config": config.to_dict(),
        "checkpoint": "model.safetensors",
        "inputs": "inputs.safetensors",
        "outputs": "outputs.safetensors",
        "tolerance": {"atol": 1e-4, "rtol": 1e-4},
        "seed": seed,
        "description": description,
        "torch": torch.__version__,
        "tensors": {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in list(inputs.items()) + list(outputs.items())},
    }
    with open(os.path.join(folder, "fixture.json"), "w") as f:
        json.dump(fixture, f, indent=1, default=str)
    SUMMARY[name] = "ok"


def run(name, fn):
    try:
        fn()
        print("OK", name, flush=True)
    except Exception:
        SUMMARY[name] = traceback.format_exc()
        print("FAILED", name, flush=True)
        traceback.print_exc()


def vilt():
    from transformers import ViltConfig, ViltForQuestionAnswering
    seed = 11
    torch.manual_seed(seed)
    config = ViltConfig(vocab_size=120, type_vocab_size=2, modality_type_vocab_size=2, max_position_embeddings=40,
                        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.2,
                        layer_norm_eps=1e-12, image_size=96, patch_size=32, num_channels=3, qkv_bias=True,
                        max_image_length=-1, num_labels=7, id2label={i: f"answer{i}" for i in range(7)},
                        label2id={f"answer{i}": i for i in range(7)})
    model = ViltForQuestionAnswering(config).eval()
    perturb(model, seed)
    input_ids = torch.randint(1, 120, (2, 7))
    attention_mask = torch.ones(2, 7, dtype=torch.long)
    attention_mask[1, 4:] = 0
    input_ids[1, 4:] = 0
    token_type_ids = torch.zeros(2, 7, dtype=torch.long)
    pixel_values = torch.randn(2, 3, 64, 96)
    pixel_mask = torch.ones(2, 64, 96, dtype=torch.long)
    pixel_mask[1, :, 64:] = 0  # second image: 64x64 valid, so a 2x2 patch grid padded to 2x3
    pixel_values[1, :, :, 64:] = 0
    original = torch.multinomial

    def first_k(weights, num, replacement=False, **kw):
        # Deterministic stand-in for ViLT's patch sampling: keep valid patches in raster order, pad cyclically.
        n = weights.shape[-1]
        return torch.arange(num) % n

    torch.multinomial = first_k
    try:
        with torch.no_grad():
            kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                          pixel_values=pixel_values, pixel_mask=pixel_mask)
            base = model.vilt(**kwargs, output_hidden_states=True)
            logits = model(**kwargs).logits
    finally:
        torch.multinomial = original
    outputs = {"last_hidden_state": base.last_hidden_state, "pooler_output": base.pooler_output, "vqa_logits": logits}
    for i, h in enumerate(base.hidden_states):
        outputs[f"hidden_states.{i}"] = h
    save_fixture("hf-vilt", "hf-vilt", model, config,
                 dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                      pixel_values=pixel_values, pixel_mask=pixel_mask), outputs,
                 "ViltForQuestionAnswering in eval; torch.multinomial replaced by the deterministic choice "
                 "arange(num) % n (valid patches in raster order, padding patches cyclically). hidden_states.0 = "
                 "embedding output (text then [image CLS + selected patches]); vqa_logits = model(...).logits.",
                 seed, "ViltForQuestionAnswering")


def visualbert():
    from transformers import VisualBertConfig, VisualBertForQuestionAnswering
    seed = 12
    torch.manual_seed(seed)
    config = VisualBertConfig(vocab_size=120, hidden_size=32, visual_embedding_dim=20, num_hidden_layers=2,
                              num_attention_heads=4, intermediate_size=64, max_position_embeddings=40,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.2,
                              num_labels=7)
    model = VisualBertForQuestionAnswering(config).eval()
    perturb(model, seed)
    input_ids = torch.randint(1, 120, (2, 6))
    attention_mask = torch.ones(2, 6, dtype=torch.long)
    attention_mask[1, 4:] = 0
    input_ids[1, 4:] = 0
    token_type_ids = torch.zeros(2, 6, dtype=torch.long)
    visual_embeds = torch.randn(2, 5, 20)
    visual_attention_mask = torch.ones(2, 5, dtype=torch.long)
    visual_attention_mask[0, 3:] = 0
    visual_token_type_ids = torch.ones(2, 5, dtype=torch.long)
    kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                  visual_embeds=visual_embeds, visual_attention_mask=visual_attention_mask,
                  visual_token_type_ids=visual_token_type_ids)
    with torch.no_grad():
        base = model.visual_bert(**kwargs, output_hidden_states=True)
        logits = model(**kwargs).logits
    outputs = {"last_hidden_state": base.last_hidden_state, "pooler_output": base.pooler_output, "vqa_logits": logits}
    for i, h in enumerate(base.hidden_states):
        outputs[f"hidden_states.{i}"] = h
    save_fixture("hf-visualbert", "hf-visualbert", model, config, kwargs, outputs,
                 "VisualBertForQuestionAnswering in eval: visual_bert(...) with output_hidden_states (hidden_states.0 = "
                 "embeddings of text then visual tokens); vqa_logits gathers the token at attention_mask.sum(1) - 2.",
                 seed, "VisualBertForQuestionAnswering")


def lxmert():
    from transformers import LxmertConfig, LxmertForQuestionAnswering
    seed = 13
    torch.manual_seed(seed)
    config = LxmertConfig(vocab_size=110, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=40,
                          initializer_range=0.2, l_layers=2, x_layers=2, r_layers=1, visual_feat_dim=20,
                          visual_pos_dim=4, num_qa_labels=9, num_object_labels=16, num_attr_labels=8)
    model = LxmertForQuestionAnswering(config).eval()
    perturb(model, seed)
    input_ids = torch.randint(1, 110, (2, 6))
    attention_mask = torch.ones(2, 6, dtype=torch.long)
    attention_mask[1, 4:] = 0
    input_ids[1, 4:] = 0
    token_type_ids = torch.zeros(2, 6, dtype=torch.long)
    visual_feats = torch.randn(2, 5, 20)
    visual_pos = torch.rand(2, 5, 4)
    visual_attention_mask = torch.ones(2, 5, dtype=torch.long)
    visual_attention_mask[0, 3:] = 0
    kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                  visual_feats=visual_feats, visual_pos=visual_pos, visual_attention_mask=visual_attention_mask)
    with torch.no_grad():
        base = model.lxmert(**kwargs, output_hidden_states=True)
        scores = model(**kwargs).question_answering_score
    outputs = {"language_output": base.language_output, "vision_output": base.vision_output,
               "pooled_output": base.pooled_output, "vqa_logits": scores}
    for i, h in enumerate(base.language_hidden_states):
        outputs[f"language_hidden_states.{i}"] = h
    for i, h in enumerate(base.vision_hidden_states):
        outputs[f"vision_hidden_states.{i}"] = h
    save_fixture("hf-lxmert", "hf-lxmert", model, config, kwargs, outputs,
                 "LxmertForQuestionAnswering in eval: lxmert(...) with output_hidden_states; vqa_logits = "
                 "question_answering_score.", seed, "LxmertForQuestionAnswering")


def clip():
    from transformers import CLIPConfig, CLIPModel
    seed = 14
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(vocab_size=120, hidden_size=32, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16, hidden_act="quick_gelu",
                         bos_token_id=118, eos_token_id=119, pad_token_id=0, projection_dim=24),
        vision_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                           image_size=16, patch_size=4, hidden_act="quick_gelu", projection_dim=24),
        projection_dim=24)
    model = CLIPModel(config).eval()
    perturb(model, seed)
    with torch.no_grad():
        model.logit_scale.fill_(2.3)
    text = torch.zeros(3, 16, dtype=torch.long)
    for row, length in enumerate([16, 9, 5]):
        text[row, 0] = 118
        text[row, 1:length - 1] = torch.randint(1, 118, (length - 2,))
        text[row, length - 1] = 119
    image = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        out = model(input_ids=text, pixel_values=image)
        vision = model.vision_model(pixel_values=image, output_hidden_states=True)
        textual = model.text_model(input_ids=text, output_hidden_states=True)
        image_features = model.visual_projection(vision.pooler_output)
        text_features = model.text_projection(textual.pooler_output)
    outputs = {"logits_per_image": out.logits_per_image, "logits_per_text": out.logits_per_text,
               "image_features": image_features, "text_features": text_features}
    for i, h in enumerate(vision.hidden_states):
        outputs[f"vision_hidden_states.{i}"] = h
    for i, h in enumerate(textual.hidden_states):
        outputs[f"text_hidden_states.{i}"] = h
    save_fixture("hf-clip", "hf-clip", model, config, {"input_ids": text, "pixel_values": image}, outputs,
                 "CLIPModel in eval, no text attention_mask (causal only, as the original); EOT = vocab_size-1 is "
                 "the row maximum and eos_token_id; *_features = projection of the pooled output (before normalisation); "
                 "vision_hidden_states.0 = after pre_layrnorm, i>0 = after layer i-1; text_hidden_states.0 = "
                 "embeddings.", seed, "CLIPModel")


def gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel
    seed = 15
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=97, n_positions=16, n_embd=32, n_layer=2, n_head=4, activation_function="gelu_new", bos_token_id=96, eos_token_id=96,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True)
    model = GPT2LMHeadModel(config).eval()
    perturb(model, seed, extra_weight_noise=0.15)
    input_ids = torch.randint(0, 97, (2, 11))
    attention_mask = torch.ones(2, 11, dtype=torch.long)
    with torch.no_grad():
        out = model(input_ids=input_ids, output_hidden_states=True)
    outputs = {"logits": out.logits}
    for i, h in enumerate(out.hidden_states[:-1]):
        outputs[f"hidden_states.{i}"] = h
    outputs["hidden_states_final_ln"] = out.hidden_states[-1]
    save_fixture("hf-gpt2", "hf-gpt2", model, config, {"input_ids": input_ids, "attention_mask": attention_mask}, outputs,
                 "GPT2LMHeadModel (tanh GELU, gelu_new) in eval; hidden_states.0 = embeddings, hidden_states.i = "
                 "output of block i-1 (i < n_layer); hidden_states_final_ln = after ln_f; lm_head tied to wte.",
                 seed, "GPT2LMHeadModel")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    import transformers
    print("torch", torch.__version__, "transformers", transformers.__version__, flush=True)
    for name, fn in [("hf-vilt", vilt), ("hf-visualbert", visualbert), ("hf-lxmert", lxmert), ("hf-clip", clip), ("hf-gpt2", gpt2)]:
        run(name, fn)
    with open(os.path.join(OUT, "summary.json"), "w") as f:
        json.dump(SUMMARY, f, indent=1)
    print(json.dumps({k: ("ok" if v == "ok" else "failed") for k, v in SUMMARY.items()}))
