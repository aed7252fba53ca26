"""Corpus tokenization: throughput against ``codec encode DIR``, padding, memory, resume after kill -9.

Four parts, each a set of fresh child processes of the ``codec`` command (wall time includes
start-up, as a user sees it):

* ``throughput``: the same files (default: LibriSpeech dev and train subsets of
  /work/shared/data) through ``codec encode DIR -o OUT`` (one file at a time, one ``.cdc``
  each; with 2 threads, the default, and with 1), ``codec tokenize`` with 1 process and with 2
  processes; ``--repeats`` rounds of all commands in turn, the median wall time of each; hours
  of audio per minute, and each command's ratio to both ``encode DIR`` rows; then the same on
  every file linked ``--copies`` times (a larger corpus of the same audio: start-up amortised);
* ``padding``: frames the model ran on because of padding, relative to the valid frames, for
  the length-bucketed batches of ``codec tokenize`` and for the same batch budget in input
  order (no bucketing), from the run's plan;
* ``memory``: peak RSS (the child's own ``ru_maxrss``) of ``codec tokenize`` on 1k and 10k
  short generated files: it must not grow with the number of files;
* ``resume``: a run on 200 files killed with SIGKILL at 10 random moments (start-up, planning,
  coding, mid-write), rerun each time; at the end every file must be present exactly once with
  codes equal to encoding it alone.

    python benchmarks/tokenize/bench.py --write-results
    python benchmarks/tokenize/bench.py --parts throughput --limit 100 0
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import kit  # beside this script
import numpy as np
import pyarrow.parquet as pq
import soundfile as sf
import torch

from codec.bench import harness

SECTIONS = {
    "throughput": "Corpus tokenization: throughput and padding",
    "memory": "Corpus tokenization: memory and number of files",
    "resume": "Corpus tokenization: resume after kill -9",
}
DATA = Path("/work/shared/data")
DEFAULT_INPUTS = [DATA / "dev", DATA / "train" / "librispeech-train-clean-100"]


def corpus_folder(
    inputs: list[Path], limit: int | None, work: Path, copies: int = 1
) -> tuple[Path, list[Path]]:
    """One folder of symbolic links to the input files (``codec encode DIR`` takes one folder),
    each file linked ``copies`` times under different names (a larger corpus of the same audio)."""
    files = sorted(p for d in inputs for p in d.rglob("*.flac"))[:limit]
    root = work / "corpus"
    root.mkdir(parents=True, exist_ok=True)
    for copy in range(copies):
        for n, path in enumerate(files):
            (root / f"{copy * len(files) + n:05d}_{path.name}").symlink_to(path.resolve())
    return root, files * copies


def audio_hours(files: list[Path]) -> float:
    return sum(sf.info(str(p)).duration for p in files) / 3600


def throughput(args: argparse.Namespace, work: Path) -> list[str]:
    texts: list[str] = []
    for n, limit in enumerate(args.limit):
        texts += _throughput_table(args, work / f"t{n}", limit or None, padding=n == 0)
    if args.copies > 1:  # start-up amortised over a larger corpus of the same files
        texts += _throughput_table(args, work / "copies", None, padding=False, copies=args.copies)
    return texts


def _throughput_table(
    args: argparse.Namespace, work: Path, limit: int | None, padding: bool, copies: int = 1
) -> list[str]:
    root, files = corpus_folder(args.inputs, limit, work, copies)
    hours = audio_hours(files)
    cli = [*kit.cli_command()]
    encode = [*cli, "encode", root, "--model", args.model]
    runs = [
        ("`codec encode DIR` (today, default threads: 2)", [*encode, "-o", work / "cdc"], {}),
        (
            "`codec encode DIR` (today, OMP_NUM_THREADS=1)",
            [*encode, "-o", work / "cdc1"],
            {"OMP_NUM_THREADS": "1"},
        ),
    ]
    for n in args.processes:
        tok = [*cli, "tokenize", root, "-o", work / f"tok{n}", "--model", args.model, "--device", "cpu"]
        runs.append((f"`codec tokenize --devices {n}`", [*tok, "--devices", n], {}))
    # Rounds: every command once per round, in turn, so slow moments of a shared machine fall
    # on all of them; each command's median over the rounds is reported.
    seconds: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    coding: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    failed: dict[str, str] = {}
    for _ in range(args.repeats):
        for label, argv, env in runs:
            shutil.rmtree(argv[argv.index("-o") + 1], ignore_errors=True)  # a fresh output each time
            done = kit.run([str(a) for a in argv], env)
            if done.returncode != 0:
                failed[label] = f"failed (exit {done.returncode}): {done.stderr.strip()[-200:]}"
                continue
            seconds[label].append(done.seconds)
            found = re.search(r"= ([0-9.]+) h of audio per minute", done.stdout)
            if found:
                coding[label].append(float(found.group(1)))
    median = {label: float(np.median(v)) for label, v in seconds.items() if v}
    base2, base1 = (median.get(label) for label, _, _ in runs[:2])
    rows = []
    for label, _, _ in runs:
        if label not in median:
            rows.append([label, failed.get(label, "failed"), "", "", "", "", ""])
            continue
        wall, times = median[label], seconds[label]
        spread = f" ({min(times):.1f}-{max(times):.1f})" if len(times) > 1 else ""
        after = f"{np.median(coding[label]):.2f}" if coding[label] else "-"
        rows.append([label, f"{wall:.1f}{spread}", f"{hours * 60 / wall:.2f}", f"{hours * 3600 / wall:.0f}x",
                     f"{base1 / wall:.2f}x" if base1 else "-", f"{base2 / wall:.2f}x" if base2 else "-",
                     after])  # fmt: skip
    header = ["command", "wall s, median (range)", "hours of audio / min", "real time",
              "vs encode DIR, 1 thread", "vs encode DIR, 2 threads",
              "h/min after start-up (summary)"]  # fmt: skip
    text = [
        f"Files: {len(files)} LibriSpeech FLAC files (16 kHz mono) from "
        f"{', '.join(str(i) for i in args.inputs)}"
        f"{f' (every file linked {copies} times, under different names)' if copies > 1 else ''}, "
        f"{hours:.3f} h of audio; model `{args.model}`; "
        f"each command a fresh child process, timed wall clock including start-up, {args.repeats} "
        "rounds of all commands in turn, the median of each (the last column: "
        "the throughput `codec tokenize` prints, from after its processes have started and met to "
        "the index written; it includes loading the model and planning).",
        "",
        harness.markdown_table(header, rows),
        "",
    ]
    if not padding:
        return text
    plan = work / f"tok{args.processes[0]}" / "_plan.parquet"
    pad = harness.markdown_table(
        ["batching", "--batch-seconds", "padding overhead"], kit.padding_rows(plan, args)
    )
    return [
        *text,
        "Padding (frames the model ran on beyond the valid frames, from the same run's plan; "
        "batches shorter than 16 frames count as 16, the API's minimum):",
        "",
        pad,
        "",
    ]


def memory(args: argparse.Namespace, work: Path) -> list[str]:
    rows = []
    roots = {
        count: _small_files(work / f"small{count}", count, args.small_seconds) for count in args.memory_files
    }
    for repeat in range(1, args.memory_repeats + 1):
        for count, root in roots.items():  # interleaved, so that a change of load hits both sizes
            argv = [*kit.cli_command(), "tokenize", root, "-o", work / f"memtok{count}-{repeat}"]
            done = kit.run([str(a) for a in [*argv, "--model", args.model, "--device", "cpu", "-q"]])
            status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
            rows.append([f"{count:,}", repeat, f"{count * args.small_seconds / 60:.1f}",
                         f"{done.peak_rss / 2**20:.0f}", f"{done.seconds:.1f}", status])  # fmt: skip
            shutil.rmtree(work / f"memtok{count}-{repeat}", ignore_errors=True)
    for root in roots.values():
        shutil.rmtree(root, ignore_errors=True)
    header = ["files", "run", "audio min", "peak RSS MiB", "wall s", "status"]
    return [
        f"Generated {args.small_seconds:g} s 16 kHz WAV files (noise); `codec tokenize DIR -o OUT --model "
        f"{args.model} --device cpu` as a child, {args.memory_repeats} runs per size, the sizes "
        "interleaved; peak RSS = the child's own `ru_maxrss` (`os.wait4`).",
        "",
        harness.markdown_table(header, rows),
    ]


def _small_files(root: Path, count: int, seconds: float) -> Path:
    for n in range(count):
        rng = np.random.default_rng(n)
        sub = root / f"{n // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        wav = (0.1 * rng.standard_normal(round(seconds * 16000))).astype(np.float32)
        sf.write(sub / f"{n:06d}.wav", wav, 16000, subtype="PCM_16")
    return root


def resume(args: argparse.Namespace, work: Path) -> list[str]:
    from codec import Codec
    from codec.pipeline.audiofile import load_audio

    root, files = corpus_folder(args.inputs, args.resume_files, work / "resume")
    out = work / "resume_out"
    argv = [*kit.cli_command(), "tokenize", root, "-o", out, "--model", args.model, "--device", "cpu", "-q"]
    argv = [str(a) for a in [*argv, "--shard-size", args.resume_shard_size]]
    num_shards = -(-len(files) // args.resume_shard_size)
    rng = random.Random(args.seed)
    targets = sorted(rng.choices(range(num_shards), k=args.kills))
    rows = []
    for n, target in enumerate(targets, 1):
        start = time.monotonic()
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        while proc.poll() is None and len(list((out / "shards").glob("shard-*.parquet"))) < target:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 3.0 if target == 0 else 1.0))
        killed = proc.poll() is None
        committed = len(list((out / "shards").glob("shard-*.parquet")))
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        leftovers = len([p for p in out.rglob(".*")]) if out.exists() else 0
        rows.append([n, f"{time.monotonic() - start:.1f}", committed, leftovers,
                     "killed" if killed else f"ended first (exit {proc.returncode})"])  # fmt: skip
    final = kit.run(argv)
    codec = Codec.from_pretrained(args.model)
    torch.set_num_threads(1)  # as codec tokenize codes on a CPU (see codec/tokenize/distributed.py)
    seen: dict[str, int] = {}
    equal = 0
    for shard in sorted((out / "shards").glob("shard-*.parquet")):
        for row in pq.read_table(shard).to_pylist():
            seen[row["path"]] = seen.get(row["path"], 0) + 1
            audio = load_audio(row["path"])
            want = codec.encode(audio.wav.mean(0, keepdim=True)[None], audio.sample_rate).codes[0].numpy()
            got = np.asarray(row["codes"]).reshape(row["num_frames"], row["num_codebooks"]).T
            equal += int(got.shape == want.shape and np.array_equal(got, want))
    once = sum(1 for p in root.iterdir() if seen.get(str(p)) == 1)
    verdict = "pass" if once == len(files) == equal and final.returncode == 0 else "FAIL"
    kills = sum(r[-1] == "killed" for r in rows)
    return [
        f"{len(files)} files ({audio_hours(files):.3f} h), model `{args.model}`, `--shard-size "
        f"{args.resume_shard_size}` ({num_shards} shards), one process; SIGKILL to the process group "
        "once a random number of shards is committed plus a random delay (0 shards: during start-up "
        "and planning), then the same command again.",
        "",
        harness.markdown_table(
            ["kill", "s after start", "shards committed", "temp files left", "outcome"], rows
        ),
        "",
        f"Final run: exit {final.returncode}, {final.seconds:.1f} s. Files present exactly once: "
        f"{once}/{len(files)}; codes equal to encoding the file alone: {equal}/{len(files)}; "
        f"temporary files left: {len(list(out.rglob('.*')))}. Kills that landed: {kills}/{args.kills}. "
        f"Result: {verdict}.",
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parts = ["throughput", "memory", "resume"]
    p.add_argument("--parts", nargs="+", default=parts, choices=parts, help="padding is part of throughput")
    p.add_argument("--model", default="speech_16k", help="bundled model name or model directory")
    p.add_argument("--inputs", type=Path, nargs="+", default=DEFAULT_INPUTS, help="folders of FLAC files")
    p.add_argument(
        "--limit",
        type=int,
        nargs="+",
        default=[0],
        help="throughput: the first N files, one table each (0: all)",
    )
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="tokenize process counts")
    p.add_argument("--repeats", type=int, default=3, help="rounds of the throughput commands (median)")
    p.add_argument(
        "--copies", type=int, default=3, help="also a table of every file linked N times (1: none)"
    )
    p.add_argument("--batch-seconds", type=float, nargs="+", default=[20.0, 60.0, 180.0])
    p.add_argument("--memory-files", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--memory-repeats", type=int, default=1, help="runs per size (peak RSS varies run to run)")
    p.add_argument("--small-seconds", type=float, default=0.25, help="length of the memory part's files")
    p.add_argument("--resume-files", type=int, default=200)
    p.add_argument("--resume-shard-size", type=int, default=10)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=None, help="where outputs go (default: a temporary folder)")
    harness.add_common_args(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
    """Run the parts asked for; each prints (and with ``--write-results`` writes) its own section."""
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="codec-tokenize-", dir=args.workdir))
    parts = {"throughput": throughput, "memory": memory, "resume": resume}
    texts = []
    try:
        for name in args.parts:
            conditions = harness.Conditions(harness.wait_for_quiet(args.wait_quiet))
            body = parts[name](args, work)
            lines = [*harness.machine_lines(["pyarrow", "lightning"])]
            command = harness.command_line("benchmarks/tokenize/bench.py")
            lines += [f"- Commit: {harness.git_revision()}; command: `{command}`", conditions.line()]
            if args.note:
                lines.append(f"- Note: {args.note}")
            text = "\n".join([*lines, "", *body])
            print(f"## {SECTIONS[name]}\n\n{text}\n", flush=True)
            if args.write_results:
                harness.write_section(SECTIONS[name], text, Path(args.write_results))
            texts.append(text)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return "\n\n".join(texts)


if __name__ == "__main__":
    main()
