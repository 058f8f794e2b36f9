#!/usr/bin/env python3
"""Reference fixtures for Goku's Checkpoint tests (safetensors files written by Python).

Run (from the repository root, after scripts/reference/setup_venv.sh):

    .venv-reference/bin/python scripts/reference/make_checkpoint_fixtures.py

Everything is written with safetensors.torch.save_file (safetensors 0.8) from tensors built
from fixed values or a seeded torch.Generator, so the output is byte-for-byte deterministic.
One caveat makes a post-processing step necessary: safetensors keeps `__metadata__` in a
Rust HashMap, so with two or more metadata keys their order in the header changes from
run to run. Files with several metadata keys are therefore canonicalised after writing:
the metadata entries are re-ordered by key (same bytes, same length, still exactly what
the library reads back); see `canonicalize_metadata`.

Files (Tests/CheckpointTests/Fixtures/)
---------------------------------------
dtypes.safetensors
    One tensor per stored dtype, no metadata:
      f32 (2,3) F32, f64 (3,2) F64 (values that need double precision), bf16 (4,5) BF16,
      f16 (4,5) F16 (both with specials: ±0, ±inf, NaN, ties, subnormals, overflow),
      scalar () F32 = 2.5, empty (0,3) F32,
      i64 (4) I64, i32 (3) I32, i16 (3) I16, i8 (4) I8, u8 (3) U8, bool (4) BOOL.
dtypes_expected.safetensors
    For every key K of dtypes.safetensors except f64: K (F32) = the tensor's values in
    float32 (torch .float()), exact for every type here. For f64: f64 (F64, the same
    values) and f64_as_f32 (F32, rounded to nearest). bf16_source / f16_source (F32):
    the float32 values that torch rounded (.to(bfloat16) / .to(float16)) to make bf16 and
    f16, so a test can check that our rounding gives the same bits. (NaN excepted: torch's
    vectorised bf16 conversion writes NaN as 0xFFFF, the scalar one as 0x7FC0.)
metadata.safetensors
    weight (2,2) F32 = [[1,2],[3,4]]; __metadata__ {"format": "pt", "note": <string with
    quotes, backslash, newline, a control character, slash and non-ASCII>, "step": "1200"}
    (canonicalised: metadata keys sorted).
writer_source.safetensors
    The values of writer_reference.safetensors before conversion, stored losslessly: F32
    for every tensor except x64 (F64).
writer_reference.safetensors
    save_file(tensors, metadata={"format": "pt"}) of: a.weight (3,4) F32, a.bias (4) F32,
    emb (5,3) BF16 (= writer_source emb .to(bfloat16); specials but no NaN), norm (6) F16 (= .to(float16)),
    x64 (2,2) F64, scalar () F32, empty (0,2) F32, and a key with non-ASCII, a quote, a
    backslash and a slash: 'ünï/cødé"key\\' (1) F32. A Swift writer given the same
    tensors and metadata must produce exactly these bytes.
sharded/
    A Hugging Face sharded folder made like transformers' save_pretrained with
    max_shard_size = 800 bytes (shards split with huggingface_hub's algorithm, copied in
    `split_into_shards` because huggingface_hub is not installed), every shard with
    metadata {"format": "pt"}:
      model-00001-of-00002.safetensors: blocks.0.attn.weight (8,8) F32,
                                        blocks.0.mlp.weight (8,16) F32
      model-00002-of-00002.safetensors: blocks.1.attn.weight (8,8) F32,
                                        embed.weight (10,8) BF16, final_norm.weight (8) F32
      model.safetensors.index.json: {"metadata": {"total_size": 1216}, "weight_map": {...}}
      written with json.dumps(index, indent=2, sort_keys=True) + "\\n".
sharded_all.safetensors
    The same five tensors in one file (reference values for the sharded reader).
"""

import json
import os
import struct

import torch
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "CheckpointTests", "Fixtures")


