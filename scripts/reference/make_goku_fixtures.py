#!/usr/bin/env python3
"""Reference fixture for the Goku Transformer and the rectified-flow loss, produced with PyTorch.

Run (from the repository root, after scripts/reference/setup_venv.sh):

    .venv-reference/bin/python scripts/reference/make_goku_fixtures.py

The script holds a plain float64 PyTorch reference of the tiny Goku model (GokuConfig.tiny in Swift),
written from spec §3.3 exactly as Sources/GokuModel implements it, with the same parameter keys. It
runs each sample ON ITS OWN (batch of one, no packing), so the Swift test, which runs the two samples
as one packed sequence, checks the block, RoPE, masks AND Patch n' Pack against it. CPU, one thread,
deterministic, seeded torch.Generator.

Model (tiny): D = 32, depth 2, 2 heads (Dh 16), FFN 128 (GELU-tanh), latent C = 4, patch (1,2,2),
text width 24, RoPE axis split (t,h,w) = (4,6,6) base 10000 (interleaved pairs), QK RMSNorm over the
full width (eps 1e-6) in both attentions, RoPE on q and k in self-attention and on the query only in
cross-attention, timestep features: [cos, sin](t*1000 * 10000^(-i/128)), i < 128.

Files (Tests/GokuModelTests/Fixtures/)
--------------------------------------
goku_tiny.safetensors
    param.<key>   every parameter, random and NON-ZERO (so zero-init hides nothing): weights
                  N(0, 0.15^2) (N(0, 0.3^2) for the modulation layers so gates matter), norm
                  weights 1 + N(0, 0.1^2), biases N(0, 0.05^2).
    data0 (4,1,4,6)  sample 0: an image latent x1;  noise0 (4,1,4,6) x0;  t = 0.3
    data1 (4,3,4,4)  sample 1: a video latent x1;   noise1 (4,3,4,4) x0;  t = 0.8
    timesteps (2)    [0.3, 0.8]
    text0 (5,24), text_mask0 (5) = [1,1,1,0,0] (1 = real token)
    text1 (4,24), text_mask1 (4) = [1,1,1,0]
    velocity0 (4,1,4,6), velocity1 (4,3,4,4): model(x_t) with x_t = t*x1 + (1-t)*x0
    loss (1)         sum_i ||velocity_i - (data_i - noise_i)||^2 / total element count
    grad.<key>       d loss / d parameter
"""

import math
import os

import torch
from safetensors.torch import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(ROOT, "Tests", "GokuModelTests", "Fixtures")

D, DEPTH, HEADS, C, TEXT = 32, 2, 2, 4, 24
PATCH = (1, 2, 2)
AXES = (4, 6, 6)
FFN = 4 * D
EPS = 1e-6
FREQ = 256


def param_shapes():
    p = PATCH[0] * PATCH[1] * PATCH[2]
    shapes = {
        "x_embedder.proj.weight": (D, C * p), "x_embedder.proj.bias": (D,),
        "t_embedder.linear_1.weight": (D, FREQ), "t_embedder.linear_1.bias": (D,),
        "t_embedder.linear_2.weight": (D, D), "t_embedder.linear_2.bias": (D,),
    }
    for i in range(DEPTH):
        b = f"blocks.{i}."
        shapes.update({
            b + "norm1.linear.weight": (6 * D, D), b + "norm1.linear.bias": (6 * D,),
            b + "norm2.weight": (D,), b + "norm3.weight": (D,),
            b + "ff.fc1.weight": (FFN, D), b + "ff.fc1.bias": (FFN,),
            b + "ff.fc2.weight": (D, FFN), b + "ff.fc2.bias": (D,),
        })
        for a, kv in (("attn1", D), ("attn2", TEXT)):
            shapes.update({
                b + a + ".q_proj.weight": (D, D), b + a + ".k_proj.weight": (D, kv),
                b + a + ".v_proj.weight": (D, kv), b + a + ".o_proj.weight": (D, D),
                b + a + ".q_norm.weight": (D,), b + a + ".k_norm.weight": (D,),
            })
    shapes.update({
        "final_layer.adaLN_modulation.linear.weight": (2 * D, D),
        "final_layer.adaLN_modulation.linear.bias": (2 * D,),
        "final_layer.linear.weight": (p * C, D), "final_layer.linear.bias": (p * C,),
    })
    return shapes


def make_params(g):
    out = {}
    for key, shape in param_shapes().items():
        if key.endswith("norm.weight") or key.endswith("norm2.weight") or key.endswith("norm3.weight"):
            t = 1 + 0.1 * torch.randn(shape, generator=g)
        elif key.endswith(".bias"):
            t = 0.05 * torch.randn(shape, generator=g)
        elif "adaLN" in key or "norm1.linear" in key:
            t = 0.3 * torch.randn(shape, generator=g)
        else:
            t = 0.15 * torch.randn(shape, generator=g)
        out[key] = t.float()
    return out


def rms_norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def layer_norm(x):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), eps=EPS)


def linear(x, P, key, bias=True):
    y = x @ P[key + ".weight"].T
    return y + P[key + ".bias"] if bias else y


