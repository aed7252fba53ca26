"""``codec distill``: its arguments and the command (Lightning is imported only when it runs).

    codec distill --teacher speech_16k --config speech_16k_small -o runs/small [--max-seconds S]

Bad input (a missing teacher, a config the teacher cannot teach, a cache made for another
teacher, missing data) is one line on stderr and exit status 2, as for ``codec train``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from codec.configs import bundled_presets
from codec.exitcodes import EXIT_OK, UsageError

_MISSING_EXTRA = "distillation needs the train extra: pip install 'codec[train]'"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``codec distill`` (the training options of ``codec train`` where they apply)."""
    p.add_argument("--teacher", required=True, help="teacher model directory or bundled model name")
    p.add_argument(
        "--config",
        required=True,
        help=f"student preset YAML file or bundled preset name ({', '.join(bundled_presets())})",
    )
    p.add_argument("-o", "--run-dir", required=True, metavar="RUN_DIR", help="checkpoints and logs")
    p.add_argument("--data", nargs="+", metavar="DIR", help="training folders or CSV/JSONL manifests")
    p.add_argument("--val-data", nargs="+", metavar="DIR", help="validation folders or manifests")
    p.add_argument("--max-steps", type=int, help="generator steps to train (overrides the preset)")
    p.add_argument(
        "--max-seconds",
        type=float,
        help="also stop (with a checkpoint) once the run has trained this long in all, time before a "
        "--resume included",
    )
    p.add_argument("--cache-dir", help="teacher cache folder (default: RUN_DIR/teacher_cache)")
    p.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu", "cuda", "mps"])
    p.add_argument("--devices", default="1", help="devices per node (an integer or 'auto')")
    p.add_argument("--precision", help="Lightning precision, e.g. 32-true, bf16-mixed, 16-mixed")
    p.add_argument("--batch-size", type=int, help="items per device and step (overrides the preset)")
    p.add_argument("--num-workers", type=int, help="data loader worker processes per device")
    p.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint of this run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for log files)")


def _check_numbers(args: argparse.Namespace) -> None:
    for name in ("max_steps", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise UsageError(f"--max-seconds must be positive, got {args.max_seconds}")
    if args.num_workers is not None and args.num_workers < 0:
        raise UsageError(f"--num-workers must be >= 0, got {args.num_workers}")


def distill_command(args: argparse.Namespace) -> int:
    """Run ``codec distill``; returns the exit status (errors are raised for the shared table)."""
    _check_numbers(args)
    try:
        import lightning  # noqa: F401
    except ImportError:
        raise UsageError(_MISSING_EXTRA) from None
    from codec.train.cli import checked_resume, overridden, run_options
    from codec.train.distill import load_distill_preset
    from codec.train.distill_run import distill
    from codec.train.warmstart import resolve_model_dir

    preset = load_distill_preset(args.config)
    from codec.checkpoint import read_config

    read_config(resolve_model_dir(args.teacher))  # a clear error before any work
    train_cfg = overridden(preset.train, args)
    distill_cfg = preset.distill
    if args.cache_dir:
        distill_cfg = dataclasses.replace(distill_cfg, cache_dir=args.cache_dir)
    preset = dataclasses.replace(preset, train=train_cfg, distill=distill_cfg)
    options = run_options(args, Path(args.run_dir), checked_resume(args), max_seconds=args.max_seconds)
    distill(preset, args.teacher, options)
    return EXIT_OK
