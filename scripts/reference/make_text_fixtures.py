#!/usr/bin/env python3
"""Reference fixtures for the TextEncoder target (T5 tokenizer and T5 encoder).

Run (from the repository root, after scripts/reference/setup_venv.sh):

    .venv-reference/bin/python scripts/reference/make_text_fixtures.py

Needs torch, safetensors, transformers, sentencepiece (and tokenizers, pulled in by transformers). CPU only, one
thread, fixed seeds.

Files (Tests/TextEncoderTests/Fixtures/)
----------------------------------------
tokenizer/spiece.model
    A SentencePiece Unigram model trained by this script with the `sentencepiece` package on the committed corpus
    scripts/reference/data/text_corpus.txt: vocab_size 400, model_type unigram, character_coverage 0.995 (so rare
    characters such as most CJK ones stay out of the vocabulary and exercise <unk>), T5's special ids pad 0, eos 1,
    unk 2, no bos, default normaliser nmt_nfkc, one thread.
tokenizer/tokenizer.json, tokenizer/tokenizer_config.json
    The same tokenizer converted by transformers (`T5Tokenizer.from_pretrained` on a folder holding only spiece.model,
    then `save_pretrained`): the Hugging Face Unigram model (the 400 pieces plus 100 <extra_id_N> tokens), the
    Precompiled normaliser (the charsmap of spiece.model), WhitespaceSplit + Metaspace pre-tokeniser, </s> template.
tokenizer_cases.json
    Cases: the hand-written TEST_TEXTS below, the first 150 lines of the training corpus, and 120 seeded random
    strings over awkward characters (fuzz_texts). Format:
    {"max_length": 16, "cases": [{"text", "ids", "sentencepiece_ids", "truncated_ids", "truncated_mask"}]}:
    `ids` from transformers' tokenizer (`tok(text).input_ids`, </s> appended, no truncation); `sentencepiece_ids`
    from the sentencepiece library (`sp.encode(text) + [1]`), recorded to show where the two reference
    implementations agree; `truncated_ids`/`truncated_mask` from
    `tok(text, max_length=16, padding="max_length", truncation=True)` (pad id 0, </s> kept as the last id).
t5_gated/ (config.json, model.safetensors), t5_gated_io.safetensors
    A random transformers T5EncoderModel, feed_forward_proj "gated-gelu" (gelu_new = tanh GELU): d_model 16, d_kv 6,
    num_heads 3 (inner width 18 != d_model), d_ff 24, num_layers 2, vocab 40, relative_attention_num_buckets 8,
    relative_attention_max_distance 12 (sequence length 20 > 12 exercises the logarithmic buckets),
    layer_norm_epsilon 1e-6. Weights are N(0, 0.5) except norms N(1, 0.1), float32, saved with the key
    `shared.weight` only (as transformers saves tied weights).
    io: input_ids (2, 20) and attention_mask (2, 20) as float32 (row 1 has 13 real tokens then padding),
    last_hidden_state (2, 20, 16) from the model in float32 (eval mode).
t5_relu/ (config.json, model.safetensors.index.json, model-00001-of-00002.safetensors, model-00002-of-00002...),
t5_relu_io.safetensors
    Same shapes with feed_forward_proj "relu", num_layers 3; the weights are rounded to bfloat16 and stored as BF16
    in a two-shard checkpoint whose index maps every key; the embedding is stored under `encoder.embed_tokens.weight`
    only. last_hidden_state is computed with the bfloat16-rounded weights in float32 (so a float32 load of the BF16
    file must reproduce it).
t5_pipeline/ (config.json, model.safetensors), t5_pipeline_io.safetensors
    End to end: a random gated-GELU encoder (d_model 16, d_kv 4, 4 heads, d_ff 32, 2 layers, vocab 512 >= the
    tokenizer's 500 ids, torch default T5 init, seed 13) used with tokenizer/ above. The test copies a tokenizer file
    into a temporary folder with these files. io: the three PIPELINE_PROMPTS tokenised by transformers with
    max_length 20, padding "max_length", truncation -> input_ids (3, 20), attention_mask (3, 20) as float32, and
    last_hidden_state (3, 20, 16).
"""
import io
import json
import os
import shutil
import tempfile

