"""Learning curve of the long run: ``codec bench quality`` on all dev files every 5,000 steps.

Usage (from the repository root)::

    nice -n 19 python -m benchmarks.training.curve watch     # evaluate each 5k-step checkpoint as it appears
    python -m benchmarks.training.curve eval runs/speech_16k_v2/checkpoints/step0005000.ckpt
    python -m benchmarks.training.curve init                 # step 0: the warm start before any training
    python -m benchmarks.training.curve report               # RESULTS.md section and plot from curve.json

Each evaluation exports the checkpoint (the EMA weights, float32) to a temporary model directory
and runs ``codec bench quality DEV --codec ours:DIR --bitrates 1.5,3,6`` on one thread; the
scores (mean and 95% confidence half-width over the files) join
``benchmarks/training/longrun/<name>/curve.json`` with the step and the CPU-hours the run had
trained by then.  ``report`` writes the "Learning curve: <name>" section of
``benchmarks/RESULTS.md`` and ``curve.png`` beside ``curve.json``, with Lyra v2's and the
bundled models' dev figures (from the committed dev reports) as reference lines.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.training.longrun import HOME, Run, add_run_args, checkpoints, origin, progress, run_for
from codec import pretrained
from codec.bench import harness

SECTION = "Learning curve: {name}"
EVERY = 5000
BITRATES = ("1.5", "3", "6")
METRICS = {"pesq_wb": "PESQ-wb", "stoi": "STOI", "si_sdr": "SI-SDR (dB)", "mel_distance": "mel distance"}
# Committed dev reports whose bundled models and Lyra v2 are the reference lines (first wins).
REFERENCES = (
    Path("benchmarks") / "lyra" / "report" / "summary.json",
    Path("benchmarks") / "reconstruction" / "report" / "summary.json",
)
DEV = Path("..") / "shared" / "data" / "dev"


def evaluate(run: Run, ckpt: Path, step: int, dev: Path, bitrates: tuple[str, ...] = BITRATES) -> dict:
    """One curve row: export ``ckpt`` (or take a model directory) and score it on ``dev`` at
    every bitrate."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        model = ckpt if ckpt.is_dir() else Path(tmp) / "model"
        if not ckpt.is_dir():
            export = [sys.executable, "-m", "codec", "export", str(ckpt), "-o", str(model)]
            subprocess.run(export, check=True, env=env)
        out = run.folder / "evals" / f"step{step:07d}"
        started = time.monotonic()
        cmd = [sys.executable, "-m", "codec", "bench", "quality", str(dev), "--codec", f"ours:{model}"]
        cmd += ["--bitrates", ",".join(bitrates), "--out", str(out), "--jobs", "0", "-q"]
        subprocess.run(cmd, check=True, env=env)
    summary = json.loads((out / "summary.json").read_text())
    kbps = {}
    for s in summary["settings"]:
        key = f"{s['kbps']:g}"
        kbps[key] = {m: {k: s["metrics"][m][k] for k in ("mean", "ci95")} for m in METRICS}
    return {
        "step": step,
        "cpu_hours": round(progress(run, upto_step=step - origin(run)["step"])["cpu_hours"], 4)
        if step
        else 0.0,
        "files": summary["files"],
        "eval_seconds": round(time.monotonic() - started),
        "kbps": kbps,
    }


def warm_start_model(run: Run, out: Path) -> Path:
    """The run's step 0 as a model directory: the preset's model after its warm start."""
    from codec.checkpoint import save_model
    from codec.model import CodecModel
    from codec.train.config import load_train_preset
    from codec.train.warmstart import warm_start

    preset = load_train_preset(str(run.preset))
    model = CodecModel(preset.model)
    if preset.train.init_from:
        warm_start(model, preset.train.init_from)
    save_model(model.eval(), out)
    return out


def load_curve(run: Run) -> list[dict]:
    path = run.home / "curve.json"
    return json.loads(path.read_text()) if path.exists() else []


def add_row(run: Run, row: dict) -> None:
    rows = [r for r in load_curve(run) if r["step"] != row["step"]] + [row]
    rows.sort(key=lambda r: r["step"])
    run.home.mkdir(parents=True, exist_ok=True)
    tmp = run.home / ".curve.json.tmp"
    tmp.write_text(json.dumps(rows, indent=1) + "\n")
    os.replace(tmp, run.home / "curve.json")


