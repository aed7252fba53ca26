"""``codec bench quality``: code every file with every codec setting and score it, with a cache.

The main process reads each file once, gives each codec the audio at its own rate (mono),
brings the decoded audio to the common scoring rate, and hands the pair to a process pool
for the metrics, so coding and scoring overlap.  Every finished (file, codec setting) pair is
written to ``CACHE/<codec key>/<file digest>.json`` (with the code counts beside it): a rerun,
or a run that adds one codec, reuses it and codes only what is new.  The codec key changes
with the weights, settings and library versions; the file digest with the file's bytes.  An
entry belongs to the contents, not to a name: a reused row takes the name of the file in this
run.  A metric skipped for a reason outside the pair (its package was missing, its worker was
killed) is scored again by the next run.  A worker that dies fails only its own pair (see
:class:`_Scorer`).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codec.atomic import atomic_write
from codec.bench.adapters import Adapter, Payload
from codec.bench.data import AudioError, Clip, Item, at_rate, digest, read_mono
from codec.bench.scoring import Scores, score, score_task

CACHE_VERSION = 1
WORKER_DIED = (
    "WorkerDied: the metric worker process died scoring this pair (killed, out of memory or a crash)"
)
# Reasons that say nothing about the pair (a package missing then, a worker killed): a rerun
# scores those metrics again instead of reusing the cached skip.
_RETRY = ("ImportError", "ModuleNotFoundError", "WorkerDied")


@dataclass
class Row:
    """One file coded by one codec setting.

    Attributes:
        file: the file's name in the run; codec: the codec's label; key: the setting's cache key.
        kbps: nominal bitrate; achieved_kbps: bits actually produced / seconds.
        seconds: duration; values: metric -> score; skipped: metric -> why it has no score.
        error: set when the file could not be coded at all (then no scores).
    """

    file: str
    codec: str
    key: str
    kbps: float
    achieved_kbps: float = float("nan")
    seconds: float = 0.0
    values: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    error: str = ""


@dataclass
class QualityRun:
    """Everything the report needs: rows, pooled code counts per setting, how it was run."""

    rows: list[Row]
    adapters: list[Adapter]
    usage: dict[str, np.ndarray]  # setting key -> code counts [K, codebook_size]
    metrics: list[str]
    score_rate: int
    files: list[Item]
    reused: int = 0
    computed: int = 0
    wall_seconds: float = 0.0


def _entry_path(cache: Path, adapter: Adapter, file_digest: str, score_rate: int) -> Path:
    return cache / f"{adapter.kind}-{adapter.key}" / f"{file_digest}-{score_rate}.json"


def _load_entry(path: Path, metrics: list[str]) -> tuple[Row, np.ndarray | None] | None:
    """A cached row, if it exists, is readable and covers every requested metric."""
    try:
        data = json.loads(path.read_text())
        if data.pop("version", None) != CACHE_VERSION:
            return None
        row = Row(**data)
    except (OSError, ValueError, TypeError):
        return None
    final = {m for m, why in row.skipped.items() if not why.startswith(_RETRY)}
    if not row.error and not set(metrics) <= set(row.values) | final:
        return None
    counts = path.with_suffix(".npy")
    return row, (np.load(counts) if counts.is_file() else None)


def _store_entry(path: Path, row: Row, counts: np.ndarray | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if counts is not None:  # counts first: an entry never points at missing counts
        atomic_write(path.with_suffix(".npy"), lambda tmp: np.save(tmp, counts, allow_pickle=False), ".npy")
    text = json.dumps({"version": CACHE_VERSION, **asdict(row)})
    atomic_write(path, lambda tmp: tmp.write_text(text))


def code_counts(codes: np.ndarray | None, codebook_size: int | None) -> np.ndarray | None:
    """Per-level usage counts ``[K, codebook_size]`` of codes ``[K, F]``."""
    if codes is None or codebook_size is None:
        return None
    return np.stack([np.bincount(level, minlength=codebook_size) for level in codes.astype(np.int64)])


def coded_at_score_rate(
    adapter: Adapter, wav: np.ndarray, rate: int, score_rate: int
) -> tuple[np.ndarray, Payload]:
    """Round-trip ``wav`` (at ``rate``) through ``adapter``: decoded audio at ``score_rate``, payload."""
    decoded, payload = adapter.round_trip(at_rate(wav, rate, adapter.sample_rate))
    return at_rate(decoded, adapter.sample_rate, score_rate), payload


@dataclass
class _Pending:
    path: Path
    row: Row
    counts: np.ndarray | None


def run_quality(
    items: list[Item],
    adapters: list[Adapter],
    metrics: list[str],
    cache: Path,
    score_rate: int = 16000,
    jobs: int = 2,
    progress: Callable[[int], None] | None = None,
) -> QualityRun:
    """Code and score every (file, setting) pair not already in ``cache``.

    Args:
        items: input files.  adapters: codec settings.  metrics: metric names to compute.
        cache: cache folder (created).  score_rate: common rate of the metrics (Hz).
        jobs: metric worker processes (0: score in this process).
        progress: called with the number of pairs just finished.
    Returns: :class:`QualityRun` with one row per pair, in input order.
    """
    start = time.perf_counter()
    run = QualityRun([], adapters, {}, metrics, score_rate, items)
    results: dict[tuple[int, int], Row] = {}
    scorer = _Scorer(jobs)

    def finish(done: list[tuple[tuple[tuple[int, int], _Pending], Scores]]) -> None:
        for (where, p), scores in done:
            p.row.values, p.row.skipped = scores.values, scores.skipped
            _store_entry(p.path, p.row, p.counts)
            _collect(run, results, where, p.row, p.counts)
            if progress:
                progress(1)

    try:
        for i, item in enumerate(items):
            todo = _cached_or_todo(run, results, i, item, cache, progress)
            if not todo:
                continue
            clip, file_digest = todo
            ref = at_rate(clip.wav, clip.sample_rate, score_rate)
            seconds = clip.wav.shape[-1] / clip.sample_rate
            for j, adapter in enumerate(adapters):
                path = _entry_path(cache, adapter, file_digest, score_rate)
                if (i, j) in results:
                    continue
                row = Row(item.name, adapter.label, adapter.key, adapter.kbps, seconds=seconds)
                try:
                    est, payload = coded_at_score_rate(adapter, clip.wav, clip.sample_rate, score_rate)
                except Exception as err:  # one codec failing on one file must not end the run
                    row.error = f"{type(err).__name__}: {str(err).strip()[:200]}"
                    _store_entry(path, row, None)
                    _collect(run, results, (i, j), row, None)
                    continue
                row.achieved_kbps = payload.bits / seconds / 1000
                p = _Pending(path, row, code_counts(payload.codes, adapter.codebook_size))
                run.computed += 1
                finish(scorer.submit((ref, est, score_rate, metrics), ((i, j), p)))
        finish(scorer.drain())
    finally:
        scorer.close()
    run.rows = [results[k] for k in sorted(results)]
    run.wall_seconds = time.perf_counter() - start
    return run


class _Scorer:
    """Scores pairs in ``jobs`` worker processes (0: in this process), at most ``4 * jobs``
    waiting (that bounds the audio held in memory).

    A worker that dies (killed, out of memory, a crash inside a metric library) breaks its
    pool and fails every pair waiting there.  Those pairs are scored again one at a time, each
    in a fresh process: the pair whose scoring kills its worker again gets the reason
    :data:`WORKER_DIED` for every metric, every other pair its scores, and the rest of the run
    gets a new pool.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.ctx = multiprocessing.get_context("spawn")  # no fork of a process that runs torch threads
        self.pool = ProcessPoolExecutor(jobs, mp_context=self.ctx) if jobs > 0 else None
        self.pending: dict[Future, tuple[tuple, Any]] = {}

    def submit(self, task: tuple, payload: Any) -> list[tuple[Any, Scores]]:
        """Score ``task`` (the arguments of :func:`score`); returns the pairs finished meanwhile."""
        if self.pool is None:
            return [(payload, score(*task))]
        try:
            fut = self.pool.submit(score_task, task)
        except BrokenProcessPool:  # broken by a dead worker since the last call: a new pool
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = ProcessPoolExecutor(self.jobs, mp_context=self.ctx)
            fut = self.pool.submit(score_task, task)
        self.pending[fut] = (task, payload)
        done: list[tuple[Any, Scores]] = []
        while len(self.pending) > 4 * self.jobs:
            done += self._finish(wait(self.pending, return_when=FIRST_COMPLETED).done)
        return done

    def drain(self) -> list[tuple[Any, Scores]]:
        """Wait for every pair still waiting; returns them."""
        done: list[tuple[Any, Scores]] = []
        while self.pending:
            done += self._finish(wait(self.pending, return_when=FIRST_COMPLETED).done)
        return done

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def _finish(self, futures: set[Future]) -> list[tuple[Any, Scores]]:
        done = []
        for fut in futures:
            task, payload = self.pending.pop(fut)
            try:
                scores = fut.result()
            except BrokenProcessPool:
                scores = self._alone(task)
            done.append((payload, scores))
        return done

    def _alone(self, task: tuple) -> Scores:
        with ProcessPoolExecutor(1, mp_context=self.ctx) as pool:
            try:
                return pool.submit(score_task, task).result()
            except BrokenProcessPool:
                return Scores(skipped={m: WORKER_DIED for m in task[3]})


