"""``codec bench speed``: offline real-time factors, streaming latency, parameters, peak memory.

Each codec setting is measured in a fresh child process (``spawn``) that builds only that
codec, so its peak resident memory (``ru_maxrss`` of the child) is its own; a child that only
imports the bench is measured too, as the floor every row includes (torch's libraries).
In the child: offline encode and decode of a noise-free test signal (harmonics) of
``seconds`` at batch 1 and 16 on each thread count (and on a CUDA GPU when present), the
median of ``repeats`` timed calls after one untimed call; RTF = compute time / audio
duration summed over the batch.  Codecs without a batch API (Lyra, Opus) run batch 1 only.
Streaming codecs (ours when causal, Lyra) are also streamed frame by frame on one thread:
median and p90 per-frame compute.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from codec.atomic import atomic_write


@dataclass
class SpeedRow:
    """One timing point: device, threads, batch, encode/decode median seconds and RTFs."""

    device: str
    threads: int
    batch: int
    encode_s: float
    decode_s: float
    encode_rtf: float
    decode_rtf: float


@dataclass
class SpeedResult:
    """Everything measured for one codec setting (``error`` when the child failed)."""

    name: str
    spec: str
    parameters: int | None = None
    peak_rss_mib: float = math.nan
    rows: list[SpeedRow] = field(default_factory=list)
    frame_ms: float | None = None
    stream_encode_ms: tuple[float, float] | None = None  # median, p90
    stream_decode_ms: tuple[float, float] | None = None
    error: str = ""


def harmonic_signal(seconds: float, rate: int) -> np.ndarray:
    """A deterministic speech-like signal (harmonics with a gliding pitch), float32 ``[T]``."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    return (0.1 * sum(np.sin(h * phase) / h for h in range(1, 10))).astype(np.float32)


def _median_time(fn, repeats: int, sync=None) -> float:
    fn()
    times = []
    for _ in range(repeats):
        if sync:
            sync()
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _time_point(adapter, wav: np.ndarray, batch: int, repeats: int, device: str) -> tuple[float, float]:
    import torch

    if not adapter.batched:
        payload = adapter.encode(wav)
        return (_median_time(lambda: adapter.encode(wav), repeats),
                _median_time(lambda: adapter.decode(payload), repeats))  # fmt: skip
    x = torch.from_numpy(wav)[None].expand(batch, -1).contiguous().to(device)
    sync = torch.cuda.synchronize if device == "cuda" else None
    payload = adapter.encode_batch(x)
    return (_median_time(lambda: adapter.encode_batch(x), repeats, sync),
            _median_time(lambda: adapter.decode_batch(payload), repeats, sync))  # fmt: skip


def measure(spec: str, seconds: float, batches: list[int], threads: list[int], repeats: int) -> SpeedResult:
    """Build ``spec`` (one setting) in this process and time it (the child's entry point)."""
    import torch

    from codec.bench.registry import build_adapters, parse_spec

    adapter = build_adapters(parse_spec(spec))[0]
    result = SpeedResult(adapter.name, spec, adapter.parameters())
    wav = harmonic_signal(seconds, adapter.sample_rate)
    points = [("cpu", n, b) for n in threads for b in batches if adapter.batched or b == 1]
    module = adapter.torch_module()
    if torch.cuda.is_available() and module is not None:
        points += [("cuda", 0, b) for b in batches]
    for device, n, b in points:
        if device == "cpu":
            torch.set_num_threads(n)
            adapter.threads = n
        if module is not None:
            module.to(device)
        enc, dec = _time_point(adapter, wav, b, repeats, device)
        audio = seconds * b
        result.rows.append(SpeedRow(device, n, b, enc, dec, enc / audio, dec / audio))
    if module is not None:
        module.to("cpu")
    if adapter.streaming:
        torch.set_num_threads(1)
        adapter.threads = 1
        frame, enc, dec = adapter.stream_frames(wav)
        result.frame_ms = frame * 1000
        result.stream_encode_ms = (1000 * statistics.median(enc), 1000 * float(np.percentile(enc, 90)))
        result.stream_decode_ms = (1000 * statistics.median(dec), 1000 * float(np.percentile(dec, 90)))
    result.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def floor_rss() -> float:
    """Peak RSS (MiB) of a child that only imports the bench (torch included)."""
    import codec.bench.adapters  # noqa: F401  (the import is what is measured)

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_speed(adapters: list, seconds: float, batches: list[int], threads: list[int], repeats: int):
    """Measure every adapter's setting in its own child; returns (results, floor MiB)."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        floor = pool.submit(floor_rss).result()
    results = []
    for a in adapters:
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            try:
                results.append(pool.submit(measure, a.spec, seconds, batches, threads, repeats).result())
            except Exception as err:  # one codec failing must not lose the others' numbers
                reason = " ".join(f"{type(err).__name__}: {err}".split())  # one table cell, one line
                results.append(SpeedResult(a.name, a.spec, error=reason))
    return results, floor


def speed_markdown(results: list[SpeedResult], floor: float, context: dict[str, str]) -> str:
    """``speed.md``: context, the offline table, the streaming table, parameters and memory."""
    lines = ["# Codec speed", "", *(f"- {k}: {v}" for k, v in context.items()), ""]
    lines += ["| codec | device | threads | batch | encode ms | decode ms | encode RTF | decode RTF |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in results:
        for p in r.rows:
            lines.append(
                f"| {r.name} | {p.device} | {p.threads or '-'} | {p.batch} | {1000 * p.encode_s:.1f} | "
                f"{1000 * p.decode_s:.1f} | {p.encode_rtf:.4f} | {p.decode_rtf:.4f} |"
            )
    lines += ["", "| codec | parameters | peak RSS MiB | frame ms | stream encode ms (median / p90) | "
              "stream decode ms (median / p90) |", "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in results:
        if r.error:
            lines.append(f"| {r.name} | failed: {r.error} | | | | |")
            continue
        params = f"{r.parameters:,}" if r.parameters else "n/a"
        se = (
            f"{r.stream_encode_ms[0]:.2f} / {r.stream_encode_ms[1]:.2f}"
            if r.stream_encode_ms
            else "no streaming"
        )
        sd = (
            f"{r.stream_decode_ms[0]:.2f} / {r.stream_decode_ms[1]:.2f}"
            if r.stream_decode_ms
            else "no streaming"
        )
        frame = f"{r.frame_ms:g}" if r.frame_ms else "-"
        lines.append(f"| {r.name} | {params} | {r.peak_rss_mib:.0f} | {frame} | {se} | {sd} |")
    lines += ["", f"Peak RSS is each child process's own maximum; a child that only imports the bench "
              f"peaks at {floor:.0f} MiB (torch's libraries), which every row includes. Streaming: "
              "one frame per call, one thread, batch 1."]  # fmt: skip
    return "\n".join(lines) + "\n"


def write_speed(measured, out: Path, context: dict[str, str]) -> Path:
    """Write ``speed.md`` and ``speed.json`` into ``out``; returns the Markdown file."""
    results, floor = measured
    out.mkdir(parents=True, exist_ok=True)
    data = {**context, "floor_rss_mib": floor, "results": [asdict(r) for r in results]}
    text = json.dumps(data, indent=1, default=lambda x: None)
    atomic_write(out / "speed.json", lambda tmp: tmp.write_text(text))
    md = speed_markdown(results, floor, context)
    return atomic_write(out / "speed.md", lambda tmp: tmp.write_text(md))