def references(homes: Path | None = None, exclude: str | None = None) -> dict[str, list[tuple[float, float]]]:
    """``{codec label: [(kbps, PESQ-wb)]}``: the bundled models and Lyra v2 of the committed dev
    reports, and each bundled model trained by a long run (``homes/NAME/curve.json``, other than
    ``exclude``) at the step it shipped."""
    out: dict[str, list[tuple[float, float]]] = {}
    for name, points in _shipped_runs(homes, exclude):
        out[f"ours ({name}, bundled)"] = points
    for path in REFERENCES:
        if not path.exists():
            continue
        found: dict[str, list[tuple[float, float]]] = {}
        for s in json.loads(path.read_text())["settings"]:
            if s["kind"] in ("ours", "lyra") and s["codec"] not in out:
                found.setdefault(s["codec"], []).append((s["kbps"], s["metrics"]["pesq_wb"]["mean"]))
        out.update(found)
    return out


def _shipped_runs(homes: Path | None, exclude: str | None) -> list[tuple[str, list[tuple[float, float]]]]:
    """``(bundled model, [(kbps, PESQ-wb)])`` from the curve row of the step each one shipped."""
    found = []
    for curve in sorted((homes or HOME).glob("*/curve.json")):
        name = curve.parent.name
        if name == exclude or name not in pretrained.available():
            continue
        config = json.loads((pretrained.model_dir(name) / "config.json").read_text())
        step = (config.get("metadata") or {}).get("training_step")
        row = next((r for r in json.loads(curve.read_text()) if r["step"] == step), None)
        if row is not None:
            found.append((name, [(float(k), v["pesq_wb"]["mean"]) for k, v in row["kbps"].items()]))
    return found


