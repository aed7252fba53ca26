"""``codec train``, ``codec distill`` and ``codec export``: argument parsers and entry points.

    codec distill --teacher speech_16k --config speech_16k_small -o runs/small [--max-seconds S]

The parsers import nothing heavy, so ``codec --help`` stays fast and works without the
``train`` extra; Lightning is imported only when a command runs.  Exit statuses come from the
shared table of :mod:`codec.exitcodes`: 0 success, 2 bad input (config, data, paths, a missing
teacher, a config the teacher cannot teach, a cache made for another teacher; one line on
stderr), 1 an internal or I/O error, 130 Ctrl-C, 143 SIGTERM.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from codec import exitcodes
from codec.configs import bundled_presets
from codec.exitcodes import EXIT_OK, UsageError

_MISSING_EXTRA = "training needs the train extra: pip install 'codec[train]'"
_MISSING_EXTRA_DISTILL = "distillation needs the train extra: pip install 'codec[train]'"


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``codec train`` on ``subparsers``; the command's handler is ``run_train``."""
    p = subparsers.add_parser(
        "train",
        help="train a codec from a preset (Lightning; DDP for several devices/nodes)",
        description="Train a codec. Multi-GPU: --devices N. Multi-node: the same command under "
        "torchrun or srun with --num-nodes M.",
    )
    p.add_argument(
        "--config",
        required=True,
        help=f"preset YAML file or bundled preset name ({', '.join(bundled_presets())})",
    )
    p.add_argument("--data", nargs="+", metavar="DIR", help="training folders or CSV/JSONL manifests")
    p.add_argument("--val-data", nargs="+", metavar="DIR", help="validation folders or manifests")
    p.add_argument("--max-steps", type=int, help="generator steps to train (overrides the preset)")
    p.add_argument("--devices", default="1", help="devices per node (an integer or 'auto')")
    p.add_argument("--num-nodes", type=int, default=1, help="nodes (with torchrun or SLURM)")
    p.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu", "cuda", "mps"])
    p.add_argument("--precision", help="Lightning precision, e.g. 32-true, bf16-mixed, 16-mixed")
    p.add_argument("--batch-size", type=int, help="items per device and step (overrides the preset)")
    p.add_argument("--num-workers", type=int, help="data loader worker processes per device")
    p.add_argument("--run-dir", help="checkpoints and TensorBoard logs (default: runs/<model name>)")
    p.add_argument(
        "--resume", metavar="CKPT", help="continue from a checkpoint (e.g. RUN/checkpoints/last.ckpt)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for log files)")
    p.set_defaults(handler=run_train)
    return p


def add_export_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``codec export``; the command's handler is ``run_export``."""
    p = subparsers.add_parser("export", help="write a training checkpoint as an inference model directory")
    p.add_argument("checkpoint", metavar="CKPT", help="a .ckpt file written by codec train")
    p.add_argument("-o", "--output", required=True, metavar="MODEL_DIR", help="model directory to write")
    p.add_argument("--no-ema", action="store_true", help="export the raw weights even if the run kept an EMA")
    p.add_argument("--force", action="store_true", help="replace an existing model directory")
    p.add_argument(
        "--half",
        action="store_true",
        help="store the weights as float16 (half the file; loading upcasts them to float32)",
    )
    p.set_defaults(handler=run_export)
    return p


def add_distill_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``codec distill``; the command's handler is ``run_distill``."""
    p = subparsers.add_parser(
        "distill",
        help="train a smaller student codec from a trained teacher codec",
        description="Distil a teacher model (directory or bundled name) into the student of a preset "
        "(its train.distill section sets the losses); export the result with codec export.",
    )
    _distill_arguments(p)
    p.set_defaults(handler=run_distill)
    return p


def run_distill(args: argparse.Namespace) -> int:
    """Handler of ``codec distill``; returns the exit status."""
    return exitcodes.run(lambda: distill_command(args))


