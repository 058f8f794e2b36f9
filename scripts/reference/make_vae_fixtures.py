#!/usr/bin/env python3
"""Reference fixtures for the VideoVAE tests, produced with diffusers' AutoencoderKLCogVideoX.

Run (from the repository root, after scripts/reference/setup_venv.sh):

    .venv-reference/bin/python scripts/reference/make_vae_fixtures.py

Deterministic: CPU only, one thread, torch.manual_seed(0) before the model is built, then
every parameter is perturbed with a seeded torch.Generator (so GroupNorm scales and shifts
are not the trivial 1 and 0). The weights are saved in float32; every reference output is
computed by a float64 copy of the same model (weights cast up) on float32 inputs, and cast
back to float32.

Files (Tests/VideoVAETests/Fixtures/)
-------------------------------------
tiny/config.json, tiny/diffusion_pytorch_model.safetensors
    A diffusers folder written by `save_pretrained` (unchanged diffusers format):
    block_out_channels (8, 8, 8, 16), latent_channels 4, layers_per_block 1,
    norm_num_groups 4, temporal_compression_ratio 4 (so 8x spatial, 4x temporal).
image.safetensors
    video (1,3,1,16,24) in [-1,1]; mean, logvar (1,4,1,2,3): the encoder run on the whole
    clip (chunk(2, dim=1) of its output; logvar NOT clamped; it is well inside [-30, 20]);
    decoded (1,3,1,16,24): the decoder run on `mean`.
clip9.safetensors
    video (2,3,9,16,24) (batch of 2); mean, logvar (2,4,3,2,3); decoded (2,3,9,16,24).
    For 1 and 9 frames diffusers' own encode/decode process the clip in one piece, so these
    are what the full model computes.
clip17.safetensors  (temporal chunking with the causal-convolution cache)
    video (1,3,17,16,24); mean, logvar (1,4,5,2,3): the encoder on the whole clip;
    chunked_mean, chunked_logvar: diffusers' `_encode` (frame batches of 8: frames 0..8,
    then 9..16, conv_cache carried over); decoded (1,3,17,16,24): the decoder on `mean`
    whole; chunked_decoded: diffusers' `_decode` of `mean` (latent batches of 2: latent
    frames 0..2, then 3..4, conv_cache carried over). GroupNorm statistics are per chunk
    in the chunked path, so chunked and whole differ.
tiled.safetensors  (spatial tiling: diffusers' tiled_encode / tiled_decode)
    Tiling enabled with enable_tiling(tile_sample_min_height=32, tile_sample_min_width=32,
    tile_overlap_factor_height=0.25, tile_overlap_factor_width=0.25): 32-pixel tiles (4
    latent cells) starting every 24 pixels (3 cells), blended linearly over 8 pixels
    (decode) / 1 cell (encode). Two inputs, prefixes image_ and clip_:
      image_video (1,3,1,48,48): 2x2 tiles; clip_video (1,3,9,16,40): 1x2 tiles.
    <p>mean, <p>logvar: diffusers' _encode (tiled; frame batches of 8 inside each tile);
    <p>whole_mean: the encoder on the whole input (untiled), and <p>decoded: diffusers'
    _decode (tiled; latent batches of 2 inside each tile) of <p>whole_mean.
gradients.safetensors  (the training loss's gradients through encoder and decoder)
    video (2,3,9,16,24); eps (2,4,3,2,3): the noise of the posterior sample;
    loss = mean|r - x| + mean((r - x)^2) + 0.01 * mean(0.5 * (mean^2 + exp(logvar) - 1 - logvar))
    where z = mean + exp(0.5 * logvar) * eps and r = decoder(z) (whole clip, no chunking);
    loss (1,); grad.video; grad.<parameter name> for every parameter (diffusers' names).
"""

import json
import os
import shutil

