#!/usr/bin/env python3
"""Reference fixtures for Goku's Curation tests (the DINOv2 shot-refinement encoder), produced with transformers.

Run (from the repository root, after scripts/reference/setup_venv.sh):

    .venv-reference/bin/python scripts/reference/make_curation_fixtures.py

Deterministic: CPU only, one thread, a seeded torch.Generator. A tiny random Dinov2Model (no hub download) whose
parameters are all redrawn (layer scales around 1, norms around 1) so every weight matters; the reference forward
runs in float64 on the float32 weights and inputs, results cast to float32.

Files (Tests/CurationTests/Fixtures/)
-------------------------------------
dinov2_tiny/config.json
    the Dinov2Config: hidden_size 32, num_hidden_layers 2, num_attention_heads 4, mlp_ratio 4, patch_size 4,
    image_size 16, layer_norm_eps 1e-6, hidden_act gelu.
dinov2_tiny/model.safetensors
    the weights under the hub checkpoints' names (facebook/dinov2-*): embeddings.{cls_token (1,1,32),
    mask_token (1,32), position_embeddings (1,17,32), patch_embeddings.projection.weight (32,3,4,4) / .bias (32)},
    encoder.layer.{i}.{norm1, norm2}.{weight,bias}, encoder.layer.{i}.attention.attention.{query,key,value}.{weight
    (32,32), bias}, encoder.layer.{i}.attention.output.dense.{weight,bias}, encoder.layer.{i}.layer_scale{1,2}.lambda1
    (32), encoder.layer.{i}.mlp.fc1.{weight (128,32), bias}, encoder.layer.{i}.mlp.fc2.{weight (32,128), bias},
    layernorm.{weight,bias}.
dinov2_tiny_io.safetensors
    pixel_values (2,3,16,16) (normalised pixels, randn), last_hidden_state (2,17,32), pooler_output (2,32) (the CLS
    token after the final layer norm).
clip_tiny/config.json, clip_tiny/model.safetensors
    a tiny random CLIPVisionModelWithProjection (hidden_size 32, intermediate_size 64, 2 layers, 4 heads,
    image_size 16, patch_size 4, projection_dim 24, quick_gelu, layer_norm_eps 1e-5) under transformers' names:
    vision_model.embeddings.{class_embedding (32), patch_embedding.weight (32,3,4,4), position_embedding.weight
    (17,32)}, vision_model.pre_layrnorm, vision_model.encoder.layers.{i}.{layer_norm1, layer_norm2,
    self_attn.{q,k,v,out}_proj, mlp.fc1, mlp.fc2}, vision_model.post_layernorm, visual_projection.weight (24,32).
aesthetic_mlp.safetensors
    a LAION-style aesthetic head: Linear layers applied in order with no activation (the original has dropouts
    between, hence the gaps): layers.0 (16,24), layers.2 (8,16), layers.3 (1,8), weights and biases.
aesthetic_io.safetensors
    pixel_values (2,3,16,16), image_embeds (2,24) (visual_projection of the post-layer-normed CLS token),
    score (2) = head(image_embeds / ||image_embeds||).
"""
import json
import os

import torch
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, Dinov2Config, Dinov2Model

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "CurationTests", "Fixtures")

# transformers 5 names → the names stored in the hub checkpoints.
HUB_NAMES = {
    "attention.q_proj.": "attention.attention.query.",
    "attention.k_proj.": "attention.attention.key.",
    "attention.v_proj.": "attention.attention.value.",
    "attention.o_proj.": "attention.output.dense.",
}


def hub_name(key):
    for new, old in HUB_NAMES.items():
        key = key.replace(new, old)
    return key


def main():
    g = torch.Generator().manual_seed(20240601)
    config = Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, mlp_ratio=4, patch_size=4, image_size=16,
        layer_norm_eps=1e-6, hidden_act="gelu")
    model = Dinov2Model(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lambda1" in name or name.endswith("norm1.weight") or name.endswith("norm2.weight") \
                    or name == "layernorm.weight":
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    weights = {hub_name(k): v.detach().float().contiguous() for k, v in model.state_dict().items()}
    folder = os.path.join(ROOT, "dinov2_tiny")
    os.makedirs(folder, exist_ok=True)
    save_file(weights, os.path.join(folder, "model.safetensors"))
    keep = ["hidden_size", "num_hidden_layers", "num_attention_heads", "mlp_ratio", "patch_size", "image_size",
            "layer_norm_eps", "hidden_act", "num_channels", "use_swiglu_ffn", "layerscale_value", "model_type"]
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({k: getattr(config, k) for k in keep}, f, indent=2, sort_keys=True)

    pixels = torch.randn((2, 3, 16, 16), generator=g)
    model64 = model.double()
    with torch.no_grad():
        out = model64(pixel_values=pixels.double())
    save_file({
        "pixel_values": pixels.contiguous(),
        "last_hidden_state": out.last_hidden_state.float().contiguous(),
        "pooler_output": out.pooler_output.float().contiguous(),
    }, os.path.join(ROOT, "dinov2_tiny_io.safetensors"))

    make_aesthetic()


def make_aesthetic():
    g = torch.Generator().manual_seed(20240602)
    config = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=16,
        patch_size=4, projection_dim=24, hidden_act="quick_gelu", layer_norm_eps=1e-5)
    model = CLIPVisionModelWithProjection(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    folder = os.path.join(ROOT, "clip_tiny")
    os.makedirs(folder, exist_ok=True)
    save_file({k: v.detach().float().contiguous() for k, v in model.state_dict().items()},
              os.path.join(folder, "model.safetensors"))
    keep = ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "image_size",
            "patch_size", "projection_dim", "hidden_act", "layer_norm_eps", "num_channels", "model_type"]
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({k: getattr(config, k) for k in keep}, f, indent=2, sort_keys=True)

    head = {}
    sizes = [(0, 24, 16), (2, 16, 8), (3, 8, 1)]
    for index, fan_in, fan_out in sizes:
        head[f"layers.{index}.weight"] = 0.3 * torch.randn((fan_out, fan_in), generator=g)
        head[f"layers.{index}.bias"] = 0.3 * torch.randn((fan_out,), generator=g)
    save_file({k: v.contiguous() for k, v in head.items()}, os.path.join(ROOT, "aesthetic_mlp.safetensors"))

    pixels = torch.randn((2, 3, 16, 16), generator=g)
    with torch.no_grad():
        embeds = model.double()(pixel_values=pixels.double()).image_embeds
        x = embeds / embeds.norm(dim=-1, keepdim=True)
        for index, _, _ in sizes:
            x = x @ head[f"layers.{index}.weight"].double().T + head[f"layers.{index}.bias"].double()
    save_file({
        "pixel_values": pixels.contiguous(),
        "image_embeds": embeds.float().contiguous(),
        "score": x.reshape(-1).float().contiguous(),
    }, os.path.join(ROOT, "aesthetic_io.safetensors"))


if __name__ == "__main__":
    main()