import sentencepiece as spm
import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "TextEncoderTests", "Fixtures")
CORPUS = os.path.join(ROOT, "scripts", "reference", "data", "text_corpus.txt")

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

# The committed test corpus: what the Swift tokenizer must reproduce id for id.
TEST_TEXTS = [
    "a large red circle moving right",
    "A small blue square moving left and a green star bouncing",
    "",
    " ",
    "   leading and trailing spaces   ",
    "repeated    spaces   between     words",
    "tabs\tand\nnewlines\r\nand\u3000ideographic space",
    "The quick brown fox jumps over the lazy dog.",
    "Café crème brûlée, naïve façade, déjà vu.",
    "Combining accents: e\u0301 a\u0300 n\u0303",
    "東京は日本の首都です。北京欢迎你。",
    "서울 Москва Αθήνα",
    "emoji 🍕🍦 and 👩\u200d👩\u200d👧 family, flags 🇫🇷",
    "digits 0123456789 and 3.14159, -42, 1e10, ½ ² ①",
    "punctuation!? ... --- (brackets) [square] {curly} <angle> @#$%^&*_+=|\\/~`",
    "\"quotes\" 'single' “curly” ‘quotes’ «guillemets»",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ and ligatures ﬁ ﬂ ﬀ",
    "ALL CAPS and MiXeD cAsE",
    "zero\u200bwidth and soft\u00adhyphen and nbsp\u00a0space",
    "unknownchars ☃☃☃ ✓✓ snowman",
    "x" * 7,
    " ".join(["a large red circle moving right"] * 12),
]


def fuzz_texts(count=120, seed=5):
    """Seeded random strings over a pool of awkward characters: spaces of every kind, control characters, accents
    precomposed and combining, full-width and ligature forms, CJK, emoji with joiners and modifiers."""
    import random

    rng = random.Random(seed)
    pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-()[]/")
            + [" "] * 12 + ["\t", "\n", "\r", "\u3000", "\u00a0", "\u2009", "\u200b", "\u00ad", "\u0007", "\ufeff"]
            + list("éèêëàâäîïôöûüçñÉÀÇ") + ["e\u0301", "a\u0308", "\u0301", "\u0327"]
            + list("ＡＢＣａｂｃ０１２ﬁﬂ①½²™…") + list("東京北京日本の字") + ["🍕", "👍🏽", "👩\u200d💻", "🇯🇵", "❤️"])
    out = []
    for _ in range(count):
        n = rng.randint(1, 24)
        out.append("".join(rng.choice(pool) for _ in range(n)))
    return out


def train_tokenizer(folder):
    model = io.BytesIO()
    with open(CORPUS, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=400, model_type="unigram",
        character_coverage=0.995, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, num_threads=1, minloglevel=2)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "spiece.model"), "wb") as f:
        f.write(model.getvalue())


def make_tokenizer_fixtures():
    from transformers import T5Tokenizer

    folder = os.path.join(OUT, "tokenizer")
    shutil.rmtree(folder, ignore_errors=True)
    train_tokenizer(folder)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(folder, "spiece.model"), tmp)
        tok = T5Tokenizer.from_pretrained(tmp)
        tok.save_pretrained(tmp)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(tmp, name), folder)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "spiece.model"))
    max_length = 16
    cases = []
    with open(CORPUS, encoding="utf-8") as f:
        corpus = [line.rstrip("\n") for line in f]
    for text in TEST_TEXTS + corpus[:150] + fuzz_texts():
        ids = tok(text).input_ids
        short = tok(text, max_length=max_length, padding="max_length", truncation=True)
        case = {"text": text, "ids": ids, "sentencepiece_ids": sp.encode(text) + [1],
                "truncated_ids": short.input_ids, "truncated_mask": short.attention_mask}
        if case["ids"] != case["sentencepiece_ids"]:
            print(f"note: transformers and sentencepiece differ on {text!r}: {ids} vs {case['sentencepiece_ids']}")
        cases.append(case)
    with open(os.path.join(OUT, "tokenizer_cases.json"), "w", encoding="utf-8") as f:
        json.dump({"max_length": max_length, "cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")


def random_t5(feed_forward_proj, num_layers, seed):
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=40, d_model=16, d_kv=6, num_heads=3, d_ff=24, num_layers=num_layers,
        relative_attention_num_buckets=8, relative_attention_max_distance=12, feed_forward_proj=feed_forward_proj,
        layer_norm_epsilon=1e-6, dropout_rate=0.0)
    torch.manual_seed(seed)
    model = T5EncoderModel(config).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return config, model, g


