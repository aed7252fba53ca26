"""Tables of a quality run: per-file CSV, ``summary.json`` and ``summary.md`` (mean with 95% CI).

The confidence interval of a mean over ``n`` files is Student's t: ``mean +- t(0.975, n-1) *
sd / sqrt(n)`` (scipy's t quantile).  Codebook usage per level is pooled over all frames of
all files: entropy (bits), perplexity ``2**entropy`` and dead codes (entries never used).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass

import numpy as np
import torch

from codec.bench.quality import QualityRun, Row
from codec.bench.scoring import METRICS
from codec.metrics import entropy_bits


@dataclass(frozen=True)
class Stat:
    """Mean, 95% confidence half-width, standard deviation and count of one metric."""

    mean: float
    ci95: float
    std: float
    n: int


def mean_ci(values: list[float]) -> Stat:
    """Mean with the Student-t 95% confidence half-width (``nan`` width for one value)."""
    from scipy.stats import t

    n = len(values)
    if n == 0:
        return Stat(math.nan, math.nan, math.nan, 0)
    mean = statistics.fmean(values)
    if n == 1:
        return Stat(mean, math.nan, math.nan, 1)
    sd = statistics.stdev(values)
    return Stat(mean, float(t.ppf(0.975, n - 1)) * sd / math.sqrt(n), sd, n)


@dataclass(frozen=True)
class Setting:
    """Summary of one codec setting: its identity, achieved bitrate and per-metric stats."""

    codec: str
    kind: str
    key: str
    kbps: float
    achieved_kbps: float
    files: int
    stats: dict[str, Stat]


def settings(run: QualityRun) -> list[Setting]:
    """One :class:`Setting` per adapter, in the order given."""
    out = []
    for a in run.adapters:
        rows = [r for r in run.rows if r.key == a.key and not r.error]
        secs = sum(r.seconds for r in rows)
        achieved = sum(r.achieved_kbps * r.seconds for r in rows) / secs if secs else math.nan
        stats = {m: mean_ci([r.values[m] for r in rows if m in r.values]) for m in run.metrics}
        out.append(Setting(a.label, a.kind, a.key, a.kbps, achieved, len(rows), stats))
    return out


def usage_table(counts: np.ndarray) -> list[dict[str, float]]:
    """Per level: entropy (bits), perplexity and dead codes, from counts ``[K, codebook_size]``."""
    out = []
    for level in counts:
        h = entropy_bits(torch.from_numpy(level))
        out.append({"entropy_bits": h, "perplexity": 2**h, "dead_codes": int((level == 0).sum())})
    return out


def per_file_csv(rows: list[Row], metrics: list[str]) -> str:
    """One line per (file, setting): bitrates, every metric, and why a metric or file has no score."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "codec", "kbps", "achieved_kbps", "seconds", *metrics, "skipped", "error"])
    for r in rows:
        vals = [f"{r.values[m]:.6g}" if m in r.values else "" for m in metrics]
        skipped = "; ".join(f"{m}: {why}" for m, why in r.skipped.items())
        w.writerow(
            [
                r.file,
                r.codec,
                f"{r.kbps:g}",
                f"{r.achieved_kbps:.4g}",
                f"{r.seconds:.3f}",
                *vals,
                skipped,
                r.error,
            ]
        )
    return buf.getvalue()


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def summary_json(run: QualityRun, context: dict[str, object]) -> str:
    """``summary.json``: context, per-setting stats and code usage, and every skipped pair."""
    data = {
        **context,
        "score_rate": run.score_rate,
        "metrics": run.metrics,
        "files": len(run.files),
        "settings": [
            {
                "codec": s.codec,
                "kind": s.kind,
                "kbps": s.kbps,
                "achieved_kbps": _num(s.achieved_kbps),
                "files_scored": s.files,
                "metrics": {
                    m: {"mean": _num(st.mean), "ci95": _num(st.ci95), "std": _num(st.std), "n": st.n}
                    for m, st in s.stats.items()
                },
                "codebook_usage": usage_table(run.usage[s.key]) if s.key in run.usage else None,
            }
            for s in settings(run)
        ],
        "not_scored": not_scored(run),
    }
    return json.dumps(data, indent=1)


def not_scored(run: QualityRun) -> list[dict[str, str]]:
    """Every file (or file and metric) without a score, with the reason."""
    out = []
    for r in run.rows:
        if r.error:
            out.append(
                {"file": r.file, "codec": r.codec, "kbps": f"{r.kbps:g}", "metric": "all", "reason": r.error}
            )
        for m, why in r.skipped.items():
            out.append({"file": r.file, "codec": r.codec, "kbps": f"{r.kbps:g}", "metric": m, "reason": why})
    return out


def cell(st: Stat, metric: str) -> str:
    if st.n == 0:
        return "-"
    digits = 2 if metric in ("pesq_wb", "pesq_nb", "si_sdr", "visqol", "dnsmos") else 3
    ci = f" ± {st.ci95:.{digits}f}" if math.isfinite(st.ci95) else ""
    return f"{st.mean:.{digits}f}{ci}"


def metric_table(run: QualityRun) -> str:
    """The Markdown table: one row per codec setting, mean ± 95% CI per metric."""
    head = ["codec", "kbps", "achieved kbps", "files", *(METRICS[m][0] for m in run.metrics)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for s in settings(run):
        cells = [s.codec, f"{s.kbps:g}", f"{s.achieved_kbps:.2f}", str(s.files)]
        lines.append("| " + " | ".join(cells + [cell(s.stats[m], m) for m in run.metrics]) + " |")
    return "\n".join(lines)


def usage_markdown(run: QualityRun) -> str:
    """Code usage per level for each setting with codes: entropy / perplexity / dead codes."""
    lines = []
    for a in run.adapters:
        if a.key not in run.usage:
            continue
        table = usage_table(run.usage[a.key])
        cells = ", ".join(f"{t['entropy_bits']:.2f}/{t['perplexity']:.0f}/{t['dead_codes']}" for t in table)
        lines.append(f"- {a.name} ({a.codebook_size} codes per level): {cells}")
    if not lines:
        return ""
    return (
        "Codebook usage per level (entropy bits / perplexity / dead codes), pooled over all files:\n\n"
        + "\n".join(lines)
    )


def summary_markdown(run: QualityRun, context_lines: list[str]) -> str:
    """``summary.md``: context, the metric table, code usage and what was not scored."""
    parts = ["\n".join(f"- {line}" for line in context_lines), metric_table(run)]
    usage = usage_markdown(run)
    if usage:
        parts.append(usage)
    missing = not_scored(run)
    if missing:
        shown = missing[:20]
        body = "\n".join(
            f"- {m['file']} / {m['codec']} @ {m['kbps']} / {m['metric']}: {m['reason']}" for m in shown
        )
        more = f"\n- ... and {len(missing) - 20} more (summary.json)" if len(missing) > 20 else ""
        parts.append(f"Not scored ({len(missing)}):\n\n{body}{more}")
    return "\n\n".join(parts) + "\n"