def rope_tables(grid):
    pos = [(t, h, w) for t in range(grid[0]) for h in range(grid[1]) for w in range(grid[2])]
    cos = torch.zeros(len(pos), sum(AXES), dtype=torch.float64)
    sin = torch.zeros_like(cos)
    for n, p in enumerate(pos):
        ch = 0
        for a, dims in enumerate(AXES):
            for i in range(dims // 2):
                ang = p[a] * 10000.0 ** (-2 * i / dims)
                cos[n, ch] = cos[n, ch + 1] = math.cos(ang)
                sin[n, ch] = sin[n, ch + 1] = math.sin(ang)
                ch += 2
    return cos, sin


def apply_rope(x, cos, sin):
    # x (L, Nh, Dh); interleaved pairs: out = x*cos + rotate(x)*sin, rotate((a, b)) = (-b, a).
    rot = torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)
    return x * cos[:, None, :] + rot * sin[:, None, :]


def attention(x, P, key, context=None, key_mask=None, rope=None, rope_keys=True):
    src = x if context is None else context
    q = rms_norm(linear(x, P, key + ".q_proj", bias=False), P[key + ".q_norm.weight"])
    k = rms_norm(linear(src, P, key + ".k_proj", bias=False), P[key + ".k_norm.weight"])
    v = linear(src, P, key + ".v_proj", bias=False)
    dh = D // HEADS
    q, k, v = (t.reshape(t.shape[0], HEADS, dh) for t in (q, k, v))
    if rope is not None:
        q = apply_rope(q, *rope)
        if rope_keys:
            k = apply_rope(k, *rope)
    scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(dh)
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[None, None, :], float("-inf"))
    out = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).reshape(x.shape[0], D)
    return linear(out, P, key + ".o_proj", bias=False)


def timestep_features(t):
    half = FREQ // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float64) / half)
    args = t * 1000 * freqs
    return torch.cat([torch.cos(args), torch.sin(args)])


def patchify(x):
    c, t, h, w = x.shape
    pt, ph, pw = PATCH
    g = (t // pt, h // ph, w // pw)
    x = x.reshape(c, g[0], pt, g[1], ph, g[2], pw).permute(1, 3, 5, 0, 2, 4, 6)
    return x.reshape(g[0] * g[1] * g[2], c * pt * ph * pw), g


def unpatchify(tokens, g):
    pt, ph, pw = PATCH
    x = tokens.reshape(g[0], g[1], g[2], C, pt, ph, pw).permute(3, 0, 4, 1, 5, 2, 6)
    return x.reshape(C, g[0] * pt, g[1] * ph, g[2] * pw)


def goku_block(x, c, text, text_mask, rope, P, b):
    m = linear(c, P, b + "norm1.linear").chunk(6)
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = m
    h = layer_norm(x) * (1 + scale_msa) + shift_msa
    x = x + gate_msa * attention(h, P, b + "attn1", rope=rope)
    x = x + attention(rms_norm(x, P[b + "norm2.weight"]), P, b + "attn2", context=text, key_mask=text_mask,
                      rope=rope, rope_keys=False)
    h = rms_norm(x, P[b + "norm3.weight"]) * (1 + scale_mlp) + shift_mlp
    ff = linear(torch.nn.functional.gelu(linear(h, P, b + "ff.fc1"), approximate="tanh"), P, b + "ff.fc2")
    return x + gate_mlp * ff


def goku(latent, t, text, text_mask, P):
    tokens, g = patchify(latent)
    x = linear(tokens, P, "x_embedder.proj")
    temb = linear(torch.nn.functional.silu(linear(timestep_features(t), P, "t_embedder.linear_1")), P,
                  "t_embedder.linear_2")
    c = torch.nn.functional.silu(temb)
    rope = rope_tables(g)
    for i in range(DEPTH):
        x = goku_block(x, c, text, text_mask, rope, P, f"blocks.{i}.")
    shift, scale = linear(c, P, "final_layer.adaLN_modulation.linear").chunk(2)
    out = linear(layer_norm(x) * (1 + scale) + shift, P, "final_layer.linear")
    return unpatchify(out, g)


def save(path, tensors):
    out = {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}
    save_file(out, path)
    print(f"{os.path.relpath(path, ROOT)}: {os.path.getsize(path) / 1024:.1f} KiB")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT_DIR, exist_ok=True)
    g = torch.Generator().manual_seed(5)
    params32 = make_params(g)
    data = [torch.randn(4, 1, 4, 6, generator=g), torch.randn(4, 3, 4, 4, generator=g)]
    noise = [torch.randn(d.shape, generator=g) for d in data]
    texts = [torch.randn(5, TEXT, generator=g), torch.randn(4, TEXT, generator=g)]
    masks = [torch.tensor([1, 1, 1, 0, 0], dtype=torch.bool), torch.tensor([1, 1, 1, 0], dtype=torch.bool)]
    ts = [0.3, 0.8]

    P = {k: v.double().requires_grad_(True) for k, v in params32.items()}
    velocities, sq, count = [], 0, 0
    for d, n, text, mask, t in zip(data, noise, texts, masks, ts):
        x1, x0 = d.double(), n.double()
        xt = t * x1 + (1 - t) * x0
        v = goku(xt, t, text.double(), mask, P)
        velocities.append(v)
        sq = sq + (v - (x1 - x0)).pow(2).sum()
        count += v.numel()
    loss = sq / count
    loss.backward()

    out = {"param." + k: v for k, v in params32.items()}
    out.update({"grad." + k: v.grad for k, v in P.items()})
    for i in range(2):
        out[f"data{i}"], out[f"noise{i}"], out[f"text{i}"] = data[i], noise[i], texts[i]
        out[f"text_mask{i}"] = masks[i].float()
        out[f"velocity{i}"] = velocities[i]
    out["timesteps"] = torch.tensor(ts)
    out["loss"] = loss.reshape(1)
    save(os.path.join(OUT_DIR, "goku_tiny.safetensors"), out)


if __name__ == "__main__":
    main()
