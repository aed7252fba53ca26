"""Where a model's quality goes: magnitude versus phase, by swapping each with the reference's.

Usage (from the repository root)::

    python -m benchmarks.training.oracle --model speech_16k --write-results

For each dev file the model's output and the reference are analysed with one STFT (n_fft 512,
hop 128, Hann); a signal is then resynthesised from one's magnitude and the other's phase.
The table gives PESQ-wb and SI-SDR of:

- the model's output itself;
- the reference magnitude with the model's phase (what a perfect magnitude would be worth);
- the model's magnitude with the reference phase (what a perfect phase would be worth);
- the model's magnitude and the reference magnitude, each with a Griffin-Lim phase (64
  iterations from a random start): what any consistent, plausible phase makes of them.

These are upper bounds, not targets: they say which part of the signal a recipe change has to
fix to move PESQ, and by how much at most.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

from benchmarks.training.ablate import dev_subset
from codec import metrics as M
from codec.bench import harness
from codec.checkpoint import load_model
from codec.train.warmstart import resolve_model_dir

SECTION = "Where the quality goes"
N_FFT, HOP = 512, 128


def _stft(x: torch.Tensor) -> torch.Tensor:
    return torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)


def _istft(spec: torch.Tensor, length: int) -> torch.Tensor:
    return torch.istft(spec, N_FFT, HOP, window=torch.hann_window(N_FFT), length=length)


def griffin_lim(magnitude: torch.Tensor, length: int, iters: int = 64, seed: int = 0) -> torch.Tensor:
    """A waveform whose STFT magnitude approaches ``magnitude`` (random start, fixed seed)."""
    gen = torch.Generator().manual_seed(seed)
    phase = 2 * torch.pi * torch.rand(magnitude.shape, generator=gen)
    y = _istft(torch.polar(magnitude, phase), length)
    for _ in range(iters):
        y = _istft(torch.polar(magnitude, _stft(y).angle()), length)
    return y


def swaps(ref: torch.Tensor, est: torch.Tensor) -> dict[str, torch.Tensor]:
    """The signals of the table, each ``[T]`` like ``ref``."""
    n = ref.shape[0]
    r, e = _stft(ref), _stft(est)
    return {
        "model output": est,
        "reference magnitude + model phase": _istft(torch.polar(r.abs(), e.angle()), n),
        "model magnitude + reference phase": _istft(torch.polar(e.abs(), r.angle()), n),
        "model magnitude + Griffin-Lim phase": griffin_lim(e.abs(), n),
        "reference magnitude + Griffin-Lim phase": griffin_lim(r.abs(), n),
    }


@torch.no_grad()
def measure(model_dir: Path, clips: list[torch.Tensor], num_codebooks: int) -> dict[str, tuple[float, float]]:
    """Mean (PESQ-wb, SI-SDR) per signal of :func:`swaps`."""
    model = load_model(model_dir)
    sr, hop = model.cfg.sample_rate, model.hop_length
    scores: dict[str, list[tuple[float, float]]] = {}
    for ref in clips:
        frames = -(-ref.shape[0] // hop)
        wav = torch.nn.functional.pad(ref, (0, frames * hop - ref.shape[0]))[None]
        est = model.decode_offline(model.encode(wav, num_codebooks))[0, : ref.shape[0]]
        for name, signal in swaps(ref, est).items():
            scores.setdefault(name, []).append((M.pesq_wb(ref, signal, sr), M.si_sdr(ref, signal)))
    return {
        k: (statistics.fmean(p for p, _ in v), statistics.fmean(s for _, s in v)) for k, v in scores.items()
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="speech_16k", help="bundled model name or model directory")
    p.add_argument("--dev", type=Path, default=Path("../shared/data/dev"))
    p.add_argument("--files", type=int, default=16)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--num-codebooks", type=int, default=12)
    harness.add_common_args(p)
    args = p.parse_args(argv)
    model_dir = resolve_model_dir(args.model)
    sample_rate = load_model(model_dir).cfg.sample_rate
    clips = dev_subset(args.dev, args.files, args.seconds, sample_rate)
    results = measure(model_dir, clips, args.num_codebooks)
    rows = [[name, f"{pesq:.3f}", f"{sdr:.2f}"] for name, (pesq, sdr) in results.items()]
    table = harness.markdown_table(["signal", "PESQ-wb", "SI-SDR dB"], rows)
    print(table)
    if args.write_results:
        lines = [
            f"Model {args.model} at {args.num_codebooks} codebooks; the first {args.files} files of "
            f"{args.dev}, each cut to {args.seconds:g} s; STFT n_fft {N_FFT}, hop {HOP}.",
            "",
            table,
            "",
            *harness.machine_lines(),
            f"- Command: `{harness.command_line('-m benchmarks.training.oracle')}`",
        ]
        harness.write_section(SECTION, "\n".join(lines), Path(args.write_results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
