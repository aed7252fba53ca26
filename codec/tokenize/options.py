"""What ``codec tokenize`` was asked to do, checked before anything heavy is imported.

Kept apart from :mod:`codec.tokenize.run` (which imports PyTorch) so that the command line can
check its options before it starts any process (:mod:`codec.tokenize.launch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from codec.errors import UsageError


@dataclass(frozen=True)
class TokenizeOptions:
    """What ``codec tokenize`` was asked to do (see ``codec tokenize --help``)."""

    inputs: list[str]
    output: Path
    model: str | None = None
    num_codebooks: int | None = None
    device: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    batch_seconds: float = 60.0
    shard_size: int = 1000
    force: bool = False
    quiet: bool = False


def check_options(opts: TokenizeOptions) -> None:
    """One-line ``UsageError`` for options out of range (before anything is loaded)."""
    checks = [
        (opts.devices >= 1, f"--devices must be at least 1, got {opts.devices}"),
        (opts.num_nodes >= 1, f"--num-nodes must be at least 1, got {opts.num_nodes}"),
        (opts.shard_size >= 1, f"--shard-size must be at least 1, got {opts.shard_size}"),
        (
            0 < opts.batch_seconds < float("inf"),
            f"--batch-seconds must be positive, got {opts.batch_seconds}",
        ),
        (opts.device in ("cpu", "cuda", "auto"), f"--device must be cpu, cuda or auto, got {opts.device!r}"),
        (opts.num_codebooks is None or opts.num_codebooks >= 1, "--num-codebooks must be at least 1"),
    ]
    for ok, text in checks:
        if not ok:
            raise UsageError(text)
    if opts.output.exists() and not opts.output.is_dir():
        raise UsageError(f"{opts.output}: is a file (the output is a folder)")
