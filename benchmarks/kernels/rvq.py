"""Benchmark of the fused RVQ kernels against the reference, torch.compile and peer quantizers.

Encode (all K stages) and decode of ``N`` latent frames, ``N`` from 1 to 1M, on the quantizer
shapes below.  GPU times are medians of ``triton.testing.do_bench``; CPU times (no Triton rows:
the interpreter's timings mean nothing) are medians of wall-clock calls.

Roofline.  Useful FLOPs per frame count the two matmuls of each stage as 2 FLOPs per
multiply-add (the bias, argmax compares and the residual update are left out):
``K * (2*D*d [factorized projection] + 2*S*d)``.  Bytes are what any implementation must move
through DRAM: per frame the latent in, the int64 codes out (``D*4 + K*8``), plus once per call
the search codebooks, biases and projections (``K*S*(d+1)*4 + K*D*d*4``) and the distinct
out-codebook rows gathered (``min(N, S) * K * D * 4``).  Decode: ``K*D`` adds per frame, bytes
``N*(K*8 + D*4) + min(N, S)*K*D*4``.  The roofline time is ``max(FLOPs / peak FLOP/s, bytes /
peak B/s)`` with the GPU's float32 (non-tensor-core) peak, as the kernels and the float32
peers all run float32 FMA (``--peak-tflops/--peak-gbps`` override the built-in table).

    python benchmarks/kernels/rvq.py                          # GPU: full table (about 15 min)
    python benchmarks/kernels/rvq.py --write-results          # also update benchmarks/RESULTS.md
    python benchmarks/kernels/rvq.py --device cpu --quick     # CPU sanity run, small sizes
    python benchmarks/kernels/rvq.py --sweep                  # GPU: try tile sizes at 64k frames

Peers run when their packages are importable (see ``rvq_impls.py`` for the separate venv).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import rvq_impls  # beside this script: the peer quantizers
import torch
from rvq_impls import IMPLS, Shape, Unavailable

from codec.bench import harness

SECTION = "RVQ kernels"
SHAPES = {
    s.name: s
    for s in (
        Shape("speech_16k", "factorized", 256, 8, 1024, 12),  # our default model (DAC-style)
        Shape("dac_44k", "factorized", 1024, 8, 1024, 9),  # DAC 44 kHz quantizer
        Shape("encodec_24k", "euclidean", 128, 128, 1024, 8),  # EnCodec 24 kHz at 6 kbps
        Shape("mimi", "euclidean", 256, 256, 2048, 8),  # Mimi-sized euclidean RVQ
        Shape("euclid_4096", "euclidean", 64, 64, 4096, 12),  # largest codebook the kernels target
    )
}
FRAMES = [1, 16, 256, 4096, 65536, 262144, 1048576]
QUICK_FRAMES = [1, 64, 1024]
# Float32 non-tensor-core peak FLOP/s and DRAM B/s from the vendor datasheets, by device name.
PEAKS = [
    ("H200", 67e12, 4.8e12),
    ("H100 NVL", 60e12, 3.9e12),
    ("H100 PCIe", 51e12, 2.0e12),
    ("H100", 67e12, 3.35e12),  # SXM (the name reads "H100 80GB HBM3")
    ("A100-SXM4-80GB", 19.5e12, 2.04e12),
    ("A100", 19.5e12, 1.56e12),
]


def flops_per_frame(shape: Shape) -> int:
    proj = 2 * shape.dim * shape.code_dim if shape.kind == "factorized" else 0
    return shape.stages * (proj + 2 * shape.size * shape.code_dim)


def encode_bytes(shape: Shape, frames: int) -> int:
    k, s, d, dim = shape.stages, shape.size, shape.code_dim, shape.dim
    tables = k * s * (d + 1) * 4 + (k * dim * d * 4 if shape.kind == "factorized" else 0)
    return frames * (dim * 4 + k * 8) + tables + min(frames, s) * k * dim * 4


def decode_bytes(shape: Shape, frames: int) -> int:
    return (
        frames * (shape.stages * 8 + shape.dim * 4) + min(frames, shape.size) * shape.stages * shape.dim * 4
    )


@dataclass
class Row:
    """One timed cell: ``seconds`` is None when the implementation did not run (``note`` says why)."""

    shape: Shape
    frames: int
    impl: str
    seconds: float | None
    flops: int
    nbytes: int
    note: str = ""


def peaks_for(device: str, args: argparse.Namespace) -> tuple[float, float] | None:
    if args.peak_tflops and args.peak_gbps:
        return args.peak_tflops * 1e12, args.peak_gbps * 1e9
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name(0)
    return next(((f, b) for key, f, b in PEAKS if key in name), None)


def median_seconds(fn: Callable[[], object], device: str, quick: bool) -> float:
    if device == "cuda":
        import triton.testing

        return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median") / 1e3
    return harness.time_calls(fn, repeats=5 if quick else 20, warmup=2).median


def time_impl(name: str, build: Callable, shape: Shape, frames: int, device: str, quick: bool) -> Row:
    row = Row(shape, frames, name, None, flops_per_frame(shape) * frames, encode_bytes(shape, frames))
    try:
        fn = build(shape, frames, device)
        with torch.no_grad():
            row.seconds = median_seconds(fn, device, quick)
    except Unavailable as err:
        row.note = f"skipped: {err}"
    except torch.OutOfMemoryError:
        row.note = "out of memory"
    if device == "cuda":
        torch.cuda.empty_cache()
    return row


def codes_agree(shape: Shape, frames: int, device: str) -> str:
    """Share of Triton codes equal to the reference's (ties may flip a few), as a sanity check."""
    if device != "cuda":
        return ""
    from codec.kernels.rvq import reference
    from codec.kernels.rvq import triton as rvq_triton

    x, p = rvq_impls.latents(shape, frames, device), rvq_impls.pack(shape, device)
    ours, ref = rvq_triton.rvq_encode(x, *p.args())[0], reference.rvq_encode(x, *p.args())[0]
    return f"{(ours == ref).float().mean().item():.2%}"


