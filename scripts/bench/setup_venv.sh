#!/usr/bin/env bash
# Creates .venv-bench (PyTorch, CPU use only) for scripts/bench/torch_block.py, the PyTorch peer of
# `goku bench block`. Never needed by the build or the tests; `goku bench block --compare-torch` looks for it.
# Usage: scripts/bench/setup_venv.sh            (from the repository root)
#
# Which torch: a CPU-only build (about 200 MB) where one can be had — PyTorch's CPU wheel index, else a `+cpu` wheel
# among pip's configured local wheel sources (find-links) — and PyPI's default build (CUDA libraries included,
# several GB) otherwise. The benchmark uses the CPU either way.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv-bench/bin/python ]; then
    python3 -m venv .venv-bench
fi
pip=".venv-bench/bin/pip"
$pip install -q --upgrade pip
if ! $pip install -q --index-url https://download.pytorch.org/whl/cpu torch numpy 2>/dev/null; then
    wheels=$(mktemp -d)
    trap 'rm -rf "$wheels"' EXIT
    if $pip download -q --no-index --no-deps -d "$wheels" torch 2>/dev/null && ls "$wheels"/torch-*+cpu-*.whl >/dev/null 2>&1; then
        $pip install -q "$wheels"/torch-*+cpu-*.whl numpy
    else
        $pip install -q torch numpy
    fi
fi
.venv-bench/bin/python -c "import torch; print('torch', torch.__version__)"
