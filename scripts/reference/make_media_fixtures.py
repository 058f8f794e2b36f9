#!/usr/bin/env python3
"""Reference image files for Goku's Media tests, written and decoded by Pillow.

Run (from the repository root, after scripts/reference/setup_venv.sh):

    .venv-reference/bin/python scripts/reference/make_media_fixtures.py

Deterministic: every image comes from numpy's default_rng with a fixed seed. Files are
written into Tests/MediaTests/Fixtures/:

Image files (made by Pillow unless noted)
-----------------------------------------
rgb.png          13x9 RGB, 8-bit, random pixels.
rgba.png         11x7 RGBA, 8-bit, random pixels and alpha.
grey.png         10x6 L (8-bit grey).
grey16.png       9x5 I;16 (16-bit grey).
bilevel.png      17x5 mode "1" (1-bit grey).
palette.png      12x8 P (8-bit palette of 16 colours), with a tRNS chunk making index 3
                 fully and index 5 half transparent.
interlaced.png   8x8 RGB Adam7 interlaced, assembled by hand (Pillow cannot write
                 interlacing) with zlib; the reader must reject it with a clear error.
anim.gif         3 frames of 12x10 from a 6-colour palette, loop=0, duration 100 ms;
                 Pillow's writer crops later frames to the changed region and may use
                 transparency, so reading it exercises frame composition.
noise.gif        2 frames of 96x64 random indices into a 256-colour palette, loop=0,
                 duration 40 ms: over 4096 codes a frame, so Pillow's writer resets its LZW
                 table mid-frame.

Expected pixels (media_expected.safetensors)
--------------------------------------------
Every key is a float32 tensor of byte values 0..255, shaped (H, W, 3) for images and
(T, H, W, 3) for the GIF, holding what the reader must produce:
rgb, grey, palette_*: Pillow's decoded pixels (grey replicated to RGB).
grey16           round(v * 255 / 65535) of the 16-bit samples.
bilevel          0 or 255.
rgba             alpha composited over black: round(c * a / 255).
palette          palette colour composited over black with the tRNS alpha.
anim             Pillow's decoded frames, each converted to RGB (composed on the canvas).
noise            likewise for noise.gif.
"""
import os
import struct
import zlib

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "MediaTests", "Fixtures")


def over_black(rgb, alpha):
    """round(c * a / 255) in exact integer arithmetic (no ties occur: 255 is odd)."""
    return (rgb.astype(np.int64) * alpha[..., None].astype(np.int64) * 2 + 255) // 510


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(0)
    expected = {}

    rgb = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(os.path.join(OUT, "rgb.png"))
    expected["rgb"] = np.asarray(Image.open(os.path.join(OUT, "rgb.png")).convert("RGB"))

    rgba = rng.integers(0, 256, (7, 11, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, "rgba.png"))
    back = np.asarray(Image.open(os.path.join(OUT, "rgba.png")))
    expected["rgba"] = over_black(back[..., :3], back[..., 3])

    grey = rng.integers(0, 256, (6, 10), dtype=np.uint8)
    Image.fromarray(grey, "L").save(os.path.join(OUT, "grey.png"))
    expected["grey"] = np.asarray(Image.open(os.path.join(OUT, "grey.png")).convert("RGB"))

    grey16 = rng.integers(0, 65536, (5, 9), dtype=np.uint16)
    Image.fromarray(grey16).save(os.path.join(OUT, "grey16.png"))
    back16 = np.asarray(Image.open(os.path.join(OUT, "grey16.png"))).astype(np.int64)
    assert (back16 == grey16).all()
    g8 = (back16 * 255 * 2 + 65535) // (2 * 65535)
    expected["grey16"] = np.repeat(g8[..., None], 3, axis=2)

    bilevel = rng.integers(0, 2, (5, 17), dtype=np.uint8) * 255
    Image.fromarray(bilevel, "L").convert("1").save(os.path.join(OUT, "bilevel.png"))
    expected["bilevel"] = np.asarray(Image.open(os.path.join(OUT, "bilevel.png")).convert("RGB"))

    colours = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    indices = rng.integers(0, 16, (8, 12), dtype=np.uint8)
    pal = Image.fromarray(indices, "P")
    pal.putpalette(colours.flatten().tolist())
    alpha = np.full(16, 255, dtype=np.uint8)
    alpha[3], alpha[5] = 0, 128
    pal.save(os.path.join(OUT, "palette.png"), transparency=bytes(alpha.tolist()))
    back_p = Image.open(os.path.join(OUT, "palette.png"))
    assert back_p.mode == "P"
    back_rgba = np.asarray(back_p.convert("RGBA"))
    expected["palette"] = over_black(back_rgba[..., :3], back_rgba[..., 3])

    # Adam7-interlaced 8x8 RGB, by hand: every pass's rows with filter byte 0.
    pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    passes = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 4, 8), (0, 2, 4, 4), (2, 0, 2, 4), (0, 1, 2, 2), (1, 0, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        for y in range(y0, 8, dy):
            raw += b"\x00" + pixels[y, x0::dx].tobytes()

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 1))
    png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    with open(os.path.join(OUT, "interlaced.png"), "wb") as f:
        f.write(png)

    palette6 = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 255, 255]], np.uint8)
    frames = []
    base = rng.integers(0, 6, (10, 12))
    for t in range(3):
        idx = base.copy()
        idx[2 + t : 5 + t, 3 + 2 * t : 7 + 2 * t] = 1 + t  # a block that moves and changes colour
        frames.append(Image.fromarray(palette6[idx], "RGB"))
    frames[0].save(os.path.join(OUT, "anim.gif"), save_all=True, append_images=frames[1:], loop=0, duration=100)
    gif = Image.open(os.path.join(OUT, "anim.gif"))
    decoded = []
    for t in range(gif.n_frames):
        gif.seek(t)
        decoded.append(np.asarray(gif.convert("RGB")))
    expected["anim"] = np.stack(decoded)
    assert (expected["anim"] == np.stack([np.asarray(f) for f in frames])).all()

    palette256 = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    noise = [Image.fromarray(palette256[rng.integers(0, 256, (64, 96))], "RGB") for _ in range(2)]
    noise[0].save(os.path.join(OUT, "noise.gif"), save_all=True, append_images=noise[1:], loop=0, duration=40)
    gif = Image.open(os.path.join(OUT, "noise.gif"))
    decoded = []
    for t in range(gif.n_frames):
        gif.seek(t)
        decoded.append(np.asarray(gif.convert("RGB")))
    expected["noise"] = np.stack(decoded)
    assert (expected["noise"] == np.stack([np.asarray(f) for f in noise])).all()

    tensors = {k: torch.from_numpy(np.ascontiguousarray(v).astype(np.float32)) for k, v in expected.items()}
    save_file(tensors, os.path.join(OUT, "media_expected.safetensors"))
    for k, v in sorted(tensors.items()):
        print(k, tuple(v.shape))


if __name__ == "__main__":
    main()
