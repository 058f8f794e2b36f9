#!/usr/bin/env python3
"""The PyTorch peer of `goku bench train`: one full training step of the shipped model's configuration, on the CPU.

Usage (from the repository root; the venv comes from scripts/bench/setup_venv.sh, or any venv with torch):

    .venv-bench/bin/python scripts/bench/torch_train_step.py [--dtype fp32|bf16] [--threads 2] [--reps N]
                                                            [--checkpointing]

The step is the one `goku bench train` times, written from Sources/GokuModel, Sources/TextEncoder and
Sources/goku/Bench/BenchTrainSample.swift:
- text: the Shapes T5 encoder (d_model 256, 2 layers, 4 heads of 64, gated-GELU FFN 512, relative position buckets
  32 up to distance 128, RMS layer norms), trained jointly; 8 captions of the Shapes grammar as token ids (the
  tokenizer is not timed here; in `goku` it costs microseconds);
- transformer: GokuConfig.small with image conditioning (D 256, 8 blocks, 4 heads of 64, FFN 1024 GELU-tanh, patches
  1×2×2 of 16 latent channels plus 16 conditioning channels (zeros), 3D RoPE with axes 16/24/24, QK RMSNorm, adaLN-Zero
  per sample, cross-attention to each sample's own caption);
- batch: 5 videos (16×5×8×8 latents) and 3 images (16×1×8×8) packed into one sequence of 448 tokens, attention
  restricted to each sample (a block-diagonal mask for `F.scaled_dot_product_attention`), flow times 0.3 … 0.65;
- loss: the rectified-flow MSE against x1 − x0; backward; global gradient-norm clipping at 1; AdamW (lr 1e-4, no
  weight decay) over the transformer and the text encoder.
bf16 runs the same fp32 transformer under `torch.autocast("cpu", torch.bfloat16)` (the text encoder in fp32, as
`goku train --precision bf16` runs them). `--checkpointing` wraps each block in
`torch.utils.checkpoint` (non-reentrant), as `goku bench train` times its second case.

The parameter count is printed so that it can be checked against the Swift model's (`goku bench train` prints both).

Timing: median of `--reps` steps after 3 warm-ups; memory: the peak RSS of the first step above the RSS before it
(as in torch_block.py). Output: human lines, and one machine line:
    RESULT train <dtype>[-checkpointing] ms=<median> peak_mib=<peak above baseline> params=<count>
"""

import argparse
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_block import Attention, RMSNorm, timed  # noqa: E402

D, DEPTH, HEADS, C, PATCH, AXES, FREQ, EPS = 256, 8, 4, 16, (1, 2, 2), (16, 24, 24), 256, 1e-6
T5_D, T5_KV, T5_FF, T5_LAYERS, T5_HEADS, BUCKETS, MAX_DISTANCE, VOCAB = 256, 64, 512, 2, 4, 32, 128, 128
SHAPES = [(C, 5, 8, 8)] * 5 + [(C, 1, 8, 8)] * 3
CAPTION_LENGTHS = [8, 4, 10, 8, 4, 10, 8, 4]


# ---- The text encoder (T5 encoder, as Sources/TextEncoder/T5EncoderModel.swift) ----

def relative_buckets(length):
    """Bidirectional T5 buckets of (key − query), (length, length)."""
    rel = torch.arange(length)[None, :] - torch.arange(length)[:, None]
    half = BUCKETS // 2
    bucket = (rel > 0).long() * half
    n = rel.abs()
    exact = half // 2
    large = exact + (torch.log(n.float().clamp(min=1) / exact) / math.log(MAX_DISTANCE / exact) * (half - exact)).long()
    large = large.clamp(max=half - 1)
    return bucket + torch.where(n < exact, n, large)


