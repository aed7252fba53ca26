"""Folder mode: every matching file under an input folder, coded into a mirrored output tree;
and several inputs at once (files and folders) into one output folder.

Where outputs go with several inputs (``codec encode a.flac b.flac DIR -o OUT``): a file
``a.flac`` -> ``OUT/a.cdc``; a folder ``DIR`` -> ``OUT/DIR/...``, its tree mirrored (as
``cp -r`` would place it).  Everything is planned before any work: two inputs that would
write the same output, an input given twice or inside a folder also given, or an output
name that looks like a file are refused with one line.

Each file is its own job with its own atomic output; a file that fails (bad input, a model
mismatch, a full disk, anything but an interrupt) is reported and the run goes on.  What
killed writers left beside the outputs (temporary files, lock files) is removed when the
run starts, whether the outputs are then rewritten, kept or refused.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from codec.atomic import LOCK_SUFFIX, TEMP_MARK, clear_stale
from codec.errors import UsageError
from codec.formats import audio_files


class ExistingOutputsError(UsageError):
    """Outputs exist and the run was asked neither to replace nor to keep them."""


@dataclass(frozen=True)
class FolderJob:
    """One input file and its output file."""

    source: Path
    target: Path


@dataclass
class FolderReport:
    """What a folder run did: outputs written, outputs kept (``skip_existing``), failures."""

    total: int
    written: int = 0
    skipped: int = 0
    failed: list[tuple[Path, BaseException]] = field(default_factory=list)


def folder_jobs(src: Path, dst: Path, suffixes: set[str], out_suffix: str) -> list[FolderJob]:
    """The jobs for every file under ``src`` whose suffix is in ``suffixes``.

    Symbolic links to folders are followed (:func:`codec.formats.audio_files`), and broken
    links with such a suffix are kept (their job fails and is reported), so nothing is skipped
    in silence.
    """
    if dst.exists() and not dst.is_dir():
        raise UsageError(f"{dst}: not a folder (a folder input needs an output folder)")
    inputs = [
        p for p in audio_files(src, frozenset(suffixes)) if p.is_file() or (p.is_symlink() and not p.exists())
    ]
    if not inputs:
        raise UsageError(f"{src}: no input files found (looked for {', '.join(sorted(suffixes))})")
    jobs = [FolderJob(p, dst / p.relative_to(src).with_suffix(out_suffix)) for p in inputs]
    seen: dict[Path, Path] = {}
    for job in jobs:
        if job.target in seen:
            raise UsageError(f"{job.source}: same output {job.target} as {seen[job.target]} (rename one)")
        seen[job.target] = job.source
    return jobs


def input_jobs(inputs: list[Path], dst: Path, suffixes: set[str], out_suffix: str) -> list[FolderJob]:
    """The jobs for several inputs (files and folders) written into the output folder ``dst``.

    A file gives ``dst/<stem><out_suffix>`` whatever its suffix (it was named on purpose); a
    folder gives the jobs of :func:`folder_jobs` under ``dst/<folder name>``.
    Raises :class:`UsageError` (before any work) for a missing input, overlapping inputs,
    an output that is not a folder, or two inputs with the same output.
    """
    if dst.exists() and not dst.is_dir():
        raise UsageError(f"{dst}: not a folder (several inputs need an output folder)")
    if not dst.exists() and dst.suffix.lower() in {*suffixes, out_suffix}:
        raise UsageError(f"{dst}: several inputs need an output folder, and this names a file")
    pairs = [(p, p.resolve()) for p in inputs]
    for i, (path, full) in enumerate(pairs):
        if not (path.exists() or path.is_symlink()):
            raise UsageError(f"{path}: no such file or folder")
        for other, other_full in pairs[:i]:
            if full == other_full:
                raise UsageError(f"{path}: given twice (as {other} and {path})")
            if other_full in full.parents or full in other_full.parents:
                inner, outer = (path, other) if other_full in full.parents else (other, path)
                raise UsageError(f"{inner}: is inside {outer}, also given (give one or the other)")
    jobs: list[FolderJob] = []
    for path, full in pairs:
        if path.is_dir():
            if not full.name:
                raise UsageError(f"{path}: cannot name an output subfolder after it (give its subfolders)")
            jobs += folder_jobs(path, dst / full.name, suffixes, out_suffix)
        else:
            jobs.append(FolderJob(path, dst / (path.stem + out_suffix)))
    seen: dict[Path, Path] = {}
    for job in jobs:
        if job.target in seen:
            raise UsageError(
                f"{seen[job.target]} and {job.source} would both be written to {job.target} (rename one)"
            )
        if job.source.resolve() == job.target.resolve():
            raise UsageError(f"{job.target}: output would replace the input")
        seen[job.target] = job.source
    return jobs


# A temporary output (".NAME.<random>.codec-tmp<suffix>") or lock file (".NAME.codec-lock").
_LEFTOVER = re.compile(rf"^\.(.+?)(?:\.[a-z0-9_]+{re.escape(TEMP_MARK)}.*|{re.escape(LOCK_SUFFIX)})$")


def clear_leftovers(jobs: list[FolderJob]) -> int:
    """Remove what dead writers of these jobs' outputs left (one folder listing per folder).

    Outputs a live ``codec`` process is writing are left alone (see
    :func:`codec.atomic.clear_stale`).  Returns the number of outputs that had leftovers.
    """
    by_folder: dict[Path, set[str]] = {}
    for job in jobs:
        by_folder.setdefault(job.target.parent, set()).add(job.target.name)
    cleaned = 0
    for folder, names in by_folder.items():
        try:
            entries = [e.name for e in os.scandir(folder) if e.name.startswith(".")]
        except OSError:
            continue  # not there yet: nothing was left in it
        owners = {m.group(1) for m in map(_LEFTOVER.match, entries) if m}
        for name in sorted(owners & names):
            with contextlib.suppress(OSError):  # cannot clean here: the job's own write will say why
                clear_stale(folder / name)
                cleaned += 1
    return cleaned


def run_folder(
    jobs: list[FolderJob],
    work: Callable[[FolderJob, bool], None],
    force: bool,
    skip_existing: bool,
    complete: Callable[[FolderJob], bool],
    report: Callable[[BaseException], None],
    progress: Callable[[Iterable[FolderJob]], Iterable[FolderJob]] = iter,
) -> FolderReport:
    """Run ``work(job, replace)`` for each job; failures are passed to ``report`` and counted.

    Args:
        jobs: from :func:`folder_jobs` or :func:`input_jobs`.
        work: codes one job; ``replace`` says whether its output may replace a file.
        force: replace existing outputs.
        skip_existing: keep existing outputs that ``complete`` accepts (others are redone).
        complete: whether a job's existing output is whole, valid and made from its input.
        report: prints one failure.
        progress: wraps the job list (a progress bar).
    Existing outputs without ``force`` or ``skip_existing`` are refused before any work
    (:class:`ExistingOutputsError`).
    """
    clear_leftovers(jobs)
    existing = [job.target for job in jobs if job.target.exists() or job.target.is_symlink()]
    if existing and not (force or skip_existing):
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise ExistingOutputsError(f"{existing[0]}: already exists{more}")
    result = FolderReport(len(jobs))
    for job in progress(jobs):
        exists = job.target.exists() or job.target.is_symlink()
        if exists and skip_existing and not force and complete(job):
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
