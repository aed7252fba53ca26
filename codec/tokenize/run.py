"""Corpus tokenization: audio inputs -> Parquet shards of codes, on one or many processes.

:func:`tokenize` runs one process's part of a run (every process of a distributed run calls
it, see :mod:`codec.tokenize.distributed`).  Rank 0 holds the output folder's lock throughout, so
a second run into the same folder is refused at once:

1. rank 0 lists the inputs and makes the plan, or finds the one a killed run left and checks
   it was made for the same inputs and options (:mod:`codec.tokenize.plan`); a complete run
   (its ``index.json`` stamped with the same plan) is recognised and not redone.  With several
   processes every one reads the headers of a slice of the items (on a corpus of millions of
   files this is minutes of work), and rank 0 makes the plan of them all;
2. every rank takes shards ``rank, rank + world, ...`` and codes those that are not yet
   committed (:mod:`codec.tokenize.encode`); each shard is written atomically;
3. after a barrier rank 0 checksums the shards and writes ``errors.csv`` and ``index.json``.

A kill at any moment loses at most the shards in progress: a rerun finds the committed
shards (their number, plan digest and item count checked) and codes the rest.  Nothing of a
killed run is ever read as data (temporary files are ignored and removed by the next writer).
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from codec.api import Codec
from codec.atomic import locked
from codec.backends.base import Backend
from codec.errors import InputError, UsageError
from codec.tokenize.distributed import Ranks, start
from codec.tokenize.encode import EncodeStats, encode_shard
from codec.tokenize.inputs import Listing, list_inputs
from codec.tokenize.options import TokenizeOptions, check_options
from codec.tokenize.plan import Plan, load_plan, make_plan, plan_key, read_headers, save_plan
from codec.tokenize.shards import (
    ERRORS_NAME,
    INDEX_NAME,
    check_empty,
    clear_leftovers,
    forget_outputs,
    read_json,
    remove_run,
    remove_stray_shards,
    reopen_if_damaged,
    shard_info,
    shard_name,
    write_index,
)

# Loads the model a run names (``--model``: a bundled name, a folder or ``KIND:REF``) on a device.
Loader = Callable[[str | None, Any], Backend]


@dataclass
class TokenizeReport:
    """What a run produced (totals of the whole output) and what this run did."""

    output: Path
    rank: int = 0
    items: int = 0
    hours: float = 0.0
    tokens: int = 0
    errors: int = 0
    shards: int = 0
    already_complete: bool = False
    run: EncodeStats = field(default_factory=EncodeStats)
    seconds: float = 0.0

    @property
    def hours_per_minute(self) -> float:
        """Hours of audio coded per minute of this run (all processes together)."""
        return self.run.audio_seconds / 3600 / (self.seconds / 60) if self.seconds > 0 else 0.0

    def summary(self) -> str:
        done = "already complete" if self.already_complete else f"{self.shards} shards"
        errors = f"{self.errors} error{'s' * (self.errors != 1)}"
        errors += f" (see {self.output / ERRORS_NAME})" if self.errors else ""
        text = (
            f"{self.output}: {self.items} items, {self.hours:.3f} h of audio, {self.tokens} tokens, "
            f"{errors}, {done}"
        )
        if self.run.items:
            text += (
                f"\nthis run: {self.run.items} items, {self.run.audio_seconds / 3600:.3f} h in "
                f"{self.seconds:.1f} s = {self.hours_per_minute:.2f} h of audio per minute "
                f"({self.run.audio_seconds / max(self.seconds, 1e-9):.1f}x real time), "
                f"padding {100 * self.run.padding:.1f}%"
            )
        return text


def tokenize(opts: TokenizeOptions, ranks: Ranks | None = None, load: Loader | None = None) -> TokenizeReport:
    """Run (this process's part of) a tokenize run; see the module docstring.

    Args:
        opts: what to tokenize, where, with which model.
        ranks: the processes of the run (default: started from ``opts``).
        load: how ``opts.model`` is loaded (default: :meth:`Codec.from_pretrained`; the
            command line passes its own, whose errors name the option).
    Returns the report (complete on rank 0; other ranks report only their own work).
    Raises ``UsageError`` for bad inputs or options, before any shard is written, and
    :class:`RunFailed` when the run ends for an error that one process reports for all.
    """
    check_options(opts)
    threads = torch.get_num_threads()  # start() sets one per CPU process; restored for callers
    own = ranks is None
    try:
        ranks = ranks or start(opts.device, opts.devices, opts.num_nodes)
        try:
            with _holding(opts.output, ranks):
                return _tokenize(opts, ranks, load or _from_pretrained)
        finally:
            if own:
                ranks.close()
    finally:
        torch.set_num_threads(threads)


def _tokenize(opts: TokenizeOptions, ranks: Ranks, load: Loader) -> TokenizeReport:
    began = time.perf_counter()
    codec = load_codec(opts.model, ranks.device, load)
    k = opts.num_codebooks or codec.total_codebooks
    status: Any = None
    listing: Listing | None = None
    if ranks.rank == 0:
        with _shared_errors(ranks):
            status, listing = survey(opts, codec, k, ranks.world_size)
    status = ranks.broadcast(status)
    if status[0] == "plan":  # every process reads a slice of the headers
        status = plan_together(opts, status[1], listing, ranks)
    if status[0] == "error":  # reported by rank 0 (when it was not rank 0's own, raised there)
        raise RunFailed(status[1], report=ranks.rank == 0)
    report = TokenizeReport(opts.output, rank=ranks.rank)
    plan = load_plan(opts.output)
    if status[0] == "done" or plan is None:
        return _fill(report, status[1], already=True) if status[0] == "done" else report
    report.run = _encode_mine(opts, codec, plan, k, ranks)
    totals = ranks.sum(report.run.as_list())
    report.run = EncodeStats.from_list(totals)
    ranks.barrier()
    report.seconds = time.perf_counter() - began
    if ranks.rank != 0:
        return report
    return _fill(report, finish(opts.output, plan, codec, k))


@contextlib.contextmanager
def _holding(out: Path, ranks: Ranks) -> Iterator[None]:
    """Rank 0 holds the output folder's lock (:func:`codec.atomic.locked`) for the whole run, so
    a second run into the same folder is refused before it reads or writes anything there (its
    other processes are told, see :func:`_shared_errors`)."""
    if ranks.rank != 0:
        yield
        return
    with contextlib.ExitStack() as held:
        with _shared_errors(ranks):
            held.enter_context(locked(out))
        yield


class RunFailed(Exception):
    """Ends every process of a run that failed: ``error`` is what failed (in whichever process),
    and ``report`` says whether this process is the one to report it (rank 0) or ends quietly."""

    def __init__(self, error: BaseException, report: bool) -> None:
        super().__init__(str(error))
        self.error, self.report = error, report


def _from_pretrained(model: str | None, device: Any) -> Backend:
    return Codec.from_pretrained(model, device=device)


def load_codec(model: str | None, device: Any, load: Loader = _from_pretrained) -> Backend:
    """The model named by ``model`` (bundled name, directory or ``KIND:REF``; default: the
    bundled default), loaded by ``load`` and moved to ``device``."""
    codec = load(model, "cpu").to(device)
    if codec.codebook_size > 1 << 15:
        raise UsageError(f"{codec.name}: {codec.codebook_size}-entry codebooks do not fit int16 codes")
    return codec


def survey(opts: TokenizeOptions, codec: Codec, k: int, world_size: int) -> tuple[tuple[str, Any], Listing]:
    """Rank 0: the state of the output and the listing of the inputs.

    The state is ``("done", index)`` for a complete run, ``("run", None)`` when the plan is
    saved (found, or made here by one process), or ``("plan", key)`` when several processes
    have a plan to make (:func:`plan_together`).
    """
    if opts.num_codebooks is not None and not 1 <= k <= codec.total_codebooks:
        raise UsageError(f"--num-codebooks must be in 1..{codec.total_codebooks} for {codec.name}, got {k}")
    listing = list_inputs(opts.inputs)
    key = plan_key(listing, codec.name, codec.fingerprint, k, opts.shard_size)
    out = opts.output
    if opts.force:
        remove_run(out)
    plan = load_plan(out)
    if plan is None:
        check_empty(out)
        # Without its plan, nothing an earlier run left can be checked: its shards would
        # still be read by tools that take the whole folder.
        if forget_outputs(out):
            print(f"codec: {out}: removed the shards of an earlier run whose plan is gone", file=sys.stderr)
        if world_size > 1:
            return ("plan", key), listing
        plan = make_plan(listing, key, _header_bar(opts))
        save_plan(plan, out)
    elif plan.key != key:
        raise UsageError(
            f"{out}: holds another run ({_difference(plan.key, key)}); use --force to start over"
        )
    index = read_json(out / INDEX_NAME)
    if index is not None and index.get("plan") == plan.digest:
        damaged = reopen_if_damaged(out, index)  # every shard's size and sha256
        for problem in damaged:
            print(f"codec: {problem}; coding it again", file=sys.stderr)
        if not damaged:
            return ("done", index), listing
    return ("run", None), listing


def plan_together(opts: TokenizeOptions, key: dict, listing: Listing | None, ranks: Ranks) -> tuple[Any, ...]:
    """Every process: read the headers of items ``rank, rank + world_size, ...``; rank 0 makes
    the plan of them all and saves it.  Returns ``("run", None)``, or ``("error", status,
    message)`` once rank 0 has reported the first failure (rank 0 raises its own).

    The other processes list the inputs themselves (the same folders and manifests: the output
    folder is shared, so the inputs are too); a listing that differs from rank 0's (files
    added or removed meanwhile) is an error, as a rerun would find another plan key.
    """
    reading: tuple[Any, ...]
    try:
        if listing is None:
            listing = list_inputs(opts.inputs)
        mine = range(ranks.rank, len(listing.items), ranks.world_size)
        bar = _header_bar(opts, show=ranks.rank == 0, ranks=ranks.world_size)
        reading = ("ok", listing.digest(), read_headers(listing.items, mine, bar))
    except Exception as err:
        reading = _error(err)
    readings = ranks.gather(reading)
    status: tuple[Any, ...] = ("run", None)
    if ranks.rank == 0:
        with _shared_errors(ranks):
            failed = [r for r in readings if r[0] == "error"]
            if failed:
                status = failed[0]  # a process's own error: this one reports it (RunFailed)
            elif any(r[1] != key["inputs"] for r in readings):
                raise UsageError("the inputs changed while the processes listed them; run again")
            else:
                assert listing is not None
                plan = make_plan(listing, key, min_shards=ranks.world_size, headers=[r[2] for r in readings])
                save_plan(plan, opts.output)
    return ranks.broadcast(status)


def _error(err: BaseException) -> tuple[str, BaseException]:
    """The status every process acts on for ``err``: ``("error", err)``, ``err`` as it can be sent
    to the other processes (pickled; when it cannot be, its message in an error of its kind)."""
    try:
        if str(pickle.loads(pickle.dumps(err))) == str(err):
            return ("error", err)
    except Exception:
        pass
    return ("error", (InputError if isinstance(err, InputError) else RuntimeError)(str(err)))


@contextlib.contextmanager
def _shared_errors(ranks: Ranks) -> Iterator[None]:
    """Rank 0: an error inside is sent to every process as :func:`_error` (they end quietly,
    see :class:`RunFailed`) and raised here, to be reported by this process."""
    try:
        yield
    except Exception as err:
        ranks.broadcast(_error(err))
        raise


def _header_bar(opts: TokenizeOptions, show: bool = True, ranks: int = 1) -> Callable[[Iterable], Iterable]:
    desc = "reading headers" if ranks == 1 else f"reading headers (rank 0 of {ranks})"
    return lambda items: _bar(opts, iterable=items, desc=desc, unit="file", show=show)


def _encode_mine(opts: TokenizeOptions, codec: Codec, plan: Plan, k: int, ranks: Ranks) -> EncodeStats:
    sizes = plan.shard_sizes()
    mine = [s for s in range(ranks.rank, plan.num_shards, ranks.world_size)]
    # Committed shards are read in full against their page checksums: a damaged one is redone.
    todo = [s for s in mine if shard_info(opts.output, plan, s, sizes[s], verify=True) is None]
    desc = "tokenizing" if ranks.world_size == 1 else f"tokenizing (rank 0 of {ranks.world_size})"
    bar = _bar(opts, total=sum(sizes[s] for s in todo), desc=desc, unit="file", show=ranks.rank == 0)
    stats = EncodeStats()
    start_time = time.perf_counter()

    def advance(batch: EncodeStats) -> None:
        stats.add(batch)
        minutes = (time.perf_counter() - start_time) / 60
        bar.set_postfix_str(f"{stats.audio_seconds / 3600 / max(minutes, 1e-9):.2f} h/min", refresh=False)
        bar.update(batch.items + batch.errors)

    with bar:
        for s in todo:
            encode_shard(codec, plan, s, k, opts.output, opts.batch_seconds, advance, ranks.rank)
    return stats


def finish(out: Path, plan: Plan, codec: Codec, k: int) -> dict[str, Any]:
    """Rank 0 after every rank is done: check every shard, write errors.csv and index.json."""
    sizes = plan.shard_sizes()
    infos = []
    for s in range(plan.num_shards):
        info = shard_info(out, plan, s, sizes[s])
        if info is None:
            raise OSError(f"{out / shard_name(s)}: missing after the run (a process failed; rerun to finish)")
        infos.append(info)
    remove_stray_shards(out, plan.num_shards)
    model = {
        "name": codec.name,
        "fingerprint": codec.fingerprint,
        "sample_rate": codec.sample_rate,
        "hop_length": codec.hop_length,
        "frame_rate": codec.frame_rate,
        "codebook_size": codec.codebook_size,
        "num_codebooks": k,
    }
    index = write_index(out, plan, model, infos)
    clear_leftovers(out)
    return index


def _fill(report: TokenizeReport, index: dict[str, Any], already: bool = False) -> TokenizeReport:
    report.items, report.hours, report.tokens = index["items"], index["hours"], index["tokens"]
    report.errors, report.shards, report.already_complete = index["errors"], len(index["shards"]), already
    return report


def _difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    names = {"inputs": "other inputs", "items": "other inputs", "fingerprint": "another model"}
    for key in ("fingerprint", "num_codebooks", "shard_size", "inputs", "items", "columns", "version"):
        if old.get(key) != new.get(key):
            return names.get(key, f"{key} {old.get(key)}, not {new.get(key)}")
    return "another plan"


def _bar(opts: TokenizeOptions, show: bool = True, **kwargs: Any) -> tqdm:
    # disable=None: drawn on a terminal only, so logs and pipes stay clean.
    return tqdm(
        disable=True if opts.quiet or not show else None, file=sys.stderr, dynamic_ncols=True, **kwargs
    )


Progress = Callable[[EncodeStats], None]
