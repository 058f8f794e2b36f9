#!/usr/bin/env bash
# Creates .venv-bench (PyTorch, CPU use only) for scripts/bench/torch_block.py, the PyTorch peer of
# `goku bench block`. Never needed by the build or the tests; `goku bench block --compare-torch` looks for it.
# Usage: scripts/bench/setup_venv.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv-bench/bin/python ]; then
    python3 -m venv .venv-bench
fi
.venv-bench/bin/pip install --upgrade pip
.venv-bench/bin/pip install torch numpy
.venv-bench/bin/python -c "import torch; print('torch', torch.__version__)"
