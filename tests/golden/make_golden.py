"""Regenerate the golden values that pin the bundled models (tests/test_golden.py).

Run it only on purpose, when a bundled model has been retrained or replaced::

    python tests/golden/make_golden.py              # every model of MODELS
    python tests/golden/make_golden.py lyra_rvq_16k # one of them

For each model it encodes the model's example clip and writes, next to this script:

* ``NAME_example.cdc``: the clip's codes as a token file (it records the weights
  fingerprint), and
* ``NAME_example.json``: a summary of those codes decoded (energy of every frame and the
  first samples), with the fingerprint and how the values were made.

The test compares a fresh encode and decode against them, so a change of the weights or of
the numerics (which would silently change how old token files decode) fails until these
files are regenerated and the change committed with them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from codec import Codec, load_audio, pretrained
from codec.tokenfile import write_codes

HERE = Path(__file__).resolve().parent
MODEL = pretrained.DEFAULT_MODEL
# Every bundled model, the default first: their token files must keep decoding as they did.
MODELS = tuple(dict.fromkeys((MODEL, "lyra_rvq_16k", "speech_16k", "speech_16k_v2")))
HEAD_SAMPLES = 640  # two frames at 16 kHz / hop 320, stored exactly


def summarize(wav: torch.Tensor, hop_length: int) -> dict[str, list[float]]:
    """Per-frame RMS and the first samples of decoded audio ``[T]``."""
    frames = torch.nn.functional.pad(wav, (0, -wav.shape[-1] % hop_length)).reshape(-1, hop_length)
    return {
        "frame_rms": [round(v, 7) for v in frames.pow(2).mean(-1).sqrt().tolist()],
        "head": [round(v, 7) for v in wav[:HEAD_SAMPLES].tolist()],
    }


def codes_file(model: str) -> Path:
    return HERE / f"{model}_example.cdc"


def summary_file(model: str) -> Path:
    return HERE / f"{model}_example.json"


def example(model: str) -> tuple[torch.Tensor, int]:
    """A bundled model's example clip, mono ``[1, 1, T]``, and its rate."""
    audio = load_audio(pretrained.model_dir(model) / "example.flac")
    return audio.wav[:1][None], audio.sample_rate


def main() -> None:
    for model in sys.argv[1:] or MODELS:
        make(model)


def make(model: str) -> None:
    codec = Codec.from_pretrained(model)
    wav, sr = example(model)
    codes = codec.encode(wav, sr)
    write_codes(codes_file(model), codes)
    decoded = codec.decode(codes)[0, 0]
    summary = {
        "model": model,
        "fingerprint": codec.fingerprint,
        "num_frames": codes.num_frames,
        "num_samples": int(codes.lengths[0]),
        "made_by": "python tests/golden/make_golden.py",
        "torch": torch.__version__,
        **summarize(decoded, codec.hop_length),
    }
    summary_file(model).write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"wrote {codes_file(model).name} and {summary_file(model).name} for weights {codec.fingerprint[:12]}"
    )


if __name__ == "__main__":
    main()
