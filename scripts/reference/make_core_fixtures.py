#!/usr/bin/env python3
"""Reference fixtures for Goku's TensorCore / NN / Optim tests, produced with PyTorch.

Run (from the repository root, after scripts/reference/setup_venv.sh):

    .venv-reference/bin/python scripts/reference/make_core_fixtures.py

Every file is written with safetensors.torch.save_file; every tensor is a contiguous
float32 tensor (masks and offsets included). Generation is deterministic: CPU only,
one thread, torch.use_deterministic_algorithms(True), and every fixture uses its own
torch.Generator with a fixed seed (so fixtures do not depend on each other or on order).

General conventions
-------------------
* Inputs are float32 draws from torch.randn (per-fixture generator). The reference
  computation runs in float64 on those float32 values; results are cast to float32.
* Gradients: loss = (output * grad_output).sum(), where grad_output is a fixed random
  float32 tensor of the output's shape stored under `grad_output` (or a suffixed
  variant, see below). The gradient w.r.t. input `foo` is stored as `grad_foo`.
* PyTorch layouts: Linear weight is (out, in); conv weights are (out, in, k...);
  activations are channels-first (N, C, [T,] H, W).

Files (Tests/TensorCoreTests/Fixtures/)
---------------------------------------
linear.safetensors
    x (3,5,8), weight (6,8) [out x in], bias (6); output = x @ weight.T + bias (3,5,6);
    grad_output, grad_x, grad_weight, grad_bias.
layer_norm.safetensors
    x (4,7,12), weight (12), bias (12); eps 1e-5, biased variance over the last dim:
    output, grad_output, grad_x, grad_weight, grad_bias.
    elementwise_affine=False with eps 1e-6: output_noaffine, grad_output_noaffine,
    grad_x_noaffine.
rms_norm.safetensors
    x (4,7,12), weight (12), eps 1e-6; output = x * rsqrt(mean(x^2, -1) + eps) * weight;
    grad_output, grad_x, grad_weight.
group_norm.safetensors
    x (2,8,3,5,5) (N,C,T,H,W), 4 groups (2 channels per group; statistics over
    channels-in-group x T x H x W, biased variance), weight (8), bias (8), eps 1e-6:
    output, grad_output, grad_x, grad_weight, grad_bias.
softmax.safetensors
    x (3,4,9); softmax over the last dim -> softmax, grad_output_softmax, grad_x_softmax;
    log_softmax over the last dim -> log_softmax, grad_output_log_softmax,
    grad_x_log_softmax.
conv3d.safetensors
    Case A: x_a (2,3,5,9,8), weight_a (4,3,3,3,3), bias_a (4), stride (1,2,2),
    padding (1,1,1) (zeros, both sides), dilation 1, groups 1 -> output_a (2,4,5,5,4),
    grad_output_a, grad_x_a, grad_weight_a, grad_bias_a.
    Case B (causal temporal): x_b (1,2,5,6,6), weight_b (3,2,3,3,3), bias_b (3),
    stride (2,1,1). x is zero-padded F.pad(x, (1,1,1,1,2,0)): W 1 left/1 right,
    H 1 top/1 bottom, T 2 frames BEFORE (past) and 0 after; then conv with padding 0
    -> output_b (1,3,3,6,6), grad_output_b, grad_x_b (w.r.t. the unpadded x_b, shape
    (1,2,5,6,6)), grad_weight_b, grad_bias_b.
conv2d.safetensors
    x (2,3,9,8), weight (5,3,3,3), bias (5), stride 2, padding 1 -> output (2,5,5,4),
    grad_output, grad_x, grad_weight, grad_bias.
pool_upsample.safetensors
    x (2,3,4,6,6). avg_pool3d kernel (2,2,2) stride (2,2,2) -> avgpool (2,3,2,3,3),
    grad_output_avgpool, grad_x_avgpool. Nearest upsample,
    F.interpolate(mode='nearest', scale_factor=(1,2,2)) -> upsample (2,3,4,12,12),
    grad_output_upsample, grad_x_upsample.
attention.safetensors
    Layout (B, Nh, L, Dh); scale = 1/sqrt(Dh); reference is explicit float64
    softmax(Q K^T * scale + mask) V, where masked (query, key) pairs get -inf before
    the softmax. Query rows are never masked (padded query positions still produce
    output rows; they attend to the valid keys of their batch element, and their
    grad_output entries are non-zero, so they contribute to grad_k / grad_v).
    Case keys use a prefix: <p>q, <p>k, <p>v, <p>output, <p>grad_output, <p>grad_q,
    <p>grad_k, <p>grad_v.
      self_   : q,k,v (2,3,10,16), no mask.
      mask_   : q,k,v (2,2,7,8); mask_key_padding (2,7) float32, 1 = keep, 0 = padded;
                batch 0 keeps all 7 keys, batch 1 keeps keys 0..3 (4 keys).
      packed_ : q,k,v (1,2,13,32); packed_offsets float32 [0,5,9,13] -> segments
                [0,5), [5,9), [9,13); block-diagonal: a query attends only to keys in
                its own segment.
      cross_  : q (2,4,6,128), k,v (2,4,11,128); cross_mask_key_padding (2,11):
                batch 0 keeps all 11 keys, batch 1 keeps keys 0..7 (8 keys).
rope.safetensors
    x (2,6,3,8) laid out (B, L, Nh, Dh); cos, sin (6,8) [position, channel].
    theta[p, i] = p * 10000^(-2i/Dh), p = 0..5, i = 0..Dh/2-1; channels 2i and 2i+1
    share theta[p, i] (cos[p,2i] = cos[p,2i+1] = cos(theta[p,i]), same for sin).
    Interleaved-pair rotation, out = x*cos + rotate(x)*sin, rotate((a,b)) = (-b,a):
      out[..., 2i]   = x[2i]   * cos[2i]   - x[2i+1] * sin[2i]
      out[..., 2i+1] = x[2i+1] * cos[2i+1] + x[2i]   * sin[2i+1]
    cos/sin broadcast over B and Nh. -> output, grad_output, grad_x (cos/sin constant).
elementwise.safetensors
    x (50): sorted values in [-4, 4] (linspace(-4,4,50) plus uniform jitter of at most
    +-0.06, clamped to [-4,4]). gelu_exact (erf form), gelu_tanh
    (0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3)))), silu, sigmoid, tanh, and elementwise
    derivatives d_gelu_exact, d_gelu_tanh, d_silu, d_sigmoid, d_tanh
    (= input gradient for grad_output = ones).

Files (Tests/OptimTests/Fixtures/)
----------------------------------
tiny_transformer_adamw.safetensors
    Tiny pre-LN transformer (see TinyTransformer below), float32 throughout, trained
    10 full-batch steps with torch.optim.AdamW(lr=1e-2, betas=(0.9,0.999), eps=1e-8,
    weight_decay=0.01), one param group (weight decay applies to EVERY parameter,
    biases and LayerNorm weights included), amsgrad=False, foreach=False.
    Init: torch.manual_seed(0), then the model is constructed (default PyTorch init,
    submodules created in attribute order), then x = torch.randn(2,8,16) and
    y = torch.randn(2,8,4) from the same global generator.
    Keys: x (2,8,16), y (2,8,4); init.<state_dict key> (parameters before training);
    grad0.<key> (gradients of the step-0 loss, before the first update);
    losses (10,) = loss BEFORE each of the 10 optimizer steps; final.<key>
    (parameters after 10 steps); final_loss (1,) = loss after the 10 steps.
    loss = mean((head(norm(h)) - y)^2) over all 2*8*4 elements.
"""

