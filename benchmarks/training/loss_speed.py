"""Cost of the six-scale mel loss of a training step, eager against ``torch.compile``.

Usage (from the repository root, the long run paused for a figure worth recording)::

    python -m benchmarks.training.loss_speed --write-results

Times the forward and backward of the training mel loss (``MultiScaleMelLoss``: six STFTs of
the output and of the target, batch 16 x 1.28 s, one thread) as the training step runs it, and
the same spectra written for the compiler: the magnitude from the real and imaginary parts
(Inductor generates no code for complex operators) and the target's branch without gradient,
under ``torch.compile``.  Both take turns for ``--rounds`` rounds; the loss and the input
gradient of the two are compared first (the compiled one is only worth having if it computes
the same thing).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from codec.bench import harness
from codec.train.config import LossConfig
from codec.train.losses import _LOG_FLOOR, MultiScaleMelLoss

SECTION = "Training speed: the mel loss, eager and compiled"
SAMPLE_RATE, BATCH, SAMPLES = 16000, 16, 20480


def _log_mel(x: torch.Tensor, window: torch.Tensor, fb: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    spec = torch.stft(x, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True)
    # |S| from its parts; the clamp gives a zero bin the zero gradient that abs() gives it.
    mag = torch.view_as_real(spec).square().sum(-1).clamp_min(1e-20).sqrt()
    return torch.log10(torch.matmul(mag.transpose(-1, -2), fb).clamp(min=_LOG_FLOOR))


def real_valued(loss: MultiScaleMelLoss):
    """The loss ``loss`` computes, in operations the compiler can fuse."""
    scales = [(m.spectrogram.window, m.mel_scale.fb, m.spectrogram.n_fft, m.spectrogram.hop_length)
              for m in loss.mels]  # fmt: skip

    def fn(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        total = fake.new_zeros(())
        for window, fb, n_fft, hop in scales:
            with torch.no_grad():
                target = _log_mel(real, window, fb, n_fft, hop)
            total = total + (_log_mel(fake, window, fb, n_fft, hop) - target).abs().mean()
        return total

    return fn


def _step(fn, fake: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    x = fake.clone().requires_grad_(True)
    started = time.perf_counter()
    value = fn(x, real)
    value.backward()
    return value.detach(), x.grad, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training.loss_speed", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    harness.add_common_args(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    conditions = harness.Conditions(harness.wait_for_quiet(args.wait_quiet))
    cfg = LossConfig()
    eager = MultiScaleMelLoss(SAMPLE_RATE, cfg.mel_windows, cfg.mel_bins)
    compiled = torch.compile(real_valued(eager), dynamic=False)
    gen = torch.Generator().manual_seed(0)
    real = 0.1 * torch.randn(BATCH, SAMPLES, generator=gen)
    fake = real + 0.05 * torch.randn(BATCH, SAMPLES, generator=gen)

    want, want_grad, _ = _step(eager, fake, real)
    started = time.perf_counter()
    got, got_grad, _ = _step(compiled, fake, real)
    compile_s = time.perf_counter() - started
    loss_err = abs(float(got - want)) / abs(float(want))
    grad_err = float((got_grad - want_grad).norm() / want_grad.norm())
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(args.rounds):
        times["eager"].append(_step(eager, fake, real)[2])
        times["compiled"].append(_step(compiled, fake, real)[2])
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = [[k, f"{med[k] * 1e3:.0f}", ", ".join(f"{t * 1e3:.0f}" for t in v), f"{med['eager'] / med[k]:.2f}"]
            for k, v in times.items()]  # fmt: skip
    body = [
        f"- Command: `{harness.command_line('-m benchmarks.training.loss_speed')}`",
        *harness.machine_lines(),
        conditions.line(),
        f"- `MultiScaleMelLoss` (windows {list(cfg.mel_windows)}), forward + backward, "
        f"batch {BATCH} x {SAMPLES / SAMPLE_RATE:g} s, one thread, {args.rounds} alternating rounds",
        f"- Compiled against eager: relative loss difference {loss_err:.1e}, input gradient {grad_err:.1e}; "
        f"first call (compilation) {compile_s:.0f} s",
        "",
        harness.markdown_table(["loss", "ms (median)", "rounds (ms)", "speed-up"], rows),
    ]
    if args.note:
        body += ["", args.note]
    text = "\n".join(body)
    print(text)
    if args.write_results:
        harness.write_section(SECTION, text, Path(args.write_results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
