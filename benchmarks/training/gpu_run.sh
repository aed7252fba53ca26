#!/usr/bin/env bash
# One GPU training run (see gpu_run.py): install what the accelerator machine lacks from the
# carried folder .gpu/ (made by gpu_pack.sh), then train, export and score.
#   bash benchmarks/training/gpu_run.sh OUT [gpu_run.py options...]
# Needs only PyTorch, torchaudio and Lightning on the machine; no network.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: gpu_run.sh OUT [options]}
shift
PY=${PYTHON:-python3}
site=/tmp/codec-site
wheels=${CODEC_GPU_WHEELS:-.gpu/wheels}
if compgen -G "$wheels/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheels"/*.whl
fi
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
# pesq ships no binary wheel: build it from the carried source if a compiler is there (PESQ is
# then scored on the machine; without it the scores lack PESQ, and the weights are scored later).
if compgen -G "$wheels/pesq-*.tar.gz" >/dev/null && ! "$PY" -c "import pesq" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --target "$site" "$wheels"/pesq-*.tar.gz \
    || echo "gpu_run: pesq did not build; scoring without PESQ" >&2
fi
# The package itself, without touching the machine's site-packages: a folder whose codec/
# mirrors the repository's layout (kernels/ and configs/ inside it, as pyproject.toml maps them).
pkg=/tmp/codec-pkg/codec
rm -rf /tmp/codec-pkg && mkdir -p "$pkg"
for entry in codec/*; do ln -s "$PWD/$entry" "$pkg/"; done
ln -s "$PWD/kernels" "$pkg/kernels" && ln -s "$PWD/configs" "$pkg/configs"
export PYTHONPATH="/tmp/codec-pkg:$PWD:$PYTHONPATH" PYTHONUNBUFFERED=1
exec "$PY" -m benchmarks.training.gpu_run --out "$out" "$@"
