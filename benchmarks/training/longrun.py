"""The run that never stops: one training run of a preset, resumed session after session.

Usage (from the repository root)::

    python -m benchmarks.training.longrun start    # start or resume it in the background, niced
    python -m benchmarks.training.longrun start --threads 2   # both cores, while nothing else runs
    python -m benchmarks.training.longrun status   # step, steps per hour, CPU-hours, last evaluations
    python -m benchmarks.training.longrun stop     # SIGTERM: loses the steps since the last checkpoint
    python -m benchmarks.training.longrun save     # newest weights -> the committed warm start
    python -m benchmarks.training.longrun cooldown --steps 10000   # a decay branch (below)

``start`` resumes from the newest checkpoint of ``runs/<name>/`` (full state: optimiser, step,
data position) when the machine still has the run folder.  Without one it starts a new run
folder whose weights come from the last weights committed for this run
(``benchmarks/training/longrun/<name>/weights``, written by ``save``) and counts its steps
after the committed step; with neither it starts from the preset's own ``init_from``.  The run
trains on one thread (``OMP_NUM_THREADS=1``) at ``nice 10`` so that it keeps one core while a
developer works on the other; ``--threads 2`` gives it both while nothing else runs (stop and
start again to change it: the resume loses at most the steps since the last checkpoint).  Each
start records its thread count in the run folder (``threads.jsonl``), and the run's CPU-hours
count each training interval's wall time times the threads it ran on.  A checkpoint every 250
steps bounds what a kill loses.

The curve (``python -m benchmarks.training.curve``) evaluates the run every 5,000 steps.

The run holds its learning rate (``schedule: wsd``); its best weights at a given step come from
a *cooldown*: a branch that continues the run's newest checkpoint for ``--steps`` more steps
while the rate decays to its floor, in its own run folder ``runs/<name>-cooldown/`` (its own
checkpoints, log and curve: every other action takes ``--branch cooldown``).  The run itself is
left at that checkpoint, at full rate, and a later ``start`` continues it from there.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

PRESET = Path("configs") / "speech_16k_v2.yaml"
HOME = Path("benchmarks") / "training" / "longrun"  # committed: warm-start weights, curve
RUNS = Path("runs")
# A gap between two logged steps longer than this is a pause (machine stopped), not training.
_PAUSE_S = 600.0


@dataclass(frozen=True)
class Run:
    """Where one long run lives: its preset, run folder and committed home."""

    preset: Path
    name: str
    runs: Path = RUNS
    homes: Path = HOME

    @property
    def folder(self) -> Path:
        return self.runs / self.name

    @property
    def home(self) -> Path:
        return self.homes / self.name

    @property
    def weights(self) -> Path:
        return self.home / "weights"

    @property
    def threads_file(self) -> Path:
        """One line per start: its wall time and thread count (CPU-hours = wall time x threads)."""
        return self.folder / "threads.jsonl"

    @property
    def origin_file(self) -> Path:
        """Steps and CPU-hours before this run folder began (its warm start's), in the run folder."""
        return self.folder / "origin.json"


def run_for(preset: Path, runs: Path = RUNS, homes: Path = HOME, branch: str | None = None) -> Run:
    """The long run of ``preset`` (or its ``branch``, a run folder ``NAME-BRANCH`` of its own)."""
    doc = yaml.safe_load(preset.read_text())
    name = doc["model"]["name"] + (f"-{branch}" if branch else "")
    return Run(preset, name, runs, homes)


def add_run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", type=Path, default=PRESET, help="the run's preset (default: %(default)s)")
    parser.add_argument("--branch", choices=["cooldown"], help="the run's cooldown branch instead of the run")
    parser.add_argument("--runs", type=Path, default=RUNS, help="run folders (default: %(default)s)")
    parser.add_argument(
        "--home", type=Path, default=HOME, help="committed weights and curves (default: %(default)s)"
    )


def checkpoints(run: Run) -> list[tuple[int, Path]]:
    """``(step, path)`` of the run folder's step checkpoints, oldest first."""
    found = []
    for path in (run.folder / "checkpoints").glob("step*.ckpt"):
        digits = path.stem[len("step") :]
        if digits.isdigit():
            found.append((int(digits), path))
    return sorted(found)


def origin(run: Run) -> dict:
    """``{"step": ..., "cpu_hours": ...}`` already behind the run folder's step 0."""
    if run.origin_file.exists():
        return json.loads(run.origin_file.read_text())
    return {"step": 0, "cpu_hours": 0.0}


def pid_alive(run: Run) -> int | None:
    path = run.folder / "run.pid"
    if not path.exists():
        return None
    pid = int(path.read_text().strip() or 0)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    return pid if cmdline.exists() and b"train" in cmdline.read_bytes() else None


def start(run: Run, threads: int = 1, preset: Path | None = None, resume: Path | None = None) -> str:
    """Start or resume the run in the background on ``threads`` threads; returns what it did.

    ``preset`` replaces the run's own; ``resume`` is where a run folder without checkpoints
    starts (a branch: another run's checkpoint)."""
    if (pid := pid_alive(run)) is not None:
        return f"{run.name}: already running (pid {pid})"
    run.folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "codec", "train", "--run-dir", str(run.folder), "--no-progress"]
    found = checkpoints(run)
    if found or resume is not None:
        step, ckpt = found[-1] if found else (None, resume)
        cmd += ["--config", str(preset or run.preset), "--resume", str(ckpt)]
        what = f"resumed from {ckpt}" + (f" (run step {step})" if step is not None else "")
    else:
        cmd += ["--config", str(_fresh_preset(run))]
        what = f"started a new run folder from {run.weights if run.weights.exists() else 'the preset'}"
    log = (run.folder / "train.log").open("ab")
    with run.threads_file.open("a") as f:
        f.write(json.dumps({"wall_time": time.time(), "threads": threads}) + "\n")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.Popen(
        ["nice", "-n", "10", *cmd], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    (run.folder / "run.pid").write_text(f"{proc.pid}\n")
    return f"{run.name}: {what}; pid {proc.pid} on {threads} thread(s), log {run.folder / 'train.log'}"


def cooldown(main: Run, branch: Run, steps: int, threads: int = 1) -> str:
    """Start (or resume) the cooldown branch: ``steps`` more steps from the run's newest
    checkpoint, the rate decaying to its floor over all of them."""
    if (pid := pid_alive(main)) is not None:
        return f"{main.name}: running (pid {pid}); stop it first (longrun stop): one run at a time"
    if (pid := pid_alive(branch)) is not None:
        return f"{branch.name}: already running (pid {pid})"
    branch.folder.mkdir(parents=True, exist_ok=True)
    preset = branch.folder / "preset.yaml"
    if checkpoints(branch):
        return start(branch, threads, preset)
    found = checkpoints(main)
    if not found:
        return f"{main.name}: no checkpoint to cool down from"
    step, ckpt = found[-1]
    doc = yaml.safe_load(main.preset.read_text())
    doc["train"]["max_steps"] = step + steps
    doc["train"]["optimizer"].update(schedule="wsd", decay_steps=steps)
    preset.write_text(yaml.safe_dump(doc, sort_keys=False))
    # The branch counts its steps and CPU-hours on from the run's at the checkpoint it left.
    base = {"step": origin(main)["step"], "cpu_hours": progress(main, upto_step=step)["cpu_hours"]}
    branch.origin_file.write_text(json.dumps({**base, "branched_at": step}))
    return start(branch, threads, preset, resume=ckpt)


def _fresh_preset(run: Run) -> Path:
    """The preset, warm-started from the committed weights when there are any (and their step
    and CPU-hours recorded as this run folder's origin)."""
    state_file = run.home / "state.json"
    if not (run.weights.exists() and state_file.exists()):
        run.origin_file.write_text(json.dumps({"step": 0, "cpu_hours": 0.0}))
        return run.preset
    state = json.loads(state_file.read_text())
    run.origin_file.write_text(json.dumps({"step": state["step"], "cpu_hours": state["cpu_hours"]}))
    doc = yaml.safe_load(run.preset.read_text())
    doc["train"]["init_from"] = str(run.weights.resolve())
    path = run.folder / "preset.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def stop(run: Run) -> str:
    pid = pid_alive(run)
    if pid is None:
        return f"{run.name}: not running"
    os.kill(pid, signal.SIGTERM)
    return f"{run.name}: SIGTERM sent to {pid}"


def thread_starts(run: Run) -> list[tuple[float, int]]:
    """``(wall time, threads)`` of each start of the run folder, oldest first (none: one thread)."""
    if not run.threads_file.exists():
        return []
    rows = [json.loads(line) for line in run.threads_file.read_text().splitlines() if line.strip()]
    return sorted((float(r["wall_time"]), int(r["threads"])) for r in rows)


def threads_at(starts: list[tuple[float, int]], wall_time: float) -> int:
    """The thread count of the start in force at ``wall_time`` (1 before the first recorded)."""
    index = bisect.bisect_right(starts, (wall_time, float("inf"))) - 1
    return starts[index][1] if index >= 0 else 1


def scalars(run: Run, tag: str) -> list[tuple[float, int, float]]:
    """``(wall time, step, value)`` of every ``tag`` scalar in the run folder's TensorBoard log."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found = []
    for f in sorted((run.folder / "tensorboard").glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(f), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            found += [(e.wall_time, e.step, e.value) for e in acc.Scalars(tag)]
    return found


def progress(run: Run, upto_step: int | None = None) -> dict:
    """Steps, CPU-hours and rate of the run so far (or up to its run step ``upto_step``), from
    its TensorBoard log."""
    events = sorted(
        (t, s) for t, s, _ in scalars(run, "train/loss/total") if upto_step is None or s <= upto_step
    )
    starts = thread_starts(run)
    busy, recent = 0.0, []
    for (t0, s0), (t1, s1) in itertools.pairwise(events):
        if 0 < t1 - t0 < _PAUSE_S and s1 > s0:
            busy += (t1 - t0) * threads_at(starts, t0)
            recent.append((t1 - t0, s1 - s0))
    recent = recent[-20:]
    rate = 3600 * sum(s for _, s in recent) / sum(t for t, _ in recent) if recent else float("nan")
    base = origin(run)
    found = checkpoints(run)
    run_step = max([events[-1][1] + 1] if events else [0] + [s for s, _ in found])
    return {
        "step": base["step"] + run_step,
        "run_step": run_step,
        "checkpoint_step": found[-1][0] if found else None,
        "cpu_hours": base["cpu_hours"] + busy / 3600,
        "steps_per_hour": rate,
    }


def keeps_float32(preset: Path) -> bool:
    """Whether the run's weights are saved in float32: when its preset freezes modules.

    A frozen encoder or quantizer is there to keep another model's codes; rounding it to
    float16 would change some of them, so such a run saves float32 (twice the size)."""
    doc = yaml.safe_load(preset.read_text())
    return bool((doc.get("train") or {}).get("freeze"))


def save(run: Run) -> str:
    """Export the newest checkpoint (EMA; float16, float32 where the preset freezes modules) as
    the committed warm start of the run."""
    found = checkpoints(run)
    if not found:
        return f"{run.name}: no checkpoint to save"
    step, ckpt = found[-1]
    p = progress(run)
    target = run.weights
    with tempfile.TemporaryDirectory(dir=run.home.parent if run.home.parent.exists() else None) as tmp:
        out = Path(tmp) / "weights"
        float32 = keeps_float32(run.preset)
        half = [] if float32 else ["--half"]
        export = [sys.executable, "-m", "codec", "export", str(ckpt), "-o", str(out), *half]
        subprocess.run(export, check=True)
        run.home.mkdir(parents=True, exist_ok=True)
        if target.exists():
            for f in target.iterdir():
                f.unlink()
            target.rmdir()
        out.rename(target)
    state = {"step": origin(run)["step"] + step, "cpu_hours": round(p["cpu_hours"], 4)}
    (run.home / "state.json").write_text(json.dumps(state, indent=1) + "\n")
    dtype = "float32" if float32 else "float16"
    return f"{run.name}: step {state['step']} ({state['cpu_hours']} CPU-hours) saved to {target} ({dtype})"


def status(run: Run) -> str:
    pid = pid_alive(run)
    lines = [f"{run.name}: {'running, pid ' + str(pid) if pid else 'not running'} ({run.folder})"]
    if run.folder.exists():
        p = progress(run)
        lines.append(
            f"step {p['step']} (this run folder: {p['run_step']}, newest checkpoint "
            f"{p['checkpoint_step']}), {p['cpu_hours']:.2f} CPU-hours, {p['steps_per_hour']:.0f} steps/hour"
        )
    curve = run.home / "curve.json"
    if curve.exists():
        rows = json.loads(curve.read_text())
        if rows:
            last = rows[-1]
            pesq = ", ".join(f"{k} kbps {v['pesq_wb']['mean']:.3f}" for k, v in last["kbps"].items())
            lines.append(f"last evaluation: step {last['step']}: PESQ-wb {pesq}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.training.longrun", description=__doc__.split("\n")[0]
    )
    parser.add_argument("action", choices=["start", "status", "stop", "save", "cooldown"])
    add_run_args(parser)
    parser.add_argument("--threads", type=int, default=1, help="start, cooldown: threads (default 1)")
    parser.add_argument("--steps", type=int, help="cooldown: steps of the decay (its first start)")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    run = run_for(args.preset, args.runs, args.home, args.branch)
    if args.action == "cooldown":
        if args.steps is None or args.steps < 1:
            parser.error("cooldown needs --steps N (N >= 1)")
        branch = run_for(args.preset, args.runs, args.home, "cooldown")
        print(cooldown(run_for(args.preset, args.runs, args.home), branch, args.steps, args.threads))
    elif args.action == "start":
        if args.branch and not checkpoints(run):
            parser.error("a branch starts with `cooldown --steps N`")
        print(start(run, args.threads, run.folder / "preset.yaml" if args.branch else None))
    else:
        print({"status": status, "stop": stop, "save": save}[args.action](run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
