"""``codec tokenize``: argument parsing and the handler (registered by :mod:`codec.cli`).

Importing this module is cheap (it only checks that the ``data`` extra is installed), so
``codec --help`` stays fast and a missing extra is named in one line.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from codec.cli import MODEL_HELP, positive_float, positive_int

if TYPE_CHECKING:
    from codec.tokenize.options import TokenizeOptions

# The extra's packages; a missing one makes `codec tokenize` an explained stub (codec.cli).
for _name in ("pyarrow",):
    if importlib.util.find_spec(_name) is None:
        raise ImportError(f"'codec tokenize' needs the data extra: pip install 'codec[data]' (no {_name})")


def add_tokenize_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``codec tokenize``; the handler is :func:`run_tokenize`."""
    p = subparsers.add_parser(
        "tokenize",
        help="tokenize a corpus into Parquet shards (batched, resumable, multi-process)",
        description="Code every input into Parquet shards of int16 codes plus index.json and errors.csv. "
        "A killed run resumes where it stopped when run again with the same arguments.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio folders (recursive), files, or "
                   "CSV/JSONL manifests (a 'path' column, optional 'id', other columns carried)")  # fmt: skip
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT", help="output folder")
    p.add_argument("--model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--num-codebooks", type=positive_int, help="codebooks to keep (default: all)")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto", help="default: %(default)s")
    p.add_argument("--devices", type=positive_int, default=1, help="processes per node, one device each")
    p.add_argument("--num-nodes", type=positive_int, default=1, help="nodes (SLURM or MASTER_ADDR/NODE_RANK)")
    p.add_argument(
        "--batch-seconds",
        type=positive_float,
        default=60.0,
        help="padded audio per model call (default: 60)",
    )
    p.add_argument("--shard-size", type=positive_int, default=1000, help="items per shard (default: 1000)")
    p.add_argument("--force", action="store_true", help="remove an earlier run in OUT and start over")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    p.set_defaults(run=run_tokenize, before_imports=start_processes)
    return p


def start_processes(args: argparse.Namespace) -> None:
    """Before PyTorch is imported: start this node's other processes (:mod:`codec.tokenize.launch`)."""
    from codec.tokenize.launch import start_local_processes, watch_parent
    from codec.tokenize.options import check_options

    watch_parent()  # in a process the first one started: end when it is gone
    check_options(_options(args))  # a bad option is reported once, by this process, before any start
    args.local_group = start_local_processes(child_argv(args), args.devices, args.num_nodes)


def child_argv(args: argparse.Namespace) -> list[str]:
    """The ``codec`` arguments that parse back to ``args`` (the command the other processes run)."""
    argv = ["tokenize", *args.inputs, "-o", str(args.output), "--device", args.device]
    argv += ["--devices", str(args.devices), "--num-nodes", str(args.num_nodes)]
    argv += ["--batch-seconds", repr(args.batch_seconds), "--shard-size", str(args.shard_size)]
    argv += ["--model", args.model] if args.model is not None else []
    argv += ["--num-codebooks", str(args.num_codebooks)] if args.num_codebooks is not None else []
    flags = {"--force": args.force, "--quiet": args.quiet, "--debug": args.debug}
    return argv + [flag for flag, on in flags.items() if on]


def run_tokenize(args: argparse.Namespace) -> int:
    """Run the command; prints the summary on stdout (rank 0), and waits for the processes it started."""
    from codec import exitcodes
    from codec.model_options import load_codec
    from codec.tokenize.launch import LocalGroup, failure, orphaned, parent_gone, shell_status
    from codec.tokenize.run import RunFailed, tokenize

    group = getattr(args, "local_group", None) or LocalGroup()
    try:
        report = tokenize(_options(args), load=load_codec)
    except RunFailed as failed:  # one process reports the error (its own, or another's) for all
        if failed.report:
            exitcodes.report(failed.error)
        return group.wait(exitcodes.exit_status(failed.error))
    except BaseException as err:
        # A process of this node that died (killed, out of memory) shows here as the group's
        # error (gloo: "Connection closed by peer"): report the process, not the symptom.
        lost = group.failed(wait=2.0) if isinstance(err, RuntimeError) else None
        group.stop()  # they may wait for this process in a collective
        if isinstance(err, RuntimeError) and parent_gone(wait=2.0):  # the group broke with it
            print(f"codec: error: {orphaned()}", file=sys.stderr, flush=True)
            return 1
        if lost is None:
            raise
        print(f"codec: error: {failure(*lost)}", file=sys.stderr, flush=True)
        return shell_status(lost[1])
    if report.rank == 0:
        print(report.summary(), flush=True)
    return group.wait(0)


def _options(args: argparse.Namespace) -> TokenizeOptions:
    from codec.tokenize.options import TokenizeOptions

    return TokenizeOptions(
        inputs=list(args.inputs),
        output=args.output,
        model=args.model,
        num_codebooks=args.num_codebooks,
        device=args.device,
        devices=args.devices,
        num_nodes=args.num_nodes,
        batch_seconds=args.batch_seconds,
        shard_size=args.shard_size,
        force=args.force,
        quiet=args.quiet,
    )