import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORE_DIR = os.path.join(ROOT, "Tests", "TensorCoreTests", "Fixtures")
OPTIM_DIR = os.path.join(ROOT, "Tests", "OptimTests", "Fixtures")

TOTAL_BYTES = 0


# ----------------------------------------------------------------------------- helpers

def save(path, tensors):
    """Assert every tensor is contiguous float32, write with save_file, print the size."""
    global TOTAL_BYTES
    out = {}
    for name, t in tensors.items():
        assert isinstance(t, torch.Tensor), name
        assert t.dtype == torch.float32, f"{name}: {t.dtype}"
        assert t.is_contiguous(), name
        assert t.device.type == "cpu", name
        assert torch.isfinite(t).all(), f"{name} has non-finite values"
        out[name] = t
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file(out, path)
    os.chmod(path, 0o644)
    size = os.path.getsize(path)
    TOTAL_BYTES += size
    print(f"{os.path.relpath(path, ROOT)}: {len(out)} tensors, {size / 1024:.1f} KiB")


def gen(seed):
    return torch.Generator().manual_seed(seed)


def randn(g, *shape):
    return torch.randn(*shape, generator=g, dtype=torch.float32)


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def run_with_grads(fn, inputs, grad_output):
    """Compute fn(**inputs) in float64 and the grads of (output * grad_output).sum().

    inputs: dict name -> float32 tensor. Returns (output_f32, {"grad_<name>": f32}).
    """
    leaves = {k: v.detach().to(torch.float64).requires_grad_(True) for k, v in inputs.items()}
    out = fn(**leaves)
    loss = (out * grad_output.to(torch.float64)).sum()
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return f32(out), {f"grad_{k}": f32(gr) for k, gr in zip(leaves.keys(), grads)}