def gen(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def canonicalize_metadata(path):
    """Rewrites the header of `path` with its __metadata__ keys sorted (same length)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = data[8 : 8 + n].decode("utf-8")
    parsed = json.loads(header)
    parsed["__metadata__"] = dict(sorted(parsed["__metadata__"].items()))
    # Python's json with these options escapes exactly like serde_json (the library's writer).
    text = json.dumps(parsed, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert len(text) <= n and len(header.encode("utf-8").rstrip(b" ")) == len(text), "canonical header length differs"
    text = text + b" " * (n - len(text))
    with open(path, "wb") as f:
        f.write(data[:8] + text + data[8 + n :])
    reread = load_file(path)
    assert set(reread) == {k for k in parsed if k != "__metadata__"}


BF16_SPECIALS = [
    0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan"),
    1.0 + 2**-8,  # halfway between 1 and the next bf16: ties to even (1.0)
    1.0 + 3 * 2**-8,  # halfway, rounds up to even (1 + 2**-6)
    3.0e38,  # rounds to a finite bf16
    3.4028234e38,  # float32 max: rounds to inf in bf16
    1e-40,  # float32 subnormal
    -7.0e-39, 65504.0, 0.1, -0.3333333,
]
F16_SPECIALS = [
    0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan"),
    65504.0,  # f16 max
    65520.0,  # halfway to the next binade: rounds to inf
    2049.0,  # tie: rounds to even (2048)
    2051.0,  # tie: rounds to 2052
    6e-8,  # f16 subnormal (about 2**-24)
    1e-8,  # below half the smallest subnormal: 0
    3e-5,  # subnormal with rounding
    0.1, -0.3333333,
]


def with_specials(specials, shape, seed):
    values = torch.randn(shape, generator=gen(seed), dtype=torch.float32).flatten()
    values[: len(specials)] = torch.tensor(specials, dtype=torch.float32)
    return values.reshape(shape)


def make_dtypes():
    f64 = torch.tensor([[1 / 3, 2 / 3], [1e-300, -1e300], [3.141592653589793, 1 + 2**-40]], dtype=torch.float64)
    bf16_source = with_specials(BF16_SPECIALS, (4, 5), 11)
    f16_source = with_specials(F16_SPECIALS, (4, 5), 12)
    tensors = {
        "f32": torch.randn((2, 3), generator=gen(10), dtype=torch.float32),
        "f64": f64,
        "bf16": bf16_source.to(torch.bfloat16),
        "f16": f16_source.to(torch.float16),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
        "i64": torch.tensor([0, -1, 2**40, -(2**20)], dtype=torch.int64),
        "i32": torch.tensor([7, -2147483648, 16777216], dtype=torch.int32),
        "i16": torch.tensor([-32768, 32767, 5], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0, -5], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 17], dtype=torch.uint8),
        "bool": torch.tensor([True, False, False, True]),
    }
    save_file(tensors, os.path.join(OUT, "dtypes.safetensors"))
    expected = {k: v.float() for k, v in tensors.items() if k != "f64"}
    expected["f64"] = f64
    expected["f64_as_f32"] = f64.float()
    expected["bf16_source"] = bf16_source
    expected["f16_source"] = f16_source
    save_file(expected, os.path.join(OUT, "dtypes_expected.safetensors"))


def make_metadata():
    path = os.path.join(OUT, "metadata.safetensors")
    note = 'say "hi" \\ back\nslash / \x01 héllo ✓'
    weight = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    save_file({"weight": weight}, path, metadata={"format": "pt", "step": "1200", "note": note})
    canonicalize_metadata(path)


def make_writer_pair():
    g = gen(20)
    source = {
        "a.weight": torch.randn((3, 4), generator=g),
        "a.bias": torch.randn((4,), generator=g),
        # No NaN here: torch's vectorised float32 -> bfloat16 path writes NaN as 0xFFFF, its scalar path (and
        # TensorCore) as 0x7FC0; both are NaN, but the bytes would differ for a reason unrelated to the writer.
        "emb": with_specials([v for v in BF16_SPECIALS if v == v][:12], (5, 3), 21),
        "norm": torch.tensor([1.0, 2049.0, 65520.0, 1e-8, -0.1, 3e-5]),
        "x64": torch.tensor([[1 / 3, -2.0], [1e-300, 7.0]], dtype=torch.float64),
        "scalar": torch.tensor(-1.25),
        "empty": torch.zeros((0, 2)),
        'ünï/cødé"key\\': torch.tensor([42.0]),
    }
    save_file(source, os.path.join(OUT, "writer_source.safetensors"))
    reference = dict(source)
    reference["emb"] = source["emb"].to(torch.bfloat16)
    reference["norm"] = source["norm"].to(torch.float16)
    save_file(reference, os.path.join(OUT, "writer_reference.safetensors"), metadata={"format": "pt"})


def split_into_shards(state_dict, max_shard_size):
    """huggingface_hub.split_state_dict_into_shards_factory, reduced to what is used here."""
    shards, current, current_size = [], {}, 0
    for key, tensor in state_dict.items():
        size = tensor.numel() * tensor.element_size()
        if size > max_shard_size:
            shards.append({key: tensor})
            continue
        if current_size + size > max_shard_size:
            shards.append(current)
            current, current_size = {}, 0
        current[key] = tensor
        current_size += size
    if current:
        shards.append(current)
    return shards


def make_sharded():
    g = gen(30)
    names = ["blocks.0.attn.weight", "blocks.0.mlp.weight", "blocks.1.attn.weight", "embed.weight", "final_norm.weight"]
    shapes = [(8, 8), (8, 16), (8, 8), (10, 8), (8,)]
    state = {}
    for name, shape in zip(names, shapes):
        state[name] = torch.randn(shape, generator=g)
    state["embed.weight"] = state["embed.weight"].to(torch.bfloat16)
    folder = os.path.join(OUT, "sharded")
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        os.remove(os.path.join(folder, old))
    shards = split_into_shards(state, 800)
    assert len(shards) == 2
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, os.path.join(folder, name), metadata={"format": "pt"})
        for key, tensor in shard.items():
            weight_map[key] = name
            total += tensor.numel() * tensor.element_size()
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    save_file(state, os.path.join(OUT, "sharded_all.safetensors"))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    make_dtypes()
    make_metadata()
    make_writer_pair()
    make_sharded()
    for name in sorted(os.listdir(OUT)):
        print(name)


if __name__ == "__main__":
    main()
