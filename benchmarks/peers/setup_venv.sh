#!/usr/bin/env bash
# Build (or complete) the benchmark virtual environment that holds the peer codecs.
#
# The peers (Mimi from the `moshi` package, EnCodec from `encodec`) are never dependencies of
# `codec`: they live in this separate environment, together with an editable install of this
# repository, so `benchmarks/streaming/latency.py` can time them in the same process as ours.
#
#   bash benchmarks/peers/setup_venv.sh [VENV_DIR]     # default: $BENCH_VENV or benchmarks/.venv
#
# The default folder is inside this repository and ignored by git (.venv/ in .gitignore).
# Local wheel folders, where a machine has them, are used through pip's own PIP_FIND_LINKS
# (e.g. PIP_FIND_LINKS="/path/to/wheels" bash benchmarks/peers/setup_venv.sh).
#
# Safe to re-run: an existing environment is reused and only what is missing is installed.
# Why the pins:
#   - torch 2.14.1 / torchaudio 2.11.0: the versions the project's own environment uses, so our
#     numbers are comparable across the two environments.
#   - moshi 0.2.13 with --no-deps: its metadata pins torch<2.10, yet Mimi runs on torch 2.14.1;
#     its runtime imports are then installed by hand, with the upper bounds moshi asks for
#     (numpy<2.3, safetensors<0.8, huggingface-hub<1, sphn<0.3).  Its audio-device, server
#     and quantisation extras (sounddevice, aiohttp, bitsandbytes) are not needed here.
# Nothing downloads model weights: the benchmark builds every peer with random weights.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${1:-${BENCH_VENV:-$REPO/benchmarks/.venv}}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)

"${PIP[@]}" "torch==2.14.1" "torchaudio==2.11.0"
"${PIP[@]}" "encodec==0.1.1" "psutil"
"${PIP[@]}" --no-deps "moshi==0.2.13"
"${PIP[@]}" "numpy<2.3" "safetensors<0.8" "huggingface-hub<1" "sentencepiece" "sphn<0.3"
"${PIP[@]}" -e "$REPO"

# Check: every peer builds with random weights, offline.
"$VENV/bin/python" - <<'EOF'
import torch
import encodec
import moshi
from moshi.models.loaders import get_mimi

import codec

mimi = get_mimi(None, device="cpu")
enc = encodec.EncodecModel.encodec_model_24khz(pretrained=False)
print(f"torch {torch.__version__}, moshi {moshi.__version__}, codec {codec.__version__}: "
      f"Mimi {mimi.frame_rate} Hz frames, EnCodec {enc.frame_rate} Hz frames - ready")
EOF
