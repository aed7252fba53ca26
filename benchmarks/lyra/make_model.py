"""Build the bundled ``lyra_rvq_16k`` model: Lyra v2's encoder and decoder with our residual VQ.

Usage (from the repository root)::

    python benchmarks/lyra/make_model.py --data ../shared/data/train/librispeech-train-clean-100 \\
        --out runs/lyra_rvq_16k_kmeans --offsets 0 160 --iters 16

Steps: read Lyra v2's TFLite weights into our PyTorch modules (:func:`codec.lyra.build_lyra_model`),
encode every training file with the (frozen) encoder, fit the residual VQ level by level by
k-means on those embeddings (:func:`codec.lyra.fit_residual_kmeans`), and save the model
directory (config, weights, fingerprint).  Deterministic: the same files give the same weights.
``configs/lyra_rvq_16k.yaml`` then fine-tunes the decoder from that directory (the bundled
model: see ``codec/pretrained/lyra_rvq_16k/MODEL_CARD.md``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from codec.audio import resample
from codec.checkpoint import save_model
from codec.formats import AUDIO_SUFFIXES
from codec.lyra import build_lyra_model, fit_residual_kmeans, lyra_config
from codec.pipeline.audiofile import load_audio


def embeddings(model, files: list[Path], offsets: tuple[int, ...] = (0,)) -> torch.Tensor:
    """The encoder's embeddings ``[M, 64]`` of every whole frame of every file (mono, 16 kHz),
    once per start offset in samples (other offsets cut other frames: more training vectors)."""
    rows = []
    with torch.no_grad():
        for path in files:
            audio = load_audio(path)
            wav = resample(audio.wav.mean(0, keepdim=True), audio.sample_rate, model.cfg.sample_rate)
            for start in offsets:
                n = (wav.shape[-1] - start) // model.hop_length * model.hop_length
                rows.append(model.encoder(wav[:, start : start + n])[0])
    return torch.cat(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="folder of training audio (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--name", default="lyra_rvq_16k")
    p.add_argument("--codebooks", type=int, default=12)
    p.add_argument("--codebook-size", type=int, default=1024)
    p.add_argument("--iters", type=int, default=20, help="Lloyd iterations per level")
    p.add_argument(
        "--offsets", type=int, nargs="+", default=[0], help="start offsets (samples) to cut frames at"
    )
    args = p.parse_args()
    torch.manual_seed(0)
    files = sorted(f for f in args.data.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)
    model = build_lyra_model(lyra_config(args.name, args.codebooks, args.codebook_size))
    t0 = time.perf_counter()
    latent = embeddings(model, files, tuple(args.offsets))
    t1 = time.perf_counter()
    errors = fit_residual_kmeans(model.quantizer, latent, args.iters)
    t2 = time.perf_counter()
    metadata = {
        "source": "Lyra v2 1.3.2 TFLite encoder/decoder (Apache-2.0, Google); residual k-means quantizer",
        "quantizer_fit": f"{len(files)} files of {args.data.name}, {latent.shape[0]} frames "
        f"(offsets {args.offsets}), {args.iters} iterations",
    }
    save_model(model, args.out, metadata=metadata)
    print(
        f"{len(files)} files, {latent.shape[0]} frames: encoded in {t1 - t0:.1f} s, k-means {t2 - t1:.1f} s"
    )
    print("mean squared residual per level:", " ".join(f"{e:.3f}" for e in errors))
    print(f"latent mean square {float(latent.pow(2).mean()):.3f}; wrote {args.out}")


if __name__ == "__main__":
    main()