# ----------------------------------------------------------------------------- fixtures

def make_linear():
    g = gen(1001)
    x, w, b = randn(g, 3, 5, 8), randn(g, 6, 8), randn(g, 6)
    go = randn(g, 3, 5, 6)
    out, grads = run_with_grads(lambda x, weight, bias: F.linear(x, weight, bias),
                                {"x": x, "weight": w, "bias": b}, go)
    save(os.path.join(CORE_DIR, "linear.safetensors"),
         {"x": x, "weight": w, "bias": b, "output": out, "grad_output": go, **grads})


def make_layer_norm():
    g = gen(1002)
    x, w, b = randn(g, 4, 7, 12), randn(g, 12), randn(g, 12)
    go = randn(g, 4, 7, 12)
    go_na = randn(g, 4, 7, 12)
    out, grads = run_with_grads(lambda x, weight, bias: F.layer_norm(x, (12,), weight, bias, 1e-5),
                                {"x": x, "weight": w, "bias": b}, go)
    out_na, grads_na = run_with_grads(lambda x: F.layer_norm(x, (12,), None, None, 1e-6),
                                      {"x": x}, go_na)
    save(os.path.join(CORE_DIR, "layer_norm.safetensors"),
         {"x": x, "weight": w, "bias": b, "output": out, "grad_output": go, **grads,
          "output_noaffine": out_na, "grad_output_noaffine": go_na,
          "grad_x_noaffine": grads_na["grad_x"]})


