"""Folder mode: every matching file under an input folder, coded into a mirrored output tree.

Each file is its own job with its own atomic output; a file that fails (bad input, a model
mismatch, a full disk, anything but an interrupt) is reported and the run goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from codec.atomic import clear_stale
from codec.exitcodes import EXIT_BAD_INPUT, EXIT_OK, UsageError, exit_status


@dataclass(frozen=True)
class FolderJob:
    """One input file and its output file."""

    source: Path
    target: Path


@dataclass
class FolderReport:
    """What a folder run did: outputs written, outputs kept (``--skip-existing``), failures."""

    total: int
    written: int = 0
    skipped: int = 0
    failed: list[tuple[Path, BaseException]] = field(default_factory=list)

    @property
    def status(self) -> int:
        """0, or the worst failure's exit status (1 internal/I-O beats 2 bad input)."""
        codes = {exit_status(err) for _, err in self.failed}
        if not codes:
            return EXIT_OK
        return min(codes) if min(codes) == 1 else EXIT_BAD_INPUT


def folder_jobs(src: Path, dst: Path, suffixes: set[str], out_suffix: str) -> list[FolderJob]:
    """The jobs for every file under ``src`` whose suffix is in ``suffixes``.

    Broken symbolic links with such a suffix are kept (their job fails and is reported), so a
    dangling link is never skipped in silence.
    """
    if dst.exists() and not dst.is_dir():
        raise UsageError(f"{dst}: not a folder (a folder input needs an output folder)")
    inputs = sorted(
        p
        for p in src.rglob("*")
        if p.suffix.lower() in suffixes and (p.is_file() or (p.is_symlink() and not p.exists()))
    )
    if not inputs:
        raise UsageError(f"{src}: no input files found (looked for {', '.join(sorted(suffixes))})")
    jobs = [FolderJob(p, dst / p.relative_to(src).with_suffix(out_suffix)) for p in inputs]
    seen: dict[Path, Path] = {}
    for job in jobs:
        if job.target in seen:
            raise UsageError(f"{job.source}: same output {job.target} as {seen[job.target]} (rename one)")
        seen[job.target] = job.source
    return jobs


def run_folder(
    jobs: list[FolderJob],
    work: Callable[[FolderJob, bool], None],
    force: bool,
    skip_existing: bool,
    complete: Callable[[Path], bool],
    report: Callable[[BaseException], None],
    progress: Callable[[Iterable[FolderJob]], Iterable[FolderJob]] = iter,
) -> FolderReport:
    """Run ``work(job, replace)`` for each job; failures are passed to ``report`` and counted.

    Args:
        jobs: from :func:`folder_jobs`.
        work: codes one job; ``replace`` says whether its output may replace a file.
        force: replace existing outputs.
        skip_existing: keep existing outputs that ``complete`` accepts (others are redone).
        complete: whether an existing output is whole and valid.
        report: prints one failure.
        progress: wraps the job list (a progress bar).
    Existing outputs without ``force`` or ``skip_existing`` are refused before any work.
    """
    existing = [job.target for job in jobs if job.target.exists() or job.target.is_symlink()]
    if existing and not (force or skip_existing):
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise UsageError(f"{existing[0]}: already exists{more}; use --force to replace or --skip-existing")
    result = FolderReport(len(jobs))
    for job in progress(jobs):
        exists = job.target.exists()
        if exists and skip_existing and not force and complete(job.target):
            clear_stale(job.target)  # a killed --force run may have left a temporary file
            result.skipped += 1
            continue
        try:
            work(job, exists)  # an incomplete leftover is replaced, a new output is not
        except Exception as err:  # interrupts and signals stop the whole run
            result.failed.append((job.source, err))
            report(err)
        else:
            result.written += 1
    return result