class T5Layer(nn.Module):
    def __init__(self, has_bias):
        super().__init__()
        inner = T5_HEADS * T5_KV
        self.norm1 = RMSNorm(T5_D)
        self.q, self.k, self.v = (nn.Linear(T5_D, inner, bias=False) for _ in range(3))
        self.o = nn.Linear(inner, T5_D, bias=False)
        self.bias = nn.Embedding(BUCKETS, T5_HEADS) if has_bias else None
        self.norm2 = RMSNorm(T5_D)
        self.wi_0 = nn.Linear(T5_D, T5_FF, bias=False)
        self.wi_1 = nn.Linear(T5_D, T5_FF, bias=False)
        self.wo = nn.Linear(T5_FF, T5_D, bias=False)

    def forward(self, x, position_bias, key_mask):
        b, l, _ = x.shape
        h = self.norm1(x)
        q, k, v = (p(h).reshape(b, l, T5_HEADS, T5_KV).transpose(1, 2) for p in (self.q, self.k, self.v))
        # T5 does not scale the scores; the bias carries the positions and the padding.
        mask = position_bias + torch.where(key_mask[:, None, None, :], 0.0, float("-inf"))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype), scale=1.0)
        x = x + self.o(out.transpose(1, 2).reshape(b, l, -1))
        h = self.norm2(x)
        return x + self.wo(F.gelu(self.wi_0(h), approximate="tanh") * self.wi_1(h))


class T5Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, T5_D)
        self.layers = nn.ModuleList(T5Layer(i == 0) for i in range(T5_LAYERS))
        self.final_norm = RMSNorm(T5_D)

    def forward(self, ids, key_mask):
        x = self.embed(ids)
        bias = self.layers[0].bias(relative_buckets(ids.shape[1])).permute(2, 0, 1)[None]  # (1, H, L, L)
        for layer in self.layers:
            x = layer(x, bias, key_mask)
        return self.final_norm(x)


# ---- The transformer (GokuConfig.small, packed) ----

def rope_table(grids):
    """cos, sin (L, Dh) for the packed tokens of samples with latent grids (T, H/2, W/2)."""
    rows = []
    for t, h, w in grids:
        tt, hh, ww = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
        rows.append(torch.stack([tt.flatten(), hh.flatten(), ww.flatten()], dim=1))
    pos = torch.cat(rows).double()
    parts = []
    for a, dims in enumerate(AXES):
        freqs = 10000.0 ** (-torch.arange(0, dims, 2, dtype=torch.float64) / dims)
        parts.append((pos[:, a : a + 1] * freqs[None, :]).repeat_interleave(2, dim=1))
    ang = torch.cat(parts, dim=1)
    return ang.cos().float(), ang.sin().float()


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ada = nn.Linear(D, 6 * D)
        self.attn1 = Attention(D, heads=HEADS)
        self.norm2 = RMSNorm(D)
        self.attn2 = Attention(D, T5_D, heads=HEADS)
        self.norm3 = RMSNorm(D)
        self.fc1 = nn.Linear(D, 4 * D)
        self.fc2 = nn.Linear(4 * D, D)

    def forward(self, x, c, owner, text, self_mask, cross_mask, rope):
        m = self.ada(c)[owner][None].chunk(6, dim=-1)  # per token, from its sample's conditioning
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = m
        h = F.layer_norm(x, (D,), eps=EPS) * (1 + scale_msa) + shift_msa
        x = x + gate_msa * self.attn1(h, rope=rope, mask=self_mask)
        x = x + self.attn2(self.norm2(x), context=text, rope=rope, rope_keys=False, mask=cross_mask)
        h = self.norm3(x) * (1 + scale_mlp) + shift_mlp
        return x + gate_mlp * self.fc2(F.gelu(self.fc1(h), approximate="tanh"))