import torch
from diffusers import AutoencoderKLCogVideoX
from safetensors.torch import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "VideoVAETests", "Fixtures")

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def save(name, tensors):
    out = {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}
    for k, v in out.items():
        assert torch.isfinite(v).all(), k
    path = os.path.join(OUT, name)
    save_file(out, path)
    print(f"{name}: {os.path.getsize(path)} bytes")


def build():
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 16),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=4,
        temporal_compression_ratio=4,
        sample_height=16,
        sample_width=24,
        scaling_factor=0.7,
        shift_factor=0.1,
    ).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in vae.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name.endswith("norm_layer.weight") or (".norm" in name and name.endswith(".weight")):
                p.copy_(1 + 0.2 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.1 * noise)
            else:
                p.add_(0.02 * noise)
    return vae


def encode_whole(vae, x):
    h, _ = vae.encoder(x)
    mean, logvar = h.chunk(2, dim=1)
    return mean, logvar


def main():
    os.makedirs(OUT, exist_ok=True)
    vae = build()
    folder = os.path.join(OUT, "tiny")
    shutil.rmtree(folder, ignore_errors=True)
    vae.save_pretrained(folder, safe_serialization=True)
    print("tiny/:", sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)), "bytes")

    ref = build().double()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, frames, batch in [("image", 1, 1), ("clip9", 9, 2), ("clip17", 17, 1)]:
            video = torch.rand((batch, 3, frames, 16, 24), generator=g) * 2 - 1
            x = video.double()
            mean, logvar = encode_whole(ref, x)
            assert logvar.min() > -30 and logvar.max() < 20
            decoded, _ = ref.decoder(mean)
            tensors = {"video": video, "mean": mean, "logvar": logvar, "decoded": decoded}
            if name == "clip17":
                h = ref._encode(x)
                cm, cl = h.chunk(2, dim=1)
                tensors["chunked_mean"], tensors["chunked_logvar"] = cm, cl
                tensors["chunked_decoded"] = ref._decode(mean).sample
                print("clip17 chunked vs whole: mean", (cm - mean).abs().max().item(),
                      "decoded", (tensors["chunked_decoded"] - decoded).abs().max().item())
            save(f"{name}.safetensors", tensors)

        ref.enable_tiling(tile_sample_min_height=32, tile_sample_min_width=32,
                          tile_overlap_factor_height=0.25, tile_overlap_factor_width=0.25)
        tensors = {}
        for prefix, shape in [("image_", (1, 3, 1, 48, 48)), ("clip_", (1, 3, 9, 16, 40))]:
            video = torch.rand(shape, generator=g) * 2 - 1
            x = video.double()
            mean, logvar = ref._encode(x).chunk(2, dim=1)
            whole_mean, _ = encode_whole(ref, x)
            decoded = ref._decode(whole_mean).sample
            tensors.update({prefix + "video": video, prefix + "mean": mean, prefix + "logvar": logvar,
                            prefix + "whole_mean": whole_mean, prefix + "decoded": decoded})
            print(prefix, "tiled vs whole mean", (mean - whole_mean).abs().max().item())
        save("tiled.safetensors", tensors)

    video = torch.rand((2, 3, 9, 16, 24), generator=g) * 2 - 1
    eps = torch.randn((2, 4, 3, 2, 3), generator=g)
    x = video.double().requires_grad_(True)
    mean, logvar = encode_whole(ref, x)
    z = mean + torch.exp(0.5 * logvar) * eps.double()
    r, _ = ref.decoder(z)
    kl = 0.5 * (mean ** 2 + torch.exp(logvar) - 1 - logvar)
    loss = (r - x).abs().mean() + ((r - x) ** 2).mean() + 0.01 * kl.mean()
    loss.backward()
    tensors = {"video": video, "eps": eps, "loss": loss.detach().reshape(1), "grad.video": x.grad}
    for name, p in ref.named_parameters():
        tensors["grad." + name] = p.grad
    save("gradients.safetensors", tensors)


if __name__ == "__main__":
    main()
