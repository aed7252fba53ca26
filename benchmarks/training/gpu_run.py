"""One bounded GPU training run of a recipe variant: train, export, score on dev, write JSON.

Usage (on a machine with one GPU, from the repository root; ``gpu_run.sh`` installs what the
run needs first)::

    python -m benchmarks.training.gpu_run --out OUT --variant complex10 --minutes 7.5

It warm-starts from ``--init-from`` (the bundled model by default), trains the variant of
``benchmarks/training/variants.yaml`` (the same overrides the CPU ablation uses) with a large
batch in bf16 until ``--minutes`` of training wall time or ``--max-steps`` have passed, then
writes into ``OUT``:

- ``model/``: the trained weights as a model directory (float16 storage, 12.5 MB for
  speech_16k), ready for ``Codec.from_pretrained`` and for ``codec/pretrained/``;
- ``last.ckpt``: the full training state, to resume from (not for the repository);
- ``metrics.json``: device, steps, seconds per step, and dev scores (PESQ-wb where the
  ``pesq`` package is installed, STOI, SI-SDR, mel distance at each ``--codebooks`` depth)
  of the start weights and of the trained weights, side by side.

``--dry-run`` runs the same code on the CPU for a few steps on tiny settings (the test suite
does this), so the script is known to work before a GPU is spent on it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from benchmarks.training import ablate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--variant", default="complex10", help="a variant of benchmarks/training/variants.yaml")
    p.add_argument("--config", default="speech_16k")
    p.add_argument("--init-from", default="speech_16k")
    p.add_argument("--data", type=Path, nargs="+", default=[Path(".gpu/data/train")])
    p.add_argument("--dev", type=Path, default=Path(".gpu/data/dev"))
    p.add_argument("--minutes", type=float, default=7.5, help="training wall time")
    p.add_argument("--max-steps", type=int, default=100_000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--segment-seconds", type=float, default=2.0)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--num-workers", type=int, default=12)
    p.add_argument("--eval-files", type=int, default=100)
    p.add_argument("--eval-seconds", type=float, default=30.0)
    p.add_argument("--codebooks", type=int, nargs="+", default=[12, 6, 3])
    p.add_argument("--dry-run", action="store_true", help="CPU, a few steps, tiny settings (for tests)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from codec.checkpoint import load_model, save_model
    from codec.train.runner import RunOptions, train
    from codec.train.warmstart import resolve_model_dir

    args = parse_args(argv)
    if args.dry_run:
        args.max_steps, args.batch_size, args.segment_seconds = 3, 2, 0.5
        args.num_workers, args.eval_files, args.eval_seconds = 0, 2, 1.0
    gpu = torch.cuda.is_available() and not args.dry_run
    if not gpu and not args.dry_run:
        print("gpu_run: no CUDA device (use --dry-run to check the script on a CPU)", file=sys.stderr)
        return 2
    variants = ablate.load_variants()
    if args.variant not in variants:
        print(f"gpu_run: unknown variant {args.variant!r} (known: {', '.join(variants)})", file=sys.stderr)
        return 2
    ns = argparse.Namespace(
        steps=args.max_steps, seed=0, init_from=args.init_from, data=args.data, dev=args.dev,
        batch_size=args.batch_size, segment_seconds=args.segment_seconds, lr=args.lr,
    )  # fmt: skip
    overrides = {**ablate.common_overrides(ns), **variants[args.variant].get("overrides", {})}
    overrides["train.data.num_workers"] = args.num_workers
    overrides["train.precision"] = "bf16-mixed"
    overrides["train.optimizer.schedule"] = "wsd"
    # Time-bounded: no step-based decay branch; every 500 steps a checkpoint.
    overrides["train.optimizer.decay_steps"] = 0
    overrides["train.checkpoint.every_n_steps"] = 500
    preset = ablate.build_preset(args.config, overrides)
    args.out.mkdir(parents=True, exist_ok=True)
    clips = ablate.dev_subset(args.dev, args.eval_files, args.eval_seconds, preset.model.sample_rate)
    device = "cuda" if gpu else "cpu"
    start_scores = None
    if args.init_from != "none":
        start_model = load_model(resolve_model_dir(args.init_from), device)
        start_scores = ablate.evaluate(start_model, clips, args.codebooks)

    options = RunOptions(
        run_dir=args.out / "run",
        accelerator="gpu" if gpu else "cpu",
        progress_bar=False,
        max_seconds=args.minutes * 60,
    )
    began = time.perf_counter()
    module = train(preset, options)
    seconds = time.perf_counter() - began
    module.trainer.save_checkpoint(args.out / "last.ckpt")
    model = module.inference_model().float().eval()
    save_model(model, args.out / "model", metadata={"training_step": module.global_step}, dtype=torch.float16)
    trained = load_model(args.out / "model", device)  # scored as shipped: float16 storage
    record = {
        "device": torch.cuda.get_device_name(0) if gpu else "cpu (dry run)",
        "variant": args.variant,
        "overrides": overrides,
        "steps": module.global_step,
        "train_seconds": seconds,
        "seconds_per_step": seconds / max(module.global_step, 1),
        "dev": {"folder": str(args.dev), "files": len(clips), "seconds_per_file_max": args.eval_seconds},
        "start": start_scores,
        "trained": ablate.evaluate(trained, clips, args.codebooks),
    }
    (args.out / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("device", "steps", "seconds_per_step", "start", "trained")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
