"""Whose fault an error is: one base class for input errors, one mapping to exit statuses, and
the same error from ``Codec`` and ``Stream`` for the same bad argument."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from collections.abc import Callable

import pytest
import torch

import codec
from codec import Codec
from codec.errors import InputError
from codec.exitcodes import EXIT_BAD_INPUT, exit_status, message
from codec.streaming import Stream
from tests.conftest import speech_like


def _codec_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(codec.__path__, "codec.")]
    return [n for n in names if not n.startswith("codec.kernels") and not n.endswith("__main__")]


def test_every_value_error_of_the_package_is_an_input_error() -> None:
    # A ValueError subclass is how this library says "bad input"; the exit-status table maps
    # the one base class, so a class outside it would come out as an internal error.
    outside = []
    for name in _codec_modules():
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, ValueError) and not issubclass(cls, InputError):
                outside.append(f"{name}.{cls_name}")
    assert outside == []


def _errors_of(calls: list[Callable[[], object]]) -> list[BaseException]:
    caught = []
    for call in calls:
        with pytest.raises(Exception) as info:  # the type is what is checked
            call()
        caught.append(info.value)
    return caught


def test_bad_arguments_to_the_api_are_input_errors_with_exit_status_2(debug_codec: Codec) -> None:
    wav = speech_like(3200)[None]
    codes = debug_codec.encode(wav, 16000)
    other = dataclasses.replace(codes, fingerprint="0" * 64)
    calls = [
        lambda: debug_codec.decode(torch.full((1, 2, 3), 10_000)),
        lambda: debug_codec.decode(other),
        lambda: debug_codec.decode(torch.zeros(1, 2, 0, dtype=torch.long)),
        lambda: debug_codec.encode(wav, 16000, num_codebooks=0),
        lambda: debug_codec.bitrate(99),
        lambda: debug_codec.stream(batch_size=0),
        lambda: debug_codec.stream().decode(torch.zeros(1, 99, 2, dtype=torch.long)),
    ]
    for err in _errors_of(calls):
        assert isinstance(err, InputError), repr(err)
        assert exit_status(err) == EXIT_BAD_INPUT
        assert message(err).startswith("error: ") and "internal" not in message(err)


def test_exit_status_of_an_input_error_does_not_depend_on_the_modules_loaded() -> None:
    class LateError(InputError):
        """An input error of a module the table has never heard of."""

    assert exit_status(LateError("x")) == EXIT_BAD_INPUT
    assert exit_status(ValueError("x")) == 1  # a plain ValueError is the library's own fault


def _pairs(codec_: Codec) -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    """(what, the Codec call, the Stream call) with the same bad argument."""
    model = codec_.model
    good = codec_.encode(speech_like(3200)[None], 16000)
    foreign = dataclasses.replace(good, fingerprint="f" * 64)
    wav_int = torch.zeros(1, 1, 640, dtype=torch.int16)
    wav_nan = torch.full((1, 1, 640), float("nan"))
    return [
        ("num_codebooks 0", lambda: codec_.encode(speech_like(640)[None], 16000, num_codebooks=0),
         lambda: Stream(model, 1, 1, 0)),
        ("num_codebooks 2.0", lambda: codec_.stream(num_codebooks=2.0), lambda: Stream(model, 1, 1, 2.0)),
        ("batch_size 0", lambda: codec_.stream(batch_size=0), lambda: Stream(model, 0)),
        ("channels True", lambda: codec_.stream(channels=True), lambda: Stream(model, 1, True)),
        ("integer samples", lambda: codec_.encode(wav_int, 16000), lambda: codec_.stream().encode(wav_int)),
        ("NaN samples", lambda: codec_.encode(wav_nan, 16000), lambda: codec_.stream().encode(wav_nan)),
        ("2-D audio", lambda: codec_.encode(torch.zeros(1, 640), 16000),
         lambda: codec_.stream().encode(torch.zeros(1, 640))),
        ("float codes", lambda: codec_.decode(torch.zeros(1, 2, 3)),
         lambda: codec_.stream().decode(torch.zeros(1, 2, 3))),
        ("codes out of range", lambda: codec_.decode(torch.full((1, 2, 3), -1)),
         lambda: codec_.stream().decode(torch.full((1, 2, 3), -1))),
        ("too many codebooks", lambda: codec_.decode(torch.zeros(1, 99, 3, dtype=torch.long)),
         lambda: codec_.stream().decode(torch.zeros(1, 99, 3, dtype=torch.long))),
        ("another model's codes", lambda: codec_.decode(foreign), lambda: codec_.stream().decode(foreign)),
        ("not codes at all", lambda: codec_.decode([[[0]]]), lambda: codec_.stream().decode([[[0]]])),
    ]  # fmt: skip


def test_codec_and_stream_raise_the_same_error_for_the_same_bad_argument(debug_codec: Codec) -> None:
    for what, offline, streamed in _pairs(debug_codec):
        a, b = _errors_of([offline, streamed])
        assert type(a) is type(b), f"{what}: Codec raises {type(a).__name__}, Stream {type(b).__name__}"
        assert isinstance(a, InputError), what
