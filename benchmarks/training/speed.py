"""Training steps per hour on this CPU: recipes side by side, through ``codec train`` itself.

Usage (from the repository root, with the long run paused: ``kill -STOP``, then ``-CONT``)::

    python -m benchmarks.training.speed --write-results
    python -m benchmarks.training.speed --variants today v2 v2_fp32 --rounds 3 --steps 60

Each variant is a preset with dotted-key overrides, trained by ``codec train`` in a child process
for ``--steps`` steps on the real training data (validation off, no checkpoint until the end),
logging every 10 steps; its seconds per step are the TensorBoard wall times from the second logged
step to the last (start-up, data loader warm-up and the final checkpoint excluded).  The variants take turns
for ``--rounds`` rounds, so each sees the same machine load; the table gives the median over
rounds and the ratio to the first variant.  ``--onednn`` also runs one short training process
with ``ONEDNN_VERBOSE=1`` and counts which oneDNN kernels ran (``brg``/``amx`` are the AMX
kernels; ``ref`` would be the slow reference code).
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from benchmarks.training.ablate import set_dotted
from codec.bench import harness
from codec.config import load_preset

SECTION = "Training speed (steps per hour)"
# Batch, crops and data are the same for every variant: only the recipe changes.
COMMON = {
    "train.data.num_workers": 1,
    "train.logging.every_n_steps": 10,
    "train.logging.val_every_n_steps": 1_000_000,
    "train.checkpoint.every_n_steps": 1_000_000,
    "train.optimizer.warmup_steps": 10,
}
VARIANTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "today": ("speech_16k", "speech_16k's recipe (mel + multi-resolution STFT), bf16", {}),
    "v2": ("speech_16k_v2", "speech_16k_v2's recipe (complex MSE + mel, 75% overlap head), bf16", {}),
    "v2_fp32": ("speech_16k_v2", "speech_16k_v2's recipe in float32", {"train.precision": "32-true"}),
    "v2_workers0": ("speech_16k_v2", "speech_16k_v2, data loaded in the training process", {
        "train.data.num_workers": 0,
    }),
}  # fmt: skip


def preset_file(variant: str, args: argparse.Namespace, folder: Path) -> Path:
    base, _, overrides = VARIANTS[variant]
    doc = load_preset(args.base or base)
    common = {
        **COMMON,
        "train.data.batch_size": args.batch_size,
        "train.data.segment_seconds": args.segment_seconds,
    }
    for key, value in {**common, "train.data.train": args.data, **overrides}.items():
        set_dotted(doc, key, value)
    doc["train"]["init_from"] = None  # the speed does not depend on the weights
    path = folder / f"{variant}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def seconds_per_step(run_dir: Path) -> float:
    """Wall seconds per step between the second and the last logged step (the first logged
    interval holds start-up and the data loader's warm-up)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points = []
    for f in (run_dir / "tensorboard").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(f), size_guidance={"scalars": 0})
        acc.Reload()
        points += [(e.step, e.wall_time) for e in acc.Scalars("train/loss/total")]
    points = sorted(points)[1:]
    if len(points) < 2:
        raise SystemExit(f"{run_dir}: too few logged steps to time (raise --steps)")
    (s0, t0), (s1, t1) = points[0], points[-1]
    return (t1 - t0) / (s1 - s0)


def train_once(preset: Path, steps: int, threads: int, run_dir: Path) -> None:
    cmd = [sys.executable, "-m", "codec", "train", "--config", str(preset), "--max-steps", str(steps)]
    cmd += ["--run-dir", str(run_dir), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"codec train failed on {preset.name}: {done.stderr.strip()[-2000:]}")


def onednn_kernels(preset: Path, threads: int, folder: Path) -> collections.Counter:
    """(primitive, implementation) counts of one short training run with ONEDNN_VERBOSE=1."""
    cmd = [sys.executable, "-m", "codec", "train", "--config", str(preset), "--max-steps", "3"]
    cmd += ["--run-dir", str(folder / "onednn"), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "ONEDNN_VERBOSE": "1"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    counts: collections.Counter = collections.Counter()
    for line in out.splitlines():
        parts = line.split(",")
        if line.startswith("onednn_verbose") and "exec" in parts and len(parts) > 6:
            at = parts.index("exec")
            counts[(parts[at + 2], parts[at + 3])] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variants", nargs="+", default=["today", "v2", "v2_fp32", "v2_workers0"])
    p.add_argument("--data", nargs="+", default=[str(Path("..") / "shared" / "data" / "train")])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--segment-seconds", type=float, default=1.28)
    p.add_argument("--base", help="one preset under every variant's overrides (smoke runs: debug)")
    p.add_argument(
        "--onednn", action="store_true", help="also count the oneDNN kernels of the second variant"
    )
    harness.add_common_args(p)
    args = p.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {unknown}; known: {sorted(VARIANTS)}")
    conditions = harness.Conditions(harness.wait_for_quiet(args.wait_quiet))
    times: dict[str, list[float]] = {v: [] for v in args.variants}
    with tempfile.TemporaryDirectory(prefix="speed_bench_") as tmp:
        folder = Path(tmp)
        presets = {v: preset_file(v, args, folder) for v in args.variants}
        for r in range(args.rounds):
            for v in args.variants:
                run_dir = folder / f"{v}-{r}"
                train_once(presets[v], args.steps, args.threads, run_dir)
                times[v].append(seconds_per_step(run_dir))
                print(f"round {r}: {v} {times[v][-1]:.3f} s/step", flush=True)
        probe = presets[args.variants[min(1, len(args.variants) - 1)]]
        kernels = onednn_kernels(probe, args.threads, folder) if args.onednn else None
    text = report(args, times, kernels, conditions)
    print(text)
    if args.write_results:
        harness.write_section(SECTION, text, Path(args.write_results))
    return 0


def report(args: argparse.Namespace, times: dict, kernels: collections.Counter | None, conditions) -> str:
    base = statistics.median(times[args.variants[0]])
    rows = []
    for v, samples in times.items():
        med = statistics.median(samples)
        rounds = ", ".join(f"{s:.3f}" for s in samples)
        rows.append([v, VARIANTS[v][1], f"{med:.3f}", rounds, f"{3600 / med:,.0f}", f"{base / med:.2f}"])
    header = ["variant", "recipe", "s/step (median)", "rounds", "steps/hour", "speed-up"]
    lines = [
        f"- Command: `{harness.command_line('-m benchmarks.training.speed')}`",
        *harness.machine_lines(),
        conditions.line(),
        f"- `codec train` on {args.threads} thread(s), batch {args.batch_size} x {args.segment_seconds} s "
        "crops of the training data, "
        f"{args.steps} steps per run (timed from the second logged step), {args.rounds} alternating rounds",
        "",
        harness.markdown_table(header, rows),
    ]
    if kernels:
        top = [[prim, impl, n] for (prim, impl), n in kernels.most_common(12)]
        lines += ["", "oneDNN kernels in 3 training steps (ONEDNN_VERBOSE=1):", ""]
        lines.append(harness.markdown_table(["primitive", "implementation", "calls"], top))
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
