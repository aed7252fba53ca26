"""Where the time of one streaming frame goes, stage by stage, for our model at batch 1.

Runs the model's stages one after another on one frame at a time, with the same streaming
state objects a :class:`codec.streaming.Stream` uses, and times each stage with
``time.perf_counter``; the depthwise convs inside the trunks are timed through forward hooks
(a hook costs about a microsecond, which the table includes).  The stream handle's own time
(input checks, buffering, code validation) is the whole ``stream.encode``/``stream.decode``
call minus the sum of its stages, measured on the same frames.

At batch 1 every frame reads every weight once: :func:`weights_line` states how many bytes that
is beside the size of the last-level cache, which decides whether the trunk's matrix-vector
products run from cache or from memory.

    python benchmarks/streaming/breakdown.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch

from codec import Codec
from codec.bench import harness
from codec.streaming import Stream

ENCODE_STAGES = ("STFT front end", "encoder trunk", "encoder projection", "RVQ search (all levels)")
DECODE_STAGES = ("RVQ codebook lookup", "decoder projection", "decoder trunk", "iSTFT head")


def _timed(clock: dict[str, float], name: str, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
    start = time.perf_counter()
    out = fn()
    clock[name] = time.perf_counter() - start
    return out


def _encoder_trunk(encoder: torch.nn.Module, x: torch.Tensor, state: object) -> torch.Tensor:
    """The encoder's blocks: fine-rate blocks and pooling first where the config has them."""
    if encoder.fine is not None:
        x = encoder.fine(x, state.fine)
    if encoder.pool is not None:
        x = encoder.pool(x)
    return encoder.trunk(x, state.trunk)


def _decoder_trunk(decoder: torch.nn.Module, x: torch.Tensor, state: object) -> torch.Tensor:
    """The decoder's blocks: unpooling and fine-rate blocks last where the config has them."""
    x = decoder.trunk(x, state.trunk)
    if decoder.unpool is not None:
        x = decoder.unpool(x)
    return x if decoder.fine is None else decoder.fine(x, state.fine)


def _one_frame(codec: Codec, stream: Stream, enc_state: object, dec_state: object, wav: torch.Tensor):
    """Run the stages on one frame ``[1, hop]``; returns seconds per stage."""
    m, t = codec.model, {}
    feats = _timed(t, ENCODE_STAGES[0], lambda: m.encoder.frontend(wav, enc_state.frontend))
    hidden = _timed(t, ENCODE_STAGES[1], lambda: _encoder_trunk(m.encoder, feats, enc_state))
    latent = _timed(t, ENCODE_STAGES[2], lambda: m.encoder.proj(hidden))
    codes = _timed(t, ENCODE_STAGES[3], lambda: m.quantizer.encode(latent.reshape(1, -1)))
    q = _timed(t, DECODE_STAGES[0], lambda: m.quantizer.decode(codes))
    x = _timed(t, DECODE_STAGES[1], lambda: m.decoder.proj(q.reshape(1, 1, -1)))
    x = _timed(t, DECODE_STAGES[2], lambda: _decoder_trunk(m.decoder, x, dec_state))
    _timed(t, DECODE_STAGES[3], lambda: m.decoder.head(x, dec_state.head))
    # The same frame through the public handle, for its own overhead.
    start = time.perf_counter()
    api_codes = stream.encode(wav[None])
    t["stream.encode (whole call)"] = time.perf_counter() - start
    start = time.perf_counter()
    stream.decode(api_codes)
    t["stream.decode (whole call)"] = time.perf_counter() - start
    return t


@torch.inference_mode()
def stage_breakdown(codec: Codec, threads: int, frames: int, warmup: int) -> list[tuple[str, float]]:
    """Median seconds per stage of one frame, with the handle's overhead rows derived."""
    harness.set_threads(threads)
    model = codec.model
    cpu = next(model.parameters()).device
    enc_state = model.encoder.init_state(1, cpu, torch.float32)
    dec_state = model.decoder.init_state(1, cpu, torch.float32)
    stream = codec.stream(batch_size=1)
    wav = 0.1 * torch.randn(warmup + frames, 1, codec.hop_length, generator=torch.Generator().manual_seed(0))
    samples: dict[str, list[float]] = defaultdict(list)
    for i in range(warmup + frames):
        step = _one_frame(codec, stream, enc_state, dec_state, wav[i])
        if i >= warmup:
            for name, seconds in step.items():
                samples[name].append(seconds)
    med = {name: statistics.median(v) for name, v in samples.items()}
    med["stream.encode overhead (checks, buffering)"] = med["stream.encode (whole call)"] - sum(
        med[s] for s in ENCODE_STAGES
    )
    med["stream.decode overhead (code checks)"] = med["stream.decode (whole call)"] - sum(
        med[s] for s in DECODE_STAGES
    )
    return list(med.items())


def breakdown_table(rows: list[tuple[str, float]]) -> str:
    """Median ms per stage and its share of the whole ``stream.encode`` or ``stream.decode`` call."""
    enc = dict(rows)["stream.encode (whole call)"]
    dec = dict(rows)["stream.decode (whole call)"]
    body = []
    for name, seconds in rows:
        whole = enc if name in ENCODE_STAGES or name.startswith("stream.encode") else dec
        body.append([name, f"{seconds * 1e3:.3f}", f"{seconds / whole:.0%}"])
    return harness.markdown_table(["stage (one frame, batch 1)", "ms (median)", "share of its call"], body)


def _cache_bytes() -> int | None:
    """Size of the largest CPU cache Linux reports (the shared last level), or None."""
    sizes = []
    for size in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = size.read_text().strip()
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        sizes.append(int(text.rstrip("KMG")) * scale)
    return max(sizes) if sizes else None


def read_seconds(nbytes: int, repeats: int = 20) -> float:
    """Median time to read ``nbytes`` of float32 once (a sum over them), on the current thread setting."""
    data = torch.ones(max(nbytes // 4, 1))
    data.sum()  # first touch
    return harness.time_calls(data.sum, repeats, warmup=2).median


def weights_line(codec: Codec) -> str:
    """Bytes of weights one frame reads, beside the cache size and what reading that many bytes costs."""
    sizes = {name: sum(p.numel() * p.element_size() for p in getattr(codec.model, name).parameters())
             for name in ("encoder", "quantizer", "decoder")}  # fmt: skip
    parts = ", ".join(f"{name} {n / 2**20:.1f} MiB" for name, n in sizes.items())
    total = sum(sizes.values())
    cache = _cache_bytes()
    llc = f" Largest CPU cache: {cache / 2**20:.0f} MiB, shared by every process." if cache else ""
    small = 8 * 2**20
    t_total, t_small = read_seconds(total), read_seconds(small)
    return (
        f"Weights read per frame at batch 1: {parts} (float32).{llc} Reading {total / 2**20:.1f} MiB "
        f"once takes {t_total * 1e3:.2f} ms here ({total / t_total / 2**30:.0f} GiB/s; 8 MiB: "
        f"{small / t_small / 2**30:.0f} GiB/s): a floor under the encode + decode time of one frame, "
        "before any arithmetic."
    )


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="speech_16k")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--frames", type=int, default=500)
    p.add_argument("--warmup", type=int, default=50)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    codec = Codec.from_config(args.config)
    table = breakdown_table(stage_breakdown(codec, args.threads, args.frames, args.warmup))
    print(f"{table}\n\n{weights_line(codec)}")
    return table


if __name__ == "__main__":
    main()