def plot(run: Run, rows: list[dict], refs: dict[str, list[tuple[float, float]]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = {"1.5": "tab:green", "3": "tab:orange", "6": "tab:blue"}
    for kbps, colour in colours.items():
        pts = [(r["step"], r["kbps"][kbps]["pesq_wb"]) for r in rows if kbps in r["kbps"]]
        if pts:
            ax.errorbar(
                [s for s, _ in pts], [p["mean"] for _, p in pts], yerr=[p["ci95"] for _, p in pts],
                marker="o", color=colour, label=f"{run.name} {kbps} kbps", capsize=3,
            )  # fmt: skip
    styles = {"ours": ":", "Lyra": "--"}
    for label, points in refs.items():
        for kbps, value in points:
            if kbps > 6.5:
                continue
            style = styles["Lyra" if "Lyra" in label else "ours"]
            ax.axhline(value, linestyle=style, color="grey", linewidth=1)
            ax.annotate(f"{label} {kbps:g} kbps", (0.01, value), xycoords=("axes fraction", "data"),
                        fontsize=7, va="bottom", color="dimgrey")  # fmt: skip
    last = max([r["step"] for r in rows] + [EVERY])
    ax.set_xlim(-0.03 * last, 1.05 * last)
    ax.set_xlabel("training step")
    ax.set_ylabel("PESQ-wb (dev, 100 files)")
    ax.set_title(f"{run.name}: dev PESQ-wb by step (mean, 95% CI)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    path = run.home / "curve.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(run: Run, results: Path = harness.RESULTS_PATH) -> str:
    rows = load_curve(run)
    header = ["step", "CPU-hours", "kbps", *METRICS.values()]
    table = []
    for r in rows:
        for kbps, stats in r["kbps"].items():
            cells = [_cell(stats[m], m) for m in METRICS]
            table.append([f"{r['step']:,}", f"{r['cpu_hours']:.1f}", kbps, *cells])
    lines = references(run.homes, run.name)
    png = plot(run, rows, lines) if rows else None
    refs = "; ".join(
        f"{label} " + ", ".join(f"{k:g}: {v:.2f}" for k, v in pts) for label, pts in lines.items()
    )
    body = [
        f"- Run: `{run.preset}` ({run.name}), at nice 10 on one thread beside other work (two once a "
        "session's other work is done: `longrun start --threads 2`); CPU-hours are the run's training "
        "wall time times the threads it ran on",
        *_branch_lines(run),
        f"- Data: `{DEV}` (100 files, LibriSpeech test-other subset); mean ± 95% confidence interval "
        "over files",
        "- Command: `python -m benchmarks.training.curve watch` (each 5k-step checkpoint, EMA weights, "
        "`codec bench quality --bitrates 1.5,3,6`), then `python -m benchmarks.training.curve report`",
        f"- Machine: {harness.cpu_name()}",
        "- Reference PESQ-wb on the same files (the committed dev reports; a bundled model trained by a "
        f"long run, at the step it shipped): {refs}",
        "",
        harness.markdown_table(header, table) if table else "(no evaluation yet)",
    ]
    if png:
        body += ["", f"![PESQ-wb by step]({os.path.relpath(png, results.parent)})"]
    section = SECTION.format(name=run.name)
    harness.write_section(section, "\n".join(body), results)
    return f"{len(rows)} evaluations -> {results} ({section})"


def _branch_lines(run: Run) -> list[str]:
    """What a cooldown branch is, for its RESULTS section (nothing for the run itself)."""
    base = origin(run)
    preset = run.folder / "preset.yaml"
    if "branched_at" not in base or not preset.exists():
        return []
    train = yaml.safe_load(preset.read_text())["train"]
    start, end = base["step"] + base["branched_at"], base["step"] + train["max_steps"]
    return [
        f"- Cooldown branch (`longrun cooldown`): the run's checkpoint at step {start:,} trained on to "
        f"step {end:,} while the learning rate decays (cosine) from {train['optimizer']['lr']:g} to its "
        "floor; the run itself goes on from that checkpoint at full rate"
    ]


def _cell(stat: dict, metric: str) -> str:
    digits = 3 if metric in ("stoi", "mel_distance") else 2
    return f"{stat['mean']:.{digits}f} ± {stat['ci95']:.{digits}f}"


def watch(run: Run, args: argparse.Namespace) -> None:
    """Evaluate every checkpoint on the 5k grid that the curve lacks, as long as the run lives."""
    from benchmarks.training.longrun import pid_alive

    while True:
        done = {r["step"] for r in load_curve(run)}
        base = origin(run)["step"]
        todo = [(s, p) for s, p in checkpoints(run) if (base + s) % EVERY == 0 and base + s not in done]
        for step, ckpt in todo:
            try:
                row = evaluate(run, ckpt, base + step, args.dev, args.bitrates)
            except subprocess.CalledProcessError as err:
                print(f"step {base + step}: evaluation failed ({err})", flush=True)
                continue
            add_row(run, row)
            print(f"step {row['step']}: " + report(run, args.results), flush=True)
        if pid_alive(run) is None and not todo:
            return
        time.sleep(args.poll)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.training.curve", description=__doc__.split("\n")[0]
    )
    parser.add_argument("action", choices=["watch", "eval", "init", "report"])
    parser.add_argument("checkpoint", nargs="?", type=Path, help="eval: a .ckpt of the run")
    parser.add_argument("--step", type=int, help="eval: the step to record (default: the checkpoint's)")
    add_run_args(parser)
    parser.add_argument("--dev", type=Path, default=DEV, help="evaluation audio (default: %(default)s)")
    parser.add_argument("--results", type=Path, default=harness.RESULTS_PATH, help="(default: %(default)s)")
    parser.add_argument(
        "--bitrates", type=lambda t: tuple(t.split(",")), default=BITRATES, help="kbps (default: 1.5,3,6)"
    )
    parser.add_argument("--poll", type=float, default=60.0, help="watch: seconds between looks")
    args = parser.parse_args(argv)
    run = run_for(args.preset, args.runs, args.home, args.branch)
    if args.action == "watch":
        watch(run, args)
    elif args.action == "eval":
        if args.checkpoint is None:
            parser.error("eval needs a checkpoint")
        step = args.step if args.step is not None else origin(run)["step"] + int(args.checkpoint.stem[4:])
        add_row(run, evaluate(run, args.checkpoint, step, args.dev, args.bitrates))
        print(report(run, args.results))
    elif args.action == "init":
        with tempfile.TemporaryDirectory() as tmp:
            model = warm_start_model(run, Path(tmp) / "init")
            add_row(run, evaluate(run, model, 0, args.dev, args.bitrates))
        print(report(run, args.results))
    else:
        print(report(run, args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