def time_decode(shape: Shape, frames: int, device: str, quick: bool) -> list[Row]:
    from codec.kernels.rvq import reference

    p = rvq_impls.pack(shape, device)
    codes = torch.randint(0, shape.size, (frames, shape.stages), device=device)
    impls: dict[str, Callable[[], object]] = {
        "reference": lambda: reference.rvq_decode(codes, p.out_codebooks)
    }
    if device == "cuda":
        from codec.kernels.rvq import triton as rvq_triton

        impls["triton"] = lambda: rvq_triton.rvq_decode(codes, p.out_codebooks)
    rows = []
    for name, fn in impls.items():
        row = Row(shape, frames, name, None, frames * shape.stages * shape.dim, decode_bytes(shape, frames))
        with torch.no_grad():
            row.seconds = median_seconds(fn, device, quick)
        rows.append(row)
    return rows


def format_rows(rows: list[Row], peaks: tuple[float, float] | None, agree: dict) -> str:
    header = ["shape", "frames", "implementation", "ms", "Mframes/s", "GB/s", "TFLOP/s", "% roofline",
              "x reference", "codes = ref"]  # fmt: skip
    ref = {(r.shape.name, r.frames): r.seconds for r in rows if r.impl == "reference"}
    out = []
    for r in rows:
        if r.seconds is None:
            out.append([r.shape.name, r.frames, r.impl, r.note, "", "", "", "", "", ""])
            continue
        roof = max(r.flops / peaks[0], r.nbytes / peaks[1]) if peaks else None
        base = ref.get((r.shape.name, r.frames))
        out.append([
            r.shape.name, r.frames, r.impl, harness.fmt_ms(r.seconds), f"{r.frames / r.seconds / 1e6:.3g}",
            f"{r.nbytes / r.seconds / 1e9:.3g}", f"{r.flops / r.seconds / 1e12:.3g}",
            f"{100 * roof / r.seconds:.1f}" if roof else "n/a",
            f"{base / r.seconds:.2f}" if base else "", agree.get((r.shape.name, r.frames, r.impl), ""),
        ])  # fmt: skip
    return harness.markdown_table(header, out)