class Goku(nn.Module):
    def __init__(self):
        super().__init__()
        p = PATCH[0] * PATCH[1] * PATCH[2]
        self.x_embedder = nn.Linear(2 * C * p, D)
        self.t1 = nn.Linear(FREQ, D)
        self.t2 = nn.Linear(D, D)
        self.blocks = nn.ModuleList(Block() for _ in range(DEPTH))
        self.final_ada = nn.Linear(D, 2 * D)
        self.final = nn.Linear(D, p * C)
        self.checkpointing = False

    def forward(self, patches, t, owner, text, self_mask, cross_mask, rope):
        half = FREQ // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = t[:, None] * 1000 * freqs[None, :]
        c = F.silu(self.t2(F.silu(self.t1(torch.cat([args.cos(), args.sin()], dim=1)))))
        x = self.x_embedder(patches)
        for block in self.blocks:
            if self.checkpointing:
                x = checkpoint(block, x, c, owner, text, self_mask, cross_mask, rope, use_reentrant=False)
            else:
                x = block(x, c, owner, text, self_mask, cross_mask, rope)
        shift, scale = self.final_ada(c)[owner][None].chunk(2, dim=-1)
        return self.final(F.layer_norm(x, (D,), eps=EPS) * (1 + scale) + shift)


def patchify(latent):
    """(C, T, H, W) with zero conditioning channels → (T·H/2·W/2, 2C·4), grid."""
    x = torch.cat([latent, torch.zeros_like(latent)], dim=0)
    c, t, h, w = x.shape
    g = (t, h // 2, w // 2)
    x = x.reshape(c, t, 1, g[1], 2, g[2], 2).permute(1, 3, 5, 0, 2, 4, 6)
    return x.reshape(g[0] * g[1] * g[2], c * 4), g


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--checkpointing", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    model, text_encoder = Goku(), T5Encoder()
    with torch.no_grad():  # a trained-like model: every weight random, gates not zero
        for p in list(model.parameters()) + list(text_encoder.parameters()):
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    model.checkpointing = args.checkpointing
    params = list(model.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0)

    latents = [torch.randn(s, generator=g) for s in SHAPES]
    noises = [torch.randn(s, generator=g) for s in SHAPES]
    times = torch.tensor([0.3 + 0.05 * i for i in range(8)])
    longest = max(CAPTION_LENGTHS)
    ids = torch.randint(1, VOCAB, (8, longest), generator=g)
    text_mask = torch.arange(longest)[None, :] < torch.tensor(CAPTION_LENGTHS)[:, None]
    # Packing: each sample's tokens in turn; self-attention within the sample, cross-attention to its own caption.
    grids, counts = [], []
    for latent in latents:
        _, grid = patchify(latent)
        grids.append(grid)
        counts.append(grid[0] * grid[1] * grid[2])
    owner = torch.repeat_interleave(torch.arange(8), torch.tensor(counts))
    tokens = int(owner.numel())
    self_mask = owner[:, None] == owner[None, :]
    text_owner = torch.repeat_interleave(torch.arange(8), longest)
    cross_mask = (owner[:, None] == text_owner[None, :]) & text_mask.flatten()[None, :]
    rope = rope_table(grids)

    def step():
        optimizer.zero_grad(set_to_none=True)
        states = text_encoder(ids, text_mask).reshape(1, 8 * longest, T5_D)  # fp32, as in `goku train`
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bf16"):
            xs, targets = [], []
            for i in range(8):
                t = float(times[i])
                xs.append(patchify(t * latents[i] + (1 - t) * noises[i])[0])
                targets.append(latents[i] - noises[i])
            out = model(torch.cat(xs)[None], times, owner, states, self_mask, cross_mask, rope)
        # Unpatchify is a permutation: compare in token order against the patchified targets.
        target = torch.cat([patchify(tg)[0][:, : C * 4] for tg in targets])[None]
        loss = F.mse_loss(out.float(), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    count = sum(p.numel() for p in params)
    ms, peak = timed(step, args.reps)
    name = args.dtype + ("-checkpointing" if args.checkpointing else "")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads: training step {name}, {tokens} tokens, "
          f"{count} parameters: {ms:.1f} ms, {tokens / ms * 1e3:.0f} tokens/s, peak +{peak:.0f} MiB")
    print(f"RESULT train {name} ms={ms:.3f} peak_mib={peak:.1f} params={count}")


if __name__ == "__main__":
    main()
