#!/usr/bin/env bash
# Creates .venv-reference at the repository root with torch, numpy, safetensors, transformers and sentencepiece
# (from PyPI). Idempotent: does nothing if the venv already imports all of them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv-reference"
PY="$VENV/bin/python"

if [ -x "$PY" ] && "$PY" -c "import torch, numpy, safetensors, transformers, sentencepiece, diffusers, PIL" >/dev/null 2>&1; then
    echo "$VENV already set up (torch $("$PY" -c 'import torch; print(torch.__version__)'))"
    exit 0
fi

python3 -m venv "$VENV"
"$PY" -m pip install --upgrade pip
"$PY" -m pip install torch numpy safetensors transformers sentencepiece
"$PY" -m pip install diffusers   # make_vae_fixtures.py (AutoencoderKLCogVideoX)
"$PY" -m pip install pillow  # make_media_fixtures.py
"$PY" -c "import torch, numpy, safetensors; print('torch', torch.__version__, 'numpy', numpy.__version__, 'safetensors', safetensors.__version__)"