def roofline_table(shapes: list[Shape]) -> str:
    """FLOPs and bytes per frame (large N) and the roofline rate they allow on datasheet GPUs."""
    gpus = [(key, f, b) for key, f, b in PEAKS if key in ("H100", "H200")]
    header = ["shape", "kind", "D", "d", "S", "K", "FLOP/frame", "DRAM B/frame", "FLOP/B"]
    header += [f"roofline Mframes/s {'H100 SXM' if key == 'H100' else key}" for key, _, _ in gpus]
    rows = []
    for s in shapes:
        f, b = flops_per_frame(s), s.dim * 4 + s.stages * 8
        limits = [f"{min(pf / f, pb / b) / 1e6:.0f}" for _, pf, pb in gpus]
        rows.append([s.name, s.kind, s.dim, s.code_dim, s.size, s.stages, f, b, f"{f / b:.0f}", *limits])
    return harness.markdown_table(header, rows)


def targets(rows: list[Row], peaks: tuple[float, float] | None) -> list[str]:
    """The issue's targets at 64k frames and 8-12 stages, for each shape that has Triton times."""
    t = {(r.shape.name, r.frames, r.impl): r for r in rows if r.seconds is not None}
    lines = []
    for (name, frames, impl), r in t.items():
        if impl != "triton" or frames != 65536 or not 8 <= r.shape.stages <= 12:
            continue
        parts = []
        for peer, goal in (("vector-quantize-pytorch", 10.0), ("torch.compile(reference)", 3.0)):
            other = t.get((name, frames, peer))
            ratio = other.seconds / r.seconds if other else None
            verdict = "n/a" if ratio is None else ("met" if ratio >= goal else "missed")
            parts.append(f"{ratio or float('nan'):.1f}x {peer} (goal >= {goal:.0f}x: {verdict})")
        if peaks:
            share = max(r.flops / peaks[0], r.nbytes / peaks[1]) / r.seconds
            parts.append(f"{share:.0%} of roofline (goal >= 50%: {'met' if share >= 0.5 else 'missed'})")
        lines.append(f"- {name}, 64k frames: " + "; ".join(parts))
    return lines


def model_share(device: str, quick: bool) -> str:
    """Share of the default model's encode time spent in the quantizer (dispatched backend)."""
    from codec.config import CodecConfig
    from codec.model import build_model

    model = build_model(CodecConfig.from_yaml("speech_16k")).to(device).eval()
    batch, frames = (2, 50) if quick else (64, 1024)
    wav = 0.1 * torch.randn(batch, frames * model.hop_length, device=device)
    with torch.no_grad():
        latent = model.encoder(wav)
        flat = latent.reshape(-1, latent.shape[-1])
        total = median_seconds(lambda: model.encode(wav), device, quick)
        quant = median_seconds(lambda: model.quantizer.encode(flat), device, quick)
    backend = "Triton" if device == "cuda" else "reference"
    return (
        f"- Default model (speech_16k) encode of {batch} x {frames} frames on {device}: "
        f"{harness.fmt_ms(total)} ms in all, quantizer ({backend}) {harness.fmt_ms(quant)} ms "
        f"= {quant / total:.1%} (goal on GPU: < 5%)"
    )


def _sweep_shape(shape: Shape, frames: int) -> list[tuple[float, object]]:
    from codec.kernels.rvq import triton as rvq_triton

    x, p = rvq_impls.latents(shape, frames, "cuda"), rvq_impls.pack(shape, "cuda")
    results = []
    for bn, bs, warps, stages in itertools.product((16, 32, 64, 128), (16, 32, 64, 128, 256), (4, 8), (1, 2)):
        cfg = rvq_triton.LaunchConfig(bn, bs, warps, stages)
        try:
            seconds = median_seconds(partial(rvq_triton.rvq_encode, x, *p.args(), config=cfg), "cuda", False)
        except Exception as err:  # a tile that does not fit (registers, shared memory)
            print(f"{shape.name} {cfg}: {type(err).__name__}", file=sys.stderr)
            continue
        results.append((seconds, cfg))
    return sorted(results, key=lambda t: t[0])


