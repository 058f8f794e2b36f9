#!/usr/bin/env python3
"""The PyTorch peer of `goku bench block`: one goku-1b-shaped Goku block, forward + backward, on the CPU.

Usage (from the repository root; the venv comes from scripts/bench/setup_venv.sh, or any venv with torch):

    .venv-bench/bin/python scripts/bench/torch_block.py [--dtype fp32|bf16|both] [--threads 2] [--quick]
                                                        [--attention] [--skip-block] [--reps N]

The block is written from spec §3.3 exactly as Sources/GokuModel/GokuBlock.swift implements it (and as
scripts/reference/make_goku_fixtures.py checks it): adaLN-Zero modulation Linear(D, 6D) on SiLU(c), per-sample;
non-affine LayerNorm (eps 1e-6) modulated by (1 + scale) + shift; self-attention with QK RMSNorm over the full width
and 3D RoPE (interleaved pairs, axes 24/24/24) on q and k; a gated residual; cross-attention to 77 text tokens of
width 2048 after a learned RMSNorm (RoPE on the queries only, no gate); RMSNorm + modulation + GELU-tanh FFN (4D) and
a gated residual. D = 1152, 16 heads of 72, 1024 video tokens (a 4×16×16 latent grid), batch 1. Attention is
`F.scaled_dot_product_attention`. bf16 runs the same fp32 module under `torch.autocast("cpu", torch.bfloat16)`,
which is how PyTorch trains in mixed precision (fp32 master weights, cast every step).

Timing: `--reps` runs after 3 warm-ups, median reported. Memory: the peak RSS (VmHWM, reset through
/proc/self/clear_refs) during the first step above the RSS just before it, i.e. what one step allocates (weights and
inputs excluded, as in `goku bench block`). `--attention` also times SDPA alone (fwd+bwd) at 4096 tokens, 16 heads of 72;
`--skip-block` leaves the block out (`goku bench block --only attention`).

Output: human lines, and one machine line per case for `goku bench block --compare-torch`:
    RESULT <case> <dtype> ms=<median> peak_mib=<peak above baseline>
"""

import argparse
import ctypes
import gc
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

D, HEADS, TEXT_DIM, EPS = 1152, 16, 2048, 1e-6
AXES = (24, 24, 24)


def rope_tables(grid):
    t, h, w = torch.meshgrid(*(torch.arange(n) for n in grid), indexing="ij")
    pos = torch.stack([t.flatten(), h.flatten(), w.flatten()], dim=1).double()
    parts = []
    for a, dims in enumerate(AXES):
        freqs = 10000.0 ** (-torch.arange(0, dims, 2, dtype=torch.float64) / dims)
        ang = pos[:, a : a + 1] * freqs[None, :]
        parts.append(ang.repeat_interleave(2, dim=1))
    ang = torch.cat(parts, dim=1)
    return ang.cos().float(), ang.sin().float()


def apply_rope(x, cos, sin):
    # x (B, L, Nh, Dh), interleaved pairs: out = x*cos + rotate(x)*sin with rotate((a, b)) = (-b, a).
    rot = torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)
    return x * cos[None, :, None, :] + rot * sin[None, :, None, :]


class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype) * self.weight


class Attention(nn.Module):
    def __init__(self, dim, context_dim=None, heads=HEADS):
        super().__init__()
        cd = context_dim or dim
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(cd, dim, bias=False)
        self.v_proj = nn.Linear(cd, dim, bias=False)
        self.o_proj = nn.Linear(dim, dim, bias=False)
        self.q_norm = RMSNorm(dim)
        self.k_norm = RMSNorm(dim)

    def forward(self, x, context=None, rope=None, rope_keys=True, mask=None):
        src = x if context is None else context
        b, l, _ = x.shape
        q = self.q_norm(self.q_proj(x)).reshape(b, l, self.heads, -1)
        k = self.k_norm(self.k_proj(src)).reshape(b, src.shape[1], self.heads, -1)
        v = self.v_proj(src).reshape(b, src.shape[1], self.heads, -1)
        if rope is not None:
            q = apply_rope(q, *rope)
            if rope_keys:
                k = apply_rope(k, *rope)
        q, k, v = (t.transpose(1, 2).to(v.dtype) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(b, l, -1))


class GokuBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.ada = nn.Linear(D, 6 * D)
        self.attn1 = Attention(D)
        self.norm2 = RMSNorm(D)
        self.attn2 = Attention(D, TEXT_DIM)
        self.norm3 = RMSNorm(D)
        self.fc1 = nn.Linear(D, 4 * D)
        self.fc2 = nn.Linear(4 * D, D)

    def forward(self, x, c, text, rope):
        m = self.ada(c)[:, None, :].chunk(6, dim=-1)  # (B, 1, D) each
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = m
        h = F.layer_norm(x, (D,), eps=EPS) * (1 + scale_msa) + shift_msa
        x = x + gate_msa * self.attn1(h, rope=rope)
        x = x + self.attn2(self.norm2(x), context=text, rope=rope, rope_keys=False)
        h = self.norm3(x) * (1 + scale_mlp) + shift_mlp
        return x + gate_mlp * self.fc2(F.gelu(self.fc1(h), approximate="tanh"))


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def trim_heap():
    # glibc keeps freed heap pages mapped, so a case would reuse the previous case's pages and show almost no growth;
    # give them back first, as `goku bench` does before each of its measurements.
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def timed(step, reps):
    # Memory: the first step's peak RSS above the RSS before it (later steps reuse heap pages malloc kept).
    gc.collect()
    trim_heap()
    base = rss_mib()
    reset_peak()
    step()
    peak = peak_mib() - base
    for _ in range(2):
        step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, peak


def block_flops(tokens, text):
    linear = 4 * tokens * D * D + 2 * tokens * D * D + 2 * text * TEXT_DIM * D + 2 * tokens * D * 4 * D + D * 6 * D
    attention = 2 * tokens * tokens * D + 2 * tokens * text * D
    return 3 * 2 * (linear + attention)


def bench_block(dtype, tokens, reps):
    g = torch.Generator().manual_seed(1)
    block = GokuBlock()
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    grid = (tokens // 256, 16, 16)
    rope = rope_tables(grid)
    x = torch.randn(1, tokens, D, generator=g, requires_grad=True)
    c = torch.randn(1, D, generator=g)
    text = torch.randn(1, 77, TEXT_DIM, generator=g)
    w = torch.randn(1, tokens, D, generator=g)

    def step():
        block.zero_grad(set_to_none=True)
        x.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
            out = block(x, F.silu(c), text, rope)
        (out.float() * w).sum().backward()

    ms, peak = timed(step, reps)
    flops = block_flops(tokens, 77)
    print(f"torch block fwd+bwd {dtype}, {tokens} tokens + 77 text: {ms:.1f} ms, {flops / ms / 1e6:.1f} GFLOP/s, "
          f"peak +{peak:.0f} MiB")
    print(f"RESULT block {dtype} ms={ms:.3f} peak_mib={peak:.1f}")


def bench_attention(dtype, tokens, reps):
    g = torch.Generator().manual_seed(3)
    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    q, k, v = (torch.randn(1, HEADS, tokens, D // HEADS, generator=g).to(dt).requires_grad_() for _ in range(3))
    d_out = torch.randn(1, HEADS, tokens, D // HEADS, generator=g).to(dt)

    def step():
        for t in (q, k, v):
            t.grad = None
        F.scaled_dot_product_attention(q, k, v).backward(d_out)

    ms, peak = timed(step, reps)
    flops = 4.0 * tokens * tokens * D * 3.5
    print(f"torch SDPA fwd+bwd {dtype}, L={tokens} Nh={HEADS} Dh={D // HEADS}: {ms:.1f} ms, "
          f"{flops / ms / 1e6:.1f} GFLOP/s, peak +{peak:.0f} MiB")
    print(f"RESULT attention {dtype} ms={ms:.3f} peak_mib={peak:.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtype", choices=["fp32", "bf16", "both"], default="both")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="256 tokens, 1024 for attention, fewer runs")
    ap.add_argument("--attention", action="store_true", help="also SDPA alone at 4096 tokens")
    ap.add_argument("--skip-block", action="store_true", help="time only what --attention adds")
    ap.add_argument("--reps", type=int, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    reps = args.reps or (3 if args.quick else 10)
    dtypes = ["fp32", "bf16"] if args.dtype == "both" else [args.dtype]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for dt in [] if args.skip_block else dtypes:
        bench_block(dt, 256 if args.quick else 1024, reps)
    if args.attention:
        for dt in dtypes:
            bench_attention(dt, 1024 if args.quick else 4096, max(3, reps // 3))


if __name__ == "__main__":
    main()