def _distill_arguments(p: argparse.ArgumentParser) -> None:
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
        raise UsageError(_MISSING_EXTRA_DISTILL) from None
    from codec.checkpoint import read_config
    from codec.train.distill import load_distill_preset
    from codec.train.distill_run import distill
    from codec.train.warmstart import resolve_model_dir

    preset = load_distill_preset(args.config)
    read_config(resolve_model_dir(args.teacher))  # a clear error before any work
    train_cfg = overridden(preset.train, args)
    distill_cfg = preset.distill
    if args.cache_dir:
        distill_cfg = dataclasses.replace(distill_cfg, cache_dir=args.cache_dir)
    preset = dataclasses.replace(preset, train=train_cfg, distill=distill_cfg)
    options = run_options(args, Path(args.run_dir), checked_resume(args), max_seconds=args.max_seconds)
    distill(preset, args.teacher, options)
    return EXIT_OK


def _devices(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        raise UsageError(f"--devices must be an integer or 'auto', got {value!r}") from None
    if n < 1:
        raise UsageError(f"--devices must be at least 1, got {n}")
    return n


def run_train(args: argparse.Namespace) -> int:
    """Handler of ``codec train``; returns the exit status."""
    return exitcodes.run(lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    try:
        import lightning  # noqa: F401
    except ImportError:
        raise UsageError(_MISSING_EXTRA) from None
    from codec.train.config import load_train_preset
    from codec.train.runner import train

    preset = load_train_preset(args.config)
    preset = type(preset)(preset.model, overridden(preset.train, args))
    resume = checked_resume(args)
    if args.num_nodes < 1:
        raise UsageError("--num-nodes must be at least 1")
    run_dir = Path(args.run_dir or Path("runs") / preset.model.name)
    train(preset, run_options(args, run_dir, resume, num_nodes=args.num_nodes))
    return EXIT_OK


def overridden(train_cfg: Any, args: argparse.Namespace) -> Any:
    """``train_cfg`` with the command line's data and optimisation overrides applied."""
    from codec.train.runner import apply_overrides

    return apply_overrides(
        train_cfg, args.data, args.val_data, args.max_steps, args.precision, args.batch_size, args.num_workers
    )


def checked_resume(args: argparse.Namespace) -> Path | None:
    """``--resume`` as a path; a usage error when it names no file."""
    resume = Path(args.resume) if args.resume else None
    if resume is not None and not resume.is_file():
        raise UsageError(f"{resume}: no such checkpoint")
    return resume


def run_options(args: argparse.Namespace, run_dir: Path, resume: Path | None, **extra: Any) -> Any:
    """The :class:`codec.train.runner.RunOptions` the shared run arguments describe."""
    from codec.train.runner import RunOptions

    return RunOptions(
        run_dir=run_dir,
        devices=_devices(args.devices),
        accelerator="gpu" if args.accelerator == "cuda" else args.accelerator,
        resume=resume,
        progress_bar=not args.no_progress,
        **extra,
    )


def run_export(args: argparse.Namespace) -> int:
    """Handler of ``codec export``; returns the exit status."""
    return exitcodes.run(lambda: _export(args))


def _export(args: argparse.Namespace) -> int:
    try:
        import torch

        from codec.train.export import export_checkpoint
    except ImportError:
        raise UsageError(_MISSING_EXTRA) from None
    dtype = torch.float16 if args.half else None
    result = export_checkpoint(
        args.checkpoint, args.output, use_ema=not args.no_ema, dtype=dtype, replace=args.force
    )
    weights = "EMA" if result.used_ema else "raw"
    print(f"wrote {result.directory} (step {result.step}, {weights} weights)")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m codec.train.cli {train,distill,export} ...``."""
    parser = argparse.ArgumentParser(prog="codec")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub)
    add_distill_parser(sub)
    add_export_parser(sub)
    args = parser.parse_args(argv)
    return args.handler(args)  # each handler runs under the shared exit-status table


if __name__ == "__main__":
    sys.exit(main())