def sweep(shapes: list[Shape], frames: int = 65536) -> str:
    """Time the Triton encode over tile sizes at ``frames`` frames (GPU only); best five per shape."""
    from codec.kernels.rvq import triton as rvq_triton

    lines = []
    for shape in shapes:
        default = rvq_triton.default_config(frames, shape.dim, shape.code_dim, shape.size, interpreted=False)
        best = _sweep_shape(shape, frames)[:5]
        lines.append(
            f"- {shape.name} (default {default}): " + ", ".join(f"{c} {t * 1e3:.3f} ms" for t, c in best)
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="small sizes (1, 64, 1024 frames), two shapes")
    ap.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=None)
    ap.add_argument("--frames", nargs="+", type=int, default=None)
    ap.add_argument("--impls", nargs="+", choices=list(IMPLS), default=None)
    ap.add_argument("--threads", type=int, default=1, help="CPU intra-op threads (CPU runs only)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="float32 peak, overrides the table")
    ap.add_argument("--peak-gbps", type=float, default=None, help="DRAM bandwidth, overrides the table")
    ap.add_argument("--sweep", action="store_true", help="GPU: time tile sizes at 64k frames and stop")
    ap.add_argument(
        "--write-results", action="store_true", help=f"write the '{SECTION}' section of RESULTS.md"
    )
    return ap.parse_args()


def main() -> None:
    load_before = harness.load_average()
    args = parse_args()
    args.load_before = load_before
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but no CUDA GPU is visible; use --device cpu")
    if device == "cpu":
        harness.set_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 peers stay float32, as our default
    shapes = [SHAPES[n] for n in (args.shapes or (["speech_16k", "encodec_24k"] if args.quick else SHAPES))]
    if args.sweep:
        print(sweep(shapes))
        return
    frames_list = args.frames or (QUICK_FRAMES if args.quick else FRAMES)
    impls = args.impls or [n for n in IMPLS if n != "triton-tf32x3"]
    peaks = peaks_for(device, args)
    rows, decode_rows, agree = [], [], {}
    for shape in shapes:
        for frames in frames_list:
            for name in impls:
                rows.append(time_impl(name, IMPLS[name], shape, frames, device, args.quick))
                print(format_rows(rows[-1:], peaks, {}).splitlines()[-1], file=sys.stderr, flush=True)
            if "triton" in impls and device == "cuda":
                agree[(shape.name, frames, "triton")] = codes_agree(shape, frames, device)
            decode_rows += time_decode(shape, frames, device, args.quick)
    body = report(args, device, shapes, peaks, rows, decode_rows, agree)
    print(body)
    if args.write_results:
        harness.write_section(SECTION, body)


def report(args, device, shapes, peaks, rows, decode_rows, agree) -> str:
    """The Markdown section: machine, command, roofline arithmetic, tables, targets."""
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else None
    command = "python benchmarks/kernels/rvq.py " + " ".join(sys.argv[1:])
    lines = [
        *harness.machine_lines(["triton", "vector-quantize-pytorch", "encodec", "descript-audio-codec"]),
        f"- Command: `{command.strip()}` (device {device}"
        + (f", {gpu})" if gpu else f", {torch.get_num_threads()} CPU thread(s))")
        + f"; load average before the run {args.load_before}, after {harness.load_average()}",
    ]
    lines.append(
        "- Peers come from a separate environment, never dependencies of codec (vector-quantize-pytorch "
        "1.32.0, encodec 0.1.1, descript-audio-codec 1.0.0; what each computes: "
        "`benchmarks/kernels/rvq_impls.py`). float32 everywhere, TF32 off."
    )
    if device != "cuda":
        lines.append(
            "- **No GPU was available for this run: these are CPU numbers; the Triton kernels were not "
            "timed and no GPU figure is claimed.**  On a CUDA GPU run "
            "`python benchmarks/kernels/rvq.py --write-results` to fill this section."
        )
    peak_note = f"{peaks[0] / 1e12:.1f} TFLOP/s float32, {peaks[1] / 1e9:.0f} GB/s" if peaks else "none"
    parts = [
        "\n".join(lines),
        "Roofline arithmetic (formulas in the docstring of `benchmarks/kernels/rvq.py`; float32 "
        "datasheet peaks: H100 SXM 67 TFLOP/s and 3.35 TB/s, H200 67 TFLOP/s and 4.8 TB/s; "
        f"peaks used for the % roofline column of this run: {peak_note}):",
        roofline_table(list(SHAPES.values())),
        "Encode (codes only):",
        format_rows(rows, peaks, agree),
        "Decode (codes -> summed codewords):",
        format_rows(decode_rows, peaks, {}),
        model_share(device, args.quick),
    ]
    goals = targets(rows, peaks)
    if goals:
        parts.append("Targets:\n" + "\n".join(goals))
    return "\n\n".join(parts)


if __name__ == "__main__":
    main()
