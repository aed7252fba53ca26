"""Training ablation: named recipe variants, the same budget and start, one dev evaluation.

Usage (from the repository root, as a module so that ``benchmarks`` imports)::

    python -m benchmarks.training.ablate --out runs/ablation --steps 400 \\
        --variants start control complex10 fine_grid --write-results
    python -m benchmarks.training.ablate --out runs/ablation --report-only --write-results

Every variant is the base preset (``--config``, default ``speech_16k``) with the dotted-key
overrides of ``benchmarks/training/variants.yaml`` and the same run settings (steps, batch,
crop length, learning rate, seed), warm-started from ``--init-from`` (the bundled model by
default; a variant may override ``train.init_from``).  After training, the variant's inference
weights (the EMA copy when it keeps one) are scored on a fixed dev subset: the first
``--eval-files`` files, each cut to ``--eval-seconds``, at every ``--codebooks`` depth.  A row
``start`` scores the warm-start weights themselves.

Each variant writes ``OUT/NAME/result.json``; a finished variant is not rerun, an interrupted
one resumes from its last checkpoint.  The table (and ``--write-results``: the "Training
ablation" section of ``benchmarks/RESULTS.md``) is built from all result files in ``OUT``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from codec import load_audio
from codec import metrics as M
from codec.audio import resample
from codec.bench import harness
from codec.config import ConfigError, load_preset
from codec.model import CodecModel

SECTION = "Training ablation"
VARIANTS = Path(__file__).with_name("variants.yaml")
AUDIO_SUFFIXES = (".flac", ".wav")


def load_variants(path: Path = VARIANTS) -> dict[str, dict[str, Any]]:
    """Variant name -> ``{"about": str, "overrides": {dotted key: value}}``."""
    data = yaml.safe_load(path.read_text())
    for name, spec in data.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("overrides", {}), dict):
            raise ConfigError(f"{path}: variant {name!r} needs an 'overrides' mapping")
    return data


def set_dotted(doc: dict[str, Any], key: str, value: Any) -> None:
    """``doc["a"]["b"]["c"] = value`` for ``key = "a.b.c"`` (intermediate mappings created)."""
    *parents, last = key.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
        if not isinstance(doc, dict):
            raise ConfigError(f"override {key}: {part} is not a mapping")
    doc[last] = value


def build_preset(base: str, overrides: dict[str, Any]) -> Any:
    """The preset ``base`` with ``overrides`` applied, parsed strictly (unknown keys are errors)."""
    from codec.config import CodecConfig, from_dict
    from codec.train.config import Preset, TrainConfig

    doc = copy.deepcopy(load_preset(base))
    for key, value in overrides.items():
        set_dotted(doc, key, value)
    return Preset(
        from_dict(CodecConfig, doc["model"], "model"), from_dict(TrainConfig, doc["train"], "train")
    )


def common_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The run settings every variant shares (a variant's own overrides come after these)."""
    return {
        "train.max_steps": args.steps,
        "train.seed": args.seed,
        "train.init_from": None if args.init_from == "none" else args.init_from,
        "train.data.train": [str(p) for p in args.data],
        "train.data.val": [str(args.dev)],
        "train.data.batch_size": args.batch_size,
        "train.data.segment_seconds": args.segment_seconds,
        "train.data.num_workers": 1,
        "train.optimizer.lr": args.lr,
        "train.optimizer.warmup_steps": min(100, args.steps // 10 + 1),
        "train.optimizer.schedule": "wsd",
        "train.optimizer.decay_steps": args.steps // 5,
        "train.checkpoint.every_n_steps": max(args.steps // 4, 1),
        "train.checkpoint.keep_last": 1,
        "train.logging.every_n_steps": 50,
        "train.logging.val_every_n_steps": 10**9,
    }


def dev_subset(folder: Path, files: int, seconds: float, sample_rate: int) -> list[torch.Tensor]:
    """The first ``files`` audio files of ``folder`` (sorted), mono at ``sample_rate``, cut."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)[:files]
    if not paths:
        raise SystemExit(f"ablate: no audio files under {folder}")
    clips = []
    for path in paths:
        audio = load_audio(path)
        wav = resample(audio.wav.mean(0, keepdim=True), audio.sample_rate, sample_rate)[0]
        clips.append(wav[: int(seconds * sample_rate)])
    return clips


def _metrics() -> dict[str, Any]:
    """Metric name -> function(ref, est, sr); PESQ only where the pesq package is installed."""
    table = {
        "pesq_wb": M.pesq_wb,
        "stoi": M.stoi,
        "si_sdr": lambda ref, est, sr: M.si_sdr(ref, est),
        "mel_distance": M.mel_distance,
    }
    try:
        M.pesq_wb(torch.zeros(1600), torch.zeros(1600), 16000)
    except M.MetricUnavailable:
        del table["pesq_wb"]
    except Exception:  # silence is not scorable, but the package is there
        pass
    return table


@torch.no_grad()
def evaluate(model: CodecModel, clips: list[torch.Tensor], codebooks: list[int]) -> dict[str, dict]:
    """Mean PESQ-wb, STOI, SI-SDR and mel distance per codebook count (as a string key).

    The model runs on its own device; metrics are computed on the CPU.
    """
    model = model.float().eval()
    device = next(model.parameters()).device
    sr, hop = model.cfg.sample_rate, model.hop_length
    metrics = _metrics()
    scores: dict[str, dict[str, list[float]]] = {}
    for k in codebooks:
        table = scores.setdefault(str(k), {name: [] for name in metrics})
        for ref in clips:
            frames = -(-ref.shape[0] // hop)
            wav = torch.nn.functional.pad(ref, (0, frames * hop - ref.shape[0]))[None].to(device)
            est = model.decode_offline(model.encode(wav, k))[0, : ref.shape[0]].cpu()
            for name, fn in metrics.items():
                table[name].append(fn(ref, est, sr))
    return {k: {m: statistics.fmean(v) for m, v in t.items()} for k, t in scores.items()}


def run_variant(name: str, spec: dict[str, Any], args: argparse.Namespace, clips: list[torch.Tensor]) -> dict:
    """Train one variant (resuming if interrupted) and score it; returns the result record."""
    from codec.train.runner import RunOptions, train

    run_dir = args.out / name
    overrides = {**common_overrides(args), **spec.get("overrides", {})}
    preset = build_preset(args.config, overrides)
    last = run_dir / "checkpoints" / "last.ckpt"
    resume = last if last.is_file() else None
    first_step = torch.load(resume, map_location="cpu", weights_only=False)["global_step"] if resume else 0
    options = RunOptions(run_dir=run_dir, accelerator="cpu", resume=resume, progress_bar=False)
    start = time.perf_counter()
    module = train(preset, options)
    seconds = time.perf_counter() - start
    steps_done = module.global_step
    return {
        "variant": name,
        "about": spec.get("about", ""),
        "overrides": spec.get("overrides", {}),
        "steps": steps_done,
        "train_seconds": seconds,
        "seconds_per_step": seconds / max(steps_done - first_step, 1),
        "resumed_at": first_step,
        "scores": evaluate(module.inference_model(), clips, args.codebooks),
        "params": sum(p.numel() for p in module.generator.parameters()),
    }


def score_start(args: argparse.Namespace, clips: list[torch.Tensor]) -> dict:
    """The ``start`` row: the warm-start weights, untrained."""
    from codec.checkpoint import load_model
    from codec.train.warmstart import resolve_model_dir

    model = load_model(resolve_model_dir(args.init_from))
    return {
        "variant": "start",
        "about": f"the warm-start weights ({args.init_from}), no training",
        "overrides": {},
        "steps": 0,
        "train_seconds": 0.0,
        "seconds_per_step": 0.0,
        "resumed_at": 0,
        "scores": evaluate(model, clips, args.codebooks),
        "params": sum(p.numel() for p in model.parameters()),
    }


def report(out: Path, codebooks: list[int], order: list[str]) -> str:
    """Markdown table of every ``OUT/*/result.json``, in variants-file order."""
    results = [json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))]
    rank = {name: i for i, name in enumerate(["start", *order])}
    results.sort(key=lambda r: rank.get(r["variant"], len(rank)))
    header = ["variant", "what", "steps", "s/step"]
    for k in codebooks:
        header += [f"PESQ-wb @{k}", f"STOI @{k}", f"SI-SDR @{k}", f"mel @{k}"]
    rows = []
    for r in results:
        row: list[object] = [r["variant"], r["about"], r["steps"], f"{r['seconds_per_step']:.2f}"]
        for k in codebooks:
            s = r["scores"].get(str(k))
            row += (
                ["-"] * 4
                if s is None
                else [
                    f"{s['pesq_wb']:.3f}",
                    f"{s['stoi']:.3f}",
                    f"{s['si_sdr']:.2f}",
                    f"{s['mel_distance']:.3f}",
                ]
            )
        rows.append(row)
    return harness.markdown_table(header, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder of the variants' runs and results")
    p.add_argument("--variants", nargs="+", help="variant names (default: all in the variants file)")
    p.add_argument("--variants-file", type=Path, default=VARIANTS)
    p.add_argument("--config", default="speech_16k", help="base preset (file or bundled name)")
    p.add_argument(
        "--init-from", default="speech_16k", help="warm-start model: bundled name, directory, or none"
    )
    p.add_argument("--data", type=Path, nargs="+", default=[Path("../shared/data/train")])
    p.add_argument("--dev", type=Path, default=Path("../shared/data/dev"))
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--segment-seconds", type=float, default=1.28)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--eval-files", type=int, default=16)
    p.add_argument("--eval-seconds", type=float, default=6.0)
    p.add_argument("--codebooks", type=int, nargs="+", default=[12, 6])
    p.add_argument("--report-only", action="store_true", help="only rebuild the table from OUT")
    harness.add_common_args(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = load_variants(args.variants_file)
    names = args.variants or list(variants)
    unknown = [n for n in names if n not in variants and n != "start"]
    if unknown:
        print(f"ablate: unknown variant {unknown[0]!r} (known: {', '.join(variants)})", file=sys.stderr)
        return 2
    if not args.report_only:
        from codec.config import load_preset as _load

        sample_rate = _load(args.config)["model"].get("sample_rate", 16000)
        clips = dev_subset(args.dev, args.eval_files, args.eval_seconds, sample_rate)
        for name in names:
            result_path = args.out / name / "result.json"
            if result_path.is_file():
                print(f"{name}: done already ({result_path})")
                continue
            result = (
                score_start(args, clips)
                if name == "start"
                else run_variant(name, variants[name], args, clips)
            )
            result["command"] = harness.command_line("-m benchmarks.training.ablate")
            result_path.parent.mkdir(parents=True, exist_ok=True)
            result_path.write_text(json.dumps(result, indent=2) + "\n")
            print(f"{name}: {json.dumps(result['scores'])}", flush=True)
    table = report(args.out, args.codebooks, list(variants))
    print(table)
    if args.write_results:
        lines = [
            f"Dev subset: the first {args.eval_files} files of {args.dev} (LibriSpeech test-other), "
            f"each cut to {args.eval_seconds:g} s; columns @K: K codebooks (K x 0.5 kbps).",
            "",
            table,
            "",
            *harness.machine_lines(),
            f"- Load: {harness.load_average()}",
            f"- Command: `{harness.command_line('-m benchmarks.training.ablate')}`",
        ]
        if args.note:
            lines.append(f"- Note: {args.note}")
        harness.write_section(SECTION, "\n".join(lines), Path(args.write_results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
