"""How many streamed codes differ from offline codes, on real audio with a real model.

The tests hold streaming parity on the tiny debug model; this script counts it for a trained
model on real speech, where near-ties between codes are common: every file is encoded offline
(``Codec.encode``) and through ``codec.stream()`` in chunks of a few frames, and the codes are
compared one by one.

    python benchmarks/streaming/parity.py --data ../shared/data/dev --files 4 --chunks 1 2 3 5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from codec import Codec, load_audio

AUDIO_SUFFIXES = (".flac", ".wav", ".ogg")


def count_differences(
    codec: Codec, wav: torch.Tensor, sample_rate: int, chunk_frames: int
) -> tuple[int, int]:
    """``(differing, compared)`` codes of one clip ``[C, T]`` streamed in ``chunk_frames`` chunks."""
    if sample_rate != codec.sample_rate:
        raise SystemExit(f"this script streams at the model rate ({codec.sample_rate} Hz), got {sample_rate}")
    x = wav[None]
    offline = codec.encode(x, sample_rate=sample_rate).codes
    stream = codec.stream(channels=x.shape[1])
    step = codec.hop_length * chunk_frames
    parts = [stream.encode(x[..., i : i + step]) for i in range(0, x.shape[-1], step)]
    streamed = torch.cat([*parts, stream.flush().codes], dim=-1)
    n = min(streamed.shape[-1], offline.shape[-1])
    return int((streamed[..., :n] != offline[..., :n]).sum()), offline[..., :n].numel()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="bundled model name or model directory (default: bundled)")
    p.add_argument("--data", type=Path, required=True, help="folder of audio files at the model rate")
    p.add_argument("--files", type=int, default=4, help="first N files (sorted)")
    p.add_argument("--chunks", type=int, nargs="+", default=[1, 2, 3, 5], help="chunk sizes in frames")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    codec = Codec.from_pretrained(args.model)
    files = sorted(f for f in args.data.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)[: args.files]
    if not files:
        raise SystemExit(f"{args.data}: no audio files")
    differ = total = 0
    for path in files:
        wav, sr = load_audio(path)
        for chunk in args.chunks:
            d, n = count_differences(codec, wav, sr, chunk)
            differ, total = differ + d, total + n
    chunks = "/".join(map(str, args.chunks))
    print(
        f"{codec.name}: {len(files)} files, chunks of {chunks} frames, {args.threads} thread(s): "
        f"{differ} of {total} streamed codes differ from offline"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
