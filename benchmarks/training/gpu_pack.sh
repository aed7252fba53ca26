#!/usr/bin/env bash
# Prepare .gpu/ (git-ignored) for gpu_run.sh on an accelerator machine without network:
# wheels of the packages it lacks (Python 3.12, x86-64) and a subset of the training and dev
# audio, small enough to travel with the repository (the device tool carries 64 MiB in all).
#   bash benchmarks/training/gpu_pack.sh [TRAIN_MB] [DATA_ROOT]
set -euo pipefail
cd "$(dirname "$0")/../.."
train_mb=${1:-24}
root=${2:-../shared/data}
PY=${PYTHON:-python3}
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/data/train .gpu/data/dev
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${plat[@]}" -d .gpu/wheels soundfile cffi pycparser auraloss pystoi
"$PY" -m pip download -q --no-deps --no-binary=:all: --no-build-isolation -d .gpu/wheels pesq
# Training speech: whole files, in name order, up to TRAIN_MB; dev: the first 100 files.
budget=$((train_mb * 1024 * 1024)) used=0
while IFS= read -r f; do
  size=$(stat -c %s "$f")
  [ $((used + size)) -gt "$budget" ] && break
  cp "$f" .gpu/data/train/ && used=$((used + size))
done < <(find "$root/train/librispeech-train-clean-100" -name '*.flac' | sort)
find "$root/dev" -name '*.flac' | sort | head -n 100 | xargs -I{} cp {} .gpu/data/dev/
du -sh .gpu/wheels .gpu/data/train .gpu/data/dev