def make_rms_norm():
    g = gen(1003)
    x, w = randn(g, 4, 7, 12), randn(g, 12)
    go = randn(g, 4, 7, 12)

    def rms(x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight

    out, grads = run_with_grads(rms, {"x": x, "weight": w}, go)
    save(os.path.join(CORE_DIR, "rms_norm.safetensors"),
         {"x": x, "weight": w, "output": out, "grad_output": go, **grads})


def make_group_norm():
    g = gen(1004)
    x, w, b = randn(g, 2, 8, 3, 5, 5), randn(g, 8), randn(g, 8)
    go = randn(g, 2, 8, 3, 5, 5)
    out, grads = run_with_grads(lambda x, weight, bias: F.group_norm(x, 4, weight, bias, 1e-6),
                                {"x": x, "weight": w, "bias": b}, go)
    save(os.path.join(CORE_DIR, "group_norm.safetensors"),
         {"x": x, "weight": w, "bias": b, "output": out, "grad_output": go, **grads})


def make_softmax():
    g = gen(1005)
    x = randn(g, 3, 4, 9)
    go_s, go_ls = randn(g, 3, 4, 9), randn(g, 3, 4, 9)
    sm, gs = run_with_grads(lambda x: F.softmax(x, dim=-1), {"x": x}, go_s)
    lsm, gls = run_with_grads(lambda x: F.log_softmax(x, dim=-1), {"x": x}, go_ls)
    save(os.path.join(CORE_DIR, "softmax.safetensors"),
         {"x": x,
          "softmax": sm, "grad_output_softmax": go_s, "grad_x_softmax": gs["grad_x"],
          "log_softmax": lsm, "grad_output_log_softmax": go_ls,
          "grad_x_log_softmax": gls["grad_x"]})


def make_conv3d():
    g = gen(1006)
    d = {}
    # Case A: symmetric zero padding (1,1,1), stride (1,2,2).
    x, w, b = randn(g, 2, 3, 5, 9, 8), randn(g, 4, 3, 3, 3, 3), randn(g, 4)
    conv_a = lambda x, weight, bias: F.conv3d(x, weight, bias, stride=(1, 2, 2), padding=(1, 1, 1))
    out_shape = conv_a(x.double(), w.double(), b.double()).shape
    go = randn(g, *out_shape)
    out, grads = run_with_grads(conv_a, {"x": x, "weight": w, "bias": b}, go)
    d.update({"x_a": x, "weight_a": w, "bias_a": b, "output_a": out, "grad_output_a": go})
    d.update({f"{k}_a": v for k, v in grads.items()})
    # Case B: causal temporal padding (2 past frames, 0 future), spatial 1 each side.
    x, w, b = randn(g, 1, 2, 5, 6, 6), randn(g, 3, 2, 3, 3, 3), randn(g, 3)

    def conv_b(x, weight, bias):
        xp = F.pad(x, (1, 1, 1, 1, 2, 0))
        return F.conv3d(xp, weight, bias, stride=(2, 1, 1), padding=0)

    out_shape = conv_b(x.double(), w.double(), b.double()).shape
    go = randn(g, *out_shape)
    out, grads = run_with_grads(conv_b, {"x": x, "weight": w, "bias": b}, go)
    d.update({"x_b": x, "weight_b": w, "bias_b": b, "output_b": out, "grad_output_b": go})
    d.update({f"{k}_b": v for k, v in grads.items()})
    save(os.path.join(CORE_DIR, "conv3d.safetensors"), d)


def make_conv2d():
    g = gen(1007)
    x, w, b = randn(g, 2, 3, 9, 8), randn(g, 5, 3, 3, 3), randn(g, 5)
    conv = lambda x, weight, bias: F.conv2d(x, weight, bias, stride=2, padding=1)
    go = randn(g, *conv(x.double(), w.double(), b.double()).shape)
    out, grads = run_with_grads(conv, {"x": x, "weight": w, "bias": b}, go)
    save(os.path.join(CORE_DIR, "conv2d.safetensors"),
         {"x": x, "weight": w, "bias": b, "output": out, "grad_output": go, **grads})


def make_pool_upsample():
    g = gen(1008)
    x = randn(g, 2, 3, 4, 6, 6)
    pool = lambda x: F.avg_pool3d(x, kernel_size=(2, 2, 2), stride=(2, 2, 2))
    up = lambda x: F.interpolate(x, scale_factor=(1, 2, 2), mode="nearest")
    go_p = randn(g, 2, 3, 2, 3, 3)
    go_u = randn(g, 2, 3, 4, 12, 12)
    p, gp = run_with_grads(pool, {"x": x}, go_p)
    u, gu = run_with_grads(up, {"x": x}, go_u)
    save(os.path.join(CORE_DIR, "pool_upsample.safetensors"),
         {"x": x,
          "avgpool": p, "grad_output_avgpool": go_p, "grad_x_avgpool": gp["grad_x"],
          "upsample": u, "grad_output_upsample": go_u, "grad_x_upsample": gu["grad_x"]})


def attention_ref(q, k, v, allowed=None):
    """softmax(q k^T / sqrt(Dh) + mask) v; allowed: bool (B or 1, 1, Lq or 1, Lk), True = keep."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def attention_case(g, prefix, q_shape, kv_shape, allowed=None):
    q, k, v = randn(g, *q_shape), randn(g, *kv_shape), randn(g, *kv_shape)
    go = randn(g, *q_shape[:-1], kv_shape[-1])
    out, grads = run_with_grads(lambda q, k, v: attention_ref(q, k, v, allowed),
                                {"q": q, "k": k, "v": v}, go)
    d = {f"{prefix}q": q, f"{prefix}k": k, f"{prefix}v": v,
         f"{prefix}output": out, f"{prefix}grad_output": go}
    d.update({f"{prefix}{k_}": t for k_, t in grads.items()})
    return d


def key_padding(lengths, total):
    return torch.stack([(torch.arange(total) < n).to(torch.float32) for n in lengths])


def make_attention():
    g = gen(1009)
    d = {}
    d.update(attention_case(g, "self_", (2, 3, 10, 16), (2, 3, 10, 16)))

    mask = key_padding([7, 4], 7)                                   # (2, 7)
    d.update(attention_case(g, "mask_", (2, 2, 7, 8), (2, 2, 7, 8),
                            allowed=mask.bool()[:, None, None, :]))
    d["mask_key_padding"] = mask

    offsets = [0, 5, 9, 13]
    seg = torch.zeros(13, dtype=torch.long)
    for i in range(len(offsets) - 1):
        seg[offsets[i]:offsets[i + 1]] = i
    block = (seg[:, None] == seg[None, :])[None, None]              # (1,1,13,13)
    d.update(attention_case(g, "packed_", (1, 2, 13, 32), (1, 2, 13, 32), allowed=block))
    d["packed_offsets"] = torch.tensor(offsets, dtype=torch.float32)

    cmask = key_padding([11, 8], 11)                                # (2, 11)
    d.update(attention_case(g, "cross_", (2, 4, 6, 128), (2, 4, 11, 128),
                            allowed=cmask.bool()[:, None, None, :]))
    d["cross_mask_key_padding"] = cmask
    save(os.path.join(CORE_DIR, "attention.safetensors"), d)


def make_rope():
    g = gen(1010)
    B, L, Nh, Dh = 2, 6, 3, 8
    x = randn(g, B, L, Nh, Dh)
    go = randn(g, B, L, Nh, Dh)
    pos = torch.arange(L, dtype=torch.float64)
    inv_freq = 10000.0 ** (-torch.arange(0, Dh, 2, dtype=torch.float64) / Dh)   # (Dh/2,)
    theta = pos[:, None] * inv_freq[None, :]                                     # (L, Dh/2)
    theta = theta.repeat_interleave(2, dim=-1)                                   # (L, Dh)
    cos64, sin64 = torch.cos(theta), torch.sin(theta)
    cos, sin = f32(cos64), f32(sin64)

    def rope(x):
        c = cos.to(torch.float64)[None, :, None, :]
        s = sin.to(torch.float64)[None, :, None, :]
        a, b = x[..., 0::2], x[..., 1::2]
        rot = torch.stack((-b, a), dim=-1).flatten(-2)
        return x * c + rot * s

    out, grads = run_with_grads(rope, {"x": x}, go)
    save(os.path.join(CORE_DIR, "rope.safetensors"),
         {"x": x, "cos": cos, "sin": sin, "output": out, "grad_output": go, **grads})


def make_elementwise():
    g = gen(1011)
    jitter = (torch.rand(50, generator=g, dtype=torch.float64) - 0.5) * 0.12
    x = f32(torch.sort((torch.linspace(-4, 4, 50, dtype=torch.float64) + jitter).clamp(-4, 4)).values)
    fns = {
        "gelu_exact": lambda t: F.gelu(t, approximate="none"),
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
        "silu": F.silu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
    }
    d = {"x": x}
    ones = torch.ones(50, dtype=torch.float32)
    for name, fn in fns.items():
        out, grads = run_with_grads(lambda x: fn(x), {"x": x}, ones)
        d[name] = out
        d[f"d_{name}"] = grads["grad_x"]
    save(os.path.join(CORE_DIR, "elementwise.safetensors"), d)


# ----------------------------------------------------------------------------- tiny transformer

class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim, bias=True)
        self.k_proj = nn.Linear(dim, dim, bias=True)
        self.v_proj = nn.Linear(dim, dim, bias=True)
        self.o_proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x):
        B, L, D = x.shape
        hd = D // self.heads
        q = self.q_proj(x).view(B, L, self.heads, hd).transpose(1, 2)
        k = self.k_proj(x).view(B, L, self.heads, hd).transpose(1, 2)
        v = self.v_proj(x).view(B, L, self.heads, hd).transpose(1, 2)
        p = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(hd), dim=-1)
        o = torch.matmul(p, v).transpose(1, 2).reshape(B, L, D)
        return self.o_proj(o)


class MLP(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = MLP(dim, 4 * dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


class TinyTransformer(nn.Module):
    def __init__(self, dim=16, heads=4, depth=2, out_dim=4):
        super().__init__()
        self.input_proj = nn.Linear(dim, dim, bias=True)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.head = nn.Linear(dim, out_dim)

    def forward(self, x):
        h = self.input_proj(x)
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.norm(h))


def make_tiny_transformer_adamw():
    torch.manual_seed(0)
    model = TinyTransformer()
    x = torch.randn(2, 8, 16)
    y = torch.randn(2, 8, 4)
    d = {"x": x, "y": y}
    d.update({f"init.{k}": f32(v.clone()) for k, v in model.state_dict().items()})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.01, amsgrad=False, foreach=False)
    losses = []
    for step in range(10):
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x), y)
        losses.append(loss.item())
        loss.backward()
        if step == 0:
            d.update({f"grad0.{k}": f32(p.grad.clone()) for k, p in model.named_parameters()})
        opt.step()
    with torch.no_grad():
        final_loss = F.mse_loss(model(x), y)
    d["losses"] = torch.tensor(losses, dtype=torch.float32)
    d["final_loss"] = f32(final_loss.reshape(1))
    d.update({f"final.{k}": f32(v.clone()) for k, v in model.state_dict().items()})
    print("  losses:", " ".join(f"{l:.6f}" for l in losses), f"-> final {final_loss.item():.6f}")
    save(os.path.join(OPTIM_DIR, "tiny_transformer_adamw.safetensors"), d)


# ----------------------------------------------------------------------------- main

def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    make_linear()
    make_layer_norm()
    make_rms_norm()
    make_group_norm()
    make_softmax()
    make_conv3d()
    make_conv2d()
    make_pool_upsample()
    make_attention()
    make_rope()
    make_elementwise()
    make_tiny_transformer_adamw()
    print(f"total: {TOTAL_BYTES / 1024:.1f} KiB (torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
