"""The ``codec`` command line: argument parsing, and one exit-status table for every command.

``codec encode``, ``decode`` and ``info`` are carried out by :mod:`codec.commands` (through
the I/O pipeline, :mod:`codec.pipeline`); ``train``/``export`` (:mod:`codec.train.cli`) and
``demo`` (:mod:`codec.demo`) are wired in when installed.  Every command only raises; what it
raises becomes one line on stderr and an exit status through :mod:`codec.exitcodes`: 2 bad
input or usage, 1 an internal or I/O error, 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP, 141 when the
reader of stdout goes away.  Outputs are written atomically, so a failed or interrupted run
leaves no partial file; existing outputs are never replaced without ``--force``.

Parsing needs no heavy module: ``codec --help`` and usage errors never load PyTorch (the
package's exports load on first use, command handlers when their command runs, and
``--device`` is checked by form here, against the machine in :mod:`codec.commands`).
Several inputs go into one output folder (see :mod:`codec.pipeline.folder` for where).

``-`` as input or output means a pipe: ``codec encode - -o -`` reads raw PCM on stdin and
writes a token stream on stdout, ``codec decode - -o -`` the reverse (see the README section
"Streaming from the shell" and :mod:`codec.tokenfile` for the stream format).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from codec import exitcodes

MODEL_HELP = (
    "bundled model name or model directory (default: the bundled default), or KIND:REF for another "
    "codec's published weights, REF a hub id or a local folder: dac:descript/dac_16khz, "
    "encodec:facebook/encodec_24khz, mimi:kyutai/mimi, snac:hubertsiuzdak/snac_24khz, "
    "speechtokenizer:fnlp/SpeechTokenizer, dac:./my_dac"
)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (like every other bad input), pointing at ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``codec`` argument parser with every available subcommand."""
    parser = _Parser(prog="codec", description="Neural audio codec: audio <-> tokens.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    common.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_coding_parsers(sub, common)
    info = sub.add_parser("info", parents=[common], help="describe a model, token file or audio file")
    info.add_argument(
        "path", nargs="?", help="model directory, bundled model name, KIND:REF, token file or audio file"
    )
    info.add_argument("--model", metavar="MODEL", help="describe this model instead: " + MODEL_HELP)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(run=_command("run_info"))
    _add_optional(sub, "codec.train.cli", [("train", "add_train_parser", "run_train"),
                                           ("distill", "add_distill_parser", "run_distill"),
                                           ("export", "add_export_parser", "run_export")])  # fmt: skip
    _add_optional(sub, "codec.demo", [("demo", "add_demo_parser", "run_demo")])
    _add_optional(sub, "codec.bench.cli", [("bench", "add_bench_parser", "run_bench")])
    _add_optional(sub, "codec.tokenize.cli", [("tokenize", "add_tokenize_parser", "run_tokenize")])
    return parser


def _add_coding_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    coding = argparse.ArgumentParser(add_help=False, parents=[common])
    coding.add_argument(
        "inputs", metavar="IN", nargs="+",
        help="files, folders (coded recursively) or - for stdin; several inputs need an output folder",
    )  # fmt: skip
    coding.add_argument("-o", "--output", metavar="OUT", required=True, help="file, folder or - for stdout")
    coding.add_argument(
        "--device", type=_device, default="cpu",
        help="cpu, cuda, cuda:N, or auto (cuda when a GPU is available, else cpu); default: cpu",
    )  # fmt: skip
    coding.add_argument("--model", metavar="MODEL", help=MODEL_HELP)
    coding.add_argument("--force", action="store_true", help="replace existing outputs")
    coding.add_argument(
        "--skip-existing", action="store_true",
        help="keep existing outputs that are complete and match their input; redo the others",
    )  # fmt: skip
    coding.add_argument("--pcm-format", choices=["s16le", "f32le"], default="s16le", help="raw PCM on pipes")
    enc = sub.add_parser("encode", parents=[coding], help="audio -> token file (.cdc) or token stream")
    enc.add_argument(
        "--num-codebooks", type=int, help="codebooks to keep (default: all; fewer = lower bitrate)"
    )
    enc.add_argument(
        "--sample-rate", type=positive_int, help="rate of raw PCM on stdin (default: model rate)"
    )
    enc.add_argument("--channels", type=positive_int, help="channels of raw PCM on stdin (default: 1)")
    enc.add_argument(
        "--block-seconds", type=positive_float, default=10.0, help="audio coded per step (bounds memory)"
    )
    enc.set_defaults(run=_command("run_encode"))
    dec = sub.add_parser("decode", parents=[coding], help="token file or stream -> audio (.wav/.flac/.ogg)")
    dec.add_argument("--sample-rate", type=positive_int, help="output rate (default: the original rate)")
    dec.add_argument(
        "--format", choices=["wav", "flac", "ogg"], default="wav", help="folder mode output format"
    )
    dec.set_defaults(run=_command("run_decode"))


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    """A handler of :mod:`codec.commands`, imported when the command runs (keeps --help fast)."""

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module("codec.commands"), name)(args)

    return run


def _device(text: str) -> str:
    # Checked by form only: asking PyTorch about GPUs here would load it for every --help.
    if not re.fullmatch(r"cpu|auto|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or auto, got {text!r}")
    return text


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _add_optional(sub: argparse._SubParsersAction, module: str, commands: list[tuple[str, str, str]]) -> None:
    """Wire subcommands another module defines; if it is missing, a stub explains why."""
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        if isinstance(err, ModuleNotFoundError) and err.name == module:
            return  # not part of this installation: no subcommand
        reason = f"{err}"
        for name, _, _ in commands:
            stub = sub.add_parser(name, help=f"(unavailable: {reason})", add_help=False)
            stub.add_argument("rest", nargs=argparse.REMAINDER)
            stub.set_defaults(run=_unavailable(name, reason))
        return
    for name, add, run in commands:
        getattr(mod, add)(sub)
        sub.choices[name].set_defaults(run=getattr(mod, run))


def _unavailable(name: str, reason: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise exitcodes.UsageError(f"'codec {name}' is not available in this installation ({reason})")

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see :mod:`codec.exitcodes`)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage and the problem
        return int(exc.code or 0)
    early = getattr(args, "before_imports", None)
    if early is not None:  # e.g. `codec tokenize --devices N` starts its other processes
        status = exitcodes.run(lambda: early(args), debug=getattr(args, "debug", False))
        if status:
            return status
    _preload()
    return exitcodes.run(lambda: args.run(args), debug=getattr(args, "debug", False))


def _preload() -> None:
    """Import PyTorch and the pipeline once a command is sure to run, before the signal
    handlers go in: SIGTERM in the middle of an import would otherwise unwind through it and
    leave half-initialised modules behind (here its default action ends the process, and
    nothing has been written yet).  An import error is left for the command to report."""
    with contextlib.suppress(Exception):
        importlib.import_module("codec.commands")


def entry() -> None:
    """The ``codec`` program (console script, ``python -m codec``): :func:`main`, then exit.

    The process ends right after, so every object still alive is frozen out of the cyclic
    garbage collector first: the interpreter's last collections then skip everything PyTorch
    created (0.3-0.4 s of the 0.6 s a process that imported PyTorch spends exiting, measured on
    a 2-core Xeon VM).  Finalizers and ``atexit`` handlers run as before.
    """
    status = main()
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    entry()