def inputs(g):
    ids = torch.randint(3, 40, (2, 20), generator=g)
    mask = torch.ones(2, 20, dtype=torch.long)
    mask[1, 13:] = 0
    ids[1, 13:] = 0
    return ids, mask


def make_encoder_fixtures():
    # Gated-GELU, float32, single file, `shared.weight` only.
    config, model, g = random_t5("gated-gelu", 2, 11)
    ids, mask = inputs(g)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask).last_hidden_state
    folder = os.path.join(OUT, "t5_gated")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    config.save_pretrained(folder)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}
    save_file(state, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    save_file({"input_ids": ids.float(), "attention_mask": mask.float(), "last_hidden_state": out.contiguous()},
              os.path.join(OUT, "t5_gated_io.safetensors"))

    # ReLU, weights rounded to bfloat16, two shards, `encoder.embed_tokens.weight` only.
    config, model, g = random_t5("relu", 3, 12)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    ids, mask = inputs(g)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask).last_hidden_state
    folder = os.path.join(OUT, "t5_relu")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    config.save_pretrained(folder)
    state = {k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items() if k != "shared.weight"}
    keys = sorted(state)
    halves = [keys[: len(keys) // 2], keys[len(keys) // 2:]]
    weight_map = {}
    for i, part in enumerate(halves):
        name = f"model-{i + 1:05d}-of-00002.safetensors"
        save_file({k: state[k] for k in part}, os.path.join(folder, name), metadata={"format": "pt"})
        weight_map.update({k: name for k in part})
    total = sum(v.numel() * 2 for v in state.values())
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
        f.write("\n")
    save_file({"input_ids": ids.float(), "attention_mask": mask.float(), "last_hidden_state": out.contiguous()},
              os.path.join(OUT, "t5_relu_io.safetensors"))


PIPELINE_PROMPTS = ["A café with 3 red circles  moving right!", "a tiny green star", "東京 ☃ emoji 🍕"]


def make_pipeline_fixture():
    """Tokenizer + encoder end to end: the fixture tokenizer and a random gated-GELU encoder whose vocabulary covers it."""
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    tok = T5Tokenizer.from_pretrained(os.path.join(OUT, "tokenizer"))
    config = T5Config(
        vocab_size=512, d_model=16, d_kv=4, num_heads=4, d_ff=32, num_layers=2, relative_attention_num_buckets=8,
        relative_attention_max_distance=16, feed_forward_proj="gated-gelu", dropout_rate=0.0)
    torch.manual_seed(13)
    model = T5EncoderModel(config).eval()
    enc = tok(PIPELINE_PROMPTS, max_length=20, padding="max_length", truncation=True, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
    folder = os.path.join(OUT, "t5_pipeline")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    config.save_pretrained(folder)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}
    save_file(state, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    save_file({"input_ids": enc.input_ids.float(), "attention_mask": enc.attention_mask.float(),
               "last_hidden_state": out.contiguous()}, os.path.join(OUT, "t5_pipeline_io.safetensors"))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    make_tokenizer_fixtures()
    make_encoder_fixtures()
    make_pipeline_fixture()
    total = 0
    for dirpath, _, files in os.walk(OUT):
        for name in sorted(files):
            size = os.path.getsize(os.path.join(dirpath, name))
            total += size
            print(f"{os.path.relpath(os.path.join(dirpath, name), OUT)}: {size / 1024:.1f} KiB")
    print(f"total {total / 1024:.1f} KiB")
