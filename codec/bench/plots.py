"""PNG plots of a quality run (matplotlib, Agg backend, imported only when a report is written).

- ``metric_<name>.png``: the metric's mean (with its 95% CI as error bars) against the
  achieved bitrate, one line per codec.
- ``spectrogram_<which>.png``: log-magnitude spectrograms of the reference and of every codec
  setting's output for the best, median and worst file.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from codec.bench.scoring import METRICS
from codec.bench.summary import Setting


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def metric_plots(settings: list[Setting], metrics: list[str], folder: Path) -> list[Path]:
    """One PNG per metric with at least one score; returns the files written."""
    plt = _pyplot()
    written = []
    codecs = list(dict.fromkeys(s.codec for s in settings))
    for m in metrics:
        if not any(s.stats[m].n for s in settings):
            continue
        label, higher = METRICS[m]
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for codec in codecs:
            pts = sorted((s.achieved_kbps, s.stats[m]) for s in settings if s.codec == codec and s.stats[m].n)
            if not pts:
                continue
            x = [p[0] for p in pts]
            y = [p[1].mean for p in pts]
            err = [p[1].ci95 if math.isfinite(p[1].ci95) else 0.0 for p in pts]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=codec)
        ax.set_xlabel("achieved bitrate (kbps)")
        ax.set_ylabel(label + (" (higher is better)" if higher else " (lower is better)"))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / f"metric_{m}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def spectrogram_plot(signals: list[tuple[str, np.ndarray]], sample_rate: int, title: str, path: Path) -> Path:
    """Stacked log spectrograms (dB, 512-point FFT) of ``(label, wav [T])`` pairs, one row each."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(signals), 1, figsize=(8, 1.4 * len(signals)), dpi=60, squeeze=False)
    for ax, (label, wav) in zip(axes[:, 0], signals, strict=True):
        x = np.asarray(wav, dtype=np.float64)
        if x.shape[0] < 512:
            x = np.pad(x, (0, 512 - x.shape[0]))
        ax.specgram(x, NFFT=512, Fs=sample_rate, noverlap=384, cmap="magma", vmin=-120, vmax=-10)
        ax.set_ylabel("Hz", fontsize=7)
        ax.set_title(label, fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("seconds")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
