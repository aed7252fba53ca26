"""``codec encode/decode`` options: several inputs at once, ``--device``, ``--skip-existing`` that
verifies what it keeps, leftovers of dead writers; and a command line that starts without PyTorch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

from codec import Codec
from codec.atomic import Output
from codec.checkpoint import save_model
from codec.pipeline import encode_file
from codec.tokenfile import read_codes
from tests.conftest import speech_like
from tests.faults import kit as K


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, debug_codec: Codec) -> Path:
    return save_model(debug_codec.model, tmp_path_factory.mktemp("model") / "debug")


def _audio(path: Path, samples: int = 4000, rate: int = 16000, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, speech_like(samples, rate, seed=seed).T.numpy(), rate)
    return path


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_several_inputs_go_into_one_folder(
    tmp_path, model_dir, debug_codec, capsysbinary, monkeypatch
) -> None:
    a = _audio(tmp_path / "a.wav")
    b = _audio(tmp_path / "x" / "b.flac", 3000, 22050, seed=1)
    _audio(tmp_path / "corpus" / "c.wav", seed=2)
    _audio(tmp_path / "corpus" / "deep" / "d.ogg", seed=3)
    out = tmp_path / "tok"
    argv = ["encode", a, b, tmp_path / "corpus", "-o", out, "--model", model_dir, "-q"]
    assert K.run_cli(argv, capsysbinary, monkeypatch) == (0, "", "")
    assert _files(out) == ["a.cdc", "b.cdc", "corpus/c.cdc", "corpus/deep/d.cdc"]
    for got, source in [("a.cdc", a), ("b.cdc", b), ("corpus/deep/d.cdc", tmp_path / "corpus/deep/d.ogg")]:
        assert torch.equal(read_codes(out / got).codes, encode_file(debug_codec, source).codes), got
    argv = ["decode", out / "b.cdc", out / "corpus", "-o", tmp_path / "wav", "--model", model_dir]
    assert K.run_cli([*argv, "--format", "flac"], capsysbinary, monkeypatch)[0] == 0
    assert _files(tmp_path / "wav") == ["b.flac", "corpus/c.flac", "corpus/deep/d.flac"]
    assert sf.info(tmp_path / "wav" / "b.flac").frames == 3000


def _pair(tmp, kit):
    _audio(tmp / "a.wav")
    _audio(tmp / "s" / "a.flac")
    return ["encode", tmp / "a.wav", tmp / "s" / "a.flac", "-o", tmp / "out"], None


def _same_folder_name(tmp, kit):
    _audio(tmp / "p" / "d" / "x.wav")
    _audio(tmp / "q" / "d" / "x.wav")
    return ["encode", tmp / "p" / "d", tmp / "q" / "d", "-o", tmp / "out"], None


def _twice(tmp, kit):
    _audio(tmp / "d" / "x.wav")
    return ["encode", tmp / "d", f"{tmp}/d/", "-o", tmp / "out"], None


def _inside(tmp, kit):
    _audio(tmp / "d" / "x.wav")
    return ["encode", tmp / "d", tmp / "d" / "x.wav", "-o", tmp / "out"], None


def _file_name_as_folder(tmp, kit):
    return ["encode", kit.wav, kit.wav, "-o", tmp / "both.cdc"], None


def _existing_file_as_folder(tmp, kit):
    (tmp / "f").write_bytes(b"keep")
    return ["encode", kit.wav, _audio(tmp / "b.wav"), "-o", tmp / "f"], None


def _decode_into_the_input(tmp, kit):
    (tmp / "w.wav").write_bytes(kit.cdc.read_bytes())  # tokens under an audio name
    (tmp / "v.cdc").write_bytes(kit.cdc.read_bytes())
    return ["decode", tmp / "w.wav", tmp / "v.cdc", "-o", tmp], None


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (_pair, "would both be written to"),
        (_same_folder_name, "would both be written to"),
        (_twice, "given twice"),
        (_inside, "is inside"),
        (_file_name_as_folder, "need an output folder, and this names a file"),
        (_existing_file_as_folder, "not a folder (several inputs need an output folder)"),
        (_decode_into_the_input, "output would replace the input"),
        (lambda t, k: (["encode", k.wav, "-", "-o", t / "o"], b""), "cannot be combined"),
        (lambda t, k: (["encode", k.wav, t / "nope.wav", "-o", t / "o"], None), "nope.wav: no such file"),
        (lambda t, k: (["decode", k.cdc, k.cdcs, "-o", "-"], None), "cannot be written to stdout"),
        (lambda t, k: (["encode", k.wav, "-o", t / "x.cdc", "--device", "gpu"], None), "--device"),
    ],
)
def test_ambiguous_or_colliding_inputs_are_refused_up_front(
    tmp_path, kit, make, fragment, capfdbinary, monkeypatch
) -> None:
    K.check_bad_case(
        tmp_path, kit, lambda t, k: _with_model(make(t, k), k), 2, fragment, capfdbinary, monkeypatch
    )


def _with_model(case, kit):
    argv, stdin = case
    return [*argv, "--model", kit.model], stdin


@pytest.fixture(scope="module")
def kit(tmp_path_factory, debug_codec, noncausal_codec) -> K.Kit:
    return K.make_kit(tmp_path_factory.mktemp("kit"), debug_codec, noncausal_codec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
@pytest.mark.parametrize("command", ["encode", "decode"])
def test_device_cuda_without_a_gpu_is_a_usage_error(tmp_path, kit, command, capfdbinary, monkeypatch) -> None:
    source = kit.wav if command == "encode" else kit.cdc
    make = lambda t, k: ([command, source, "-o", t / "o.cdc", "--device", "cuda", "--model", k.model], None)  # noqa: E731
    K.check_bad_case(
        tmp_path, kit, make, 2, "--device cuda: no CUDA GPU is available", capfdbinary, monkeypatch
    )


def test_device_auto_and_cpu_give_the_same_codes(tmp_path, kit, capsysbinary, monkeypatch) -> None:
    for device in ("auto", "cpu"):
        argv = ["encode", kit.wav, "-o", tmp_path / f"{device}.cdc", "--model", kit.model, "--device", device]
        assert K.run_cli(argv, capsysbinary, monkeypatch)[0] == 0
    assert torch.equal(read_codes(tmp_path / "auto.cdc").codes, read_codes(tmp_path / "cpu.cdc").codes)
    argv = [
        "decode",
        tmp_path / "auto.cdc",
        "-o",
        tmp_path / "a.wav",
        "--model",
        kit.model,
        "--device",
        "auto",
    ]
    assert K.run_cli(argv, capsysbinary, monkeypatch)[0] == 0 and sf.info(tmp_path / "a.wav").frames == 32000


def test_skip_existing_keeps_only_outputs_made_whole_from_their_input(
    tmp_path, model_dir, capsysbinary, monkeypatch
) -> None:
    names = ["a", "b", "c", "d", "e"]
    src = [_audio(tmp_path / "in" / f"{n}.wav", 4000 + 160 * i, seed=i) for i, n in enumerate(names)]
    out = tmp_path / "out"
    argv = ["encode", *src, "-o", out, "--model", model_dir, "-q"]
    assert K.run_cli(argv, capsysbinary, monkeypatch)[0] == 0
    K.cut(out / "b.cdc", 0.9)  # cut short
    (out / "c.cdc").write_bytes((out / "a.cdc").read_bytes())  # whole, but another input's codes
    two = ["encode", src[3], "-o", out / "d.cdc", "--model", model_dir, "--num-codebooks", "2", "--force"]
    assert K.run_cli(two, capsysbinary, monkeypatch)[0] == 0  # whole, but fewer codebooks than asked
    (out / ".e.cdc.k3j4abcd.codec-tmp").write_bytes(b"half")  # left by a killed writer
    kept = {n: (out / f"{n}.cdc").stat().st_mtime_ns for n in ("a", "e")}
    assert K.run_cli([*argv, "--skip-existing"], capsysbinary, monkeypatch) == (0, "", "")
    assert kept == {n: (out / f"{n}.cdc").stat().st_mtime_ns for n in ("a", "e")}
    assert K.listing(out) == [f"{n}.cdc" for n in names]
    for n, wav in zip(names, src, strict=True):
        codes = read_codes(out / f"{n}.cdc")
        assert codes.num_codebooks == 4 and int(codes.original_lengths[0]) == sf.info(wav).frames, n
    # One file: a whole output is kept, a damaged one redone.
    one = ["encode", src[0], "-o", out / "a.cdc", "--model", model_dir, "--skip-existing"]
    assert K.run_cli(one, capsysbinary, monkeypatch)[0] == 0
    assert (out / "a.cdc").stat().st_mtime_ns == kept["a"]
    K.cut(out / "a.cdc", 0.5)
    assert K.run_cli(one, capsysbinary, monkeypatch)[0] == 0 and read_codes(out / "a.cdc").num_frames > 0


def test_skip_existing_redoes_audio_of_the_wrong_length(tmp_path, kit, capsysbinary, monkeypatch) -> None:
    out = tmp_path / "wav"
    argv = ["decode", kit.cdc, kit.cdcs, "-o", out, "--model", kit.model, "-q"]
    assert K.run_cli(argv, capsysbinary, monkeypatch)[0] == 0
    kept = (out / "ok.wav").stat().st_mtime_ns
    sf.write(out / "s.wav", speech_like(31999).T.numpy(), 16000)  # readable, one sample short
    assert K.run_cli([*argv, "--skip-existing"], capsysbinary, monkeypatch) == (0, "", "")
    assert (out / "ok.wav").stat().st_mtime_ns == kept
    assert sf.info(out / "s.wav").frames == 32000
    sf.write(out / "s.wav", speech_like(32000).T.numpy(), 8000)  # the right length at another rate
    assert K.run_cli([*argv, "--skip-existing"], capsysbinary, monkeypatch)[0] == 0
    assert sf.info(out / "s.wav").samplerate == 16000
    argv = ["decode", kit.cdc, "-o", out / "ok.wav", "--model", kit.model, "--skip-existing"]
    assert K.run_cli([*argv, "--sample-rate", "8000"], capsysbinary, monkeypatch)[0] == 0  # another rate
    assert (sf.info(out / "ok.wav").samplerate, sf.info(out / "ok.wav").frames) == (8000, 16000)


def test_leftovers_of_dead_writers_go_even_when_the_run_refuses(
    tmp_path, kit, capsysbinary, monkeypatch
) -> None:
    out = tmp_path / "wav"
    argv = ["decode", kit.cdc, kit.cdcs, "-o", out, "--model", kit.model, "-q"]
    assert K.run_cli(argv, capsysbinary, monkeypatch)[0] == 0
    (out / ".ok.wav.ab12cd34.codec-tmp.wav").write_bytes(b"half")  # SIGKILLed writers' files
    (out / ".s.wav.codec-lock").write_bytes(b"")
    (out / ".other.wav.ab12cd34.codec-tmp.wav").write_bytes(b"not ours")  # no job writes other.wav
    code, _, err = K.run_cli(argv, capsysbinary, monkeypatch)
    assert code == 2 and "already exists" in err
    assert K.listing(out) == [".other.wav.ab12cd34.codec-tmp.wav", "ok.wav", "s.wav"]
    with Output(out / "s.wav"):  # a live writer: its files are left alone
        alive = K.listing(out)
        assert K.run_cli([*argv, "--skip-existing"], capsysbinary, monkeypatch)[0] == 0
        assert K.listing(out) == alive


HEAVY = ("torch", "numpy", "soundfile", "torchaudio", "lightning", "matplotlib", "scipy", "transformers")


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["encode", "--help"],
        ["encode", "--nope", "x"],
        ["decode", "x", "-o", "y", "--device", "tpu"],
    ],
)
def test_help_and_usage_errors_load_no_heavy_module(argv) -> None:
    code = (
        "import sys\nfrom codec.cli import main\n"
        f"status = main({argv!r})\n"
        f"print(status, [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stderr.strip().splitlines()[-1] == f"{0 if '--help' in argv else 2} []", done.stderr


def test_the_package_exports_load_on_first_use() -> None:
    code = (
        "import sys, codec\nassert 'torch' not in sys.modules\n"
        "from codec import Codec, Codes, load_audio\nimport codec.api, codec.tokens\n"
        "assert Codec is codec.api.Codec and Codes is codec.tokens.Codes and 'Codec' in dir(codec)\n"
        "try:\n    codec.nope\nexcept AttributeError as err:\n    print(err)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "no attribute 'nope'" in done.stdout, done.stderr


def test_heavy_imports_happen_before_the_signal_handlers(kit) -> None:
    """SIGTERM during an import under the handlers would leave half-initialised modules (an
    internal error instead of 'interrupted'); before them it just ends the process."""
    code = (
        "import sys, contextlib\nfrom codec import exitcodes\nfrom codec.cli import main\n"
        "original = exitcodes.handle_signals\n"
        "@contextlib.contextmanager\ndef spy():\n"
        "    print('torch' in sys.modules, 'codec.commands' in sys.modules, file=sys.stderr)\n"
        "    with original():\n        yield\n"
        "exitcodes.handle_signals = spy\n"
        f"main(['info', {str(kit.wav)!r}])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stderr.strip() == "True True", done.stderr