def _cached_or_todo(
    run: QualityRun, results: dict, i: int, item: Item, cache: Path, progress: Callable[[int], None] | None
) -> tuple[Clip, str] | None:
    """Fill ``results`` with the cached rows of file ``i``; return (clip, digest) if any are left."""
    try:
        file_digest = digest(item.path)
    except OSError as err:
        return _fail_file(run, results, i, item, f"cannot read ({err.strerror or err})", progress)
    missing = False
    for j, adapter in enumerate(run.adapters):
        entry = _load_entry(_entry_path(cache, adapter, file_digest, run.score_rate), run.metrics)
        if entry is None:
            missing = True
            continue
        run.reused += 1
        entry[0].file = item.name  # the entry is the content's: it may have been scored under another name
        _collect(run, results, (i, j), *entry)
        if progress:
            progress(1)
    if not missing:
        return None
    try:
        return read_mono(item.path), file_digest
    except AudioError as err:
        return _fail_file(run, results, i, item, str(err), progress)


def _fail_file(
    run: QualityRun, results: dict, i: int, item: Item, reason: str, progress: Callable[[int], None] | None
) -> None:
    for j, adapter in enumerate(run.adapters):
        if (i, j) not in results:
            row = Row(item.name, adapter.label, adapter.key, adapter.kbps, error=reason)
            _collect(run, results, (i, j), row, None)
            if progress:
                progress(1)
    return None


def _collect(
    run: QualityRun, results: dict, where: tuple[int, int], row: Row, counts: np.ndarray | None
) -> None:
    results[where] = row
    if counts is not None:
        key = row.key
        run.usage[key] = counts if key not in run.usage else run.usage[key] + counts
