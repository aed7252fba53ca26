"""Peers' own published PESQ and STOI figures, shown beside a run's codecs when those peers were
not run (their weights or package could not be had where the bench ran).

Only figures a peer publishes itself (its README or model card) are listed, each with where
it was read; they come from the peer's own data set and metric code, so they are context,
not a measurement comparable one to one with the run's table.  Where a peer's README was
checked and publishes no PESQ or STOI, the report says so rather than borrowing a figure from
someone else's paper.
"""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    """One published row: which model, its figures, and where they were read."""

    kind: str
    model: str
    pesq: float
    stoi: float
    note: str
    source: str


STABLE_CODEC_README = (
    "https://github.com/Stability-AI/stable-codec README, 'Objective Metrics' (read at commit 8535544)"
)
PUBLISHED = [
    Published("stablecodec", "stable-codec-speech-16k", 3.01, 0.90, "SI-SDR 3.58 dB", STABLE_CODEC_README),
    Published(
        "stablecodec", "stable-codec-speech-16k-base (the paper's weights)", 3.09, 0.92, "SI-SDR 4.73 dB",
        STABLE_CODEC_README,
    ),
]  # fmt: skip
# Peers whose README was read and publishes no PESQ or STOI (repository, commit read).
NONE_PUBLISHED = {
    "encodec": "facebookresearch/encodec 0e2d0ae",
    "dac": "descriptinc/descript-audio-codec c7cfc5d",
    "mimi": "kyutai-labs/moshi e6a55d2",
    "snac": "hubertsiuzdak/snac f49016a",
    "speechtokenizer": "ZhangXInFD/SpeechTokenizer 30c96fb",
}


def published_html(run_kinds: set[str]) -> str:
    """The report's section for the peers not in ``run_kinds`` ("" when every peer was run)."""
    rows = [p for p in PUBLISHED if p.kind not in run_kinds]
    silent = {k: v for k, v in NONE_PUBLISHED.items() if k not in run_kinds}
    if not rows and not silent:
        return ""
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(p)) + "</tr>" for p in rows)
    parts = [
        "<h2>Published figures (not measured here)</h2>",
        "<p>Peers that were not run here, as they report themselves: their own data and metric code, "
        "so context rather than a comparison one to one with the table above. Run them with "
        "<code>--codec KIND:MODEL</code> where their weights can be had.</p>",
    ]
    if rows:
        head = "".join(f"<th>{h}</th>" for h in ("model", "PESQ", "STOI", "also", "source"))
        parts.append(f"<table><tr>{head}</tr>{cells}</table>")
    if silent:
        listed = ", ".join(f"{k} ({v})" for k, v in silent.items())
        parts.append(f"<p>No PESQ or STOI in the README of: {html.escape(listed)}.</p>")
    return "\n".join(parts)


def _cells(p: Published) -> tuple[str, ...]:
    return (p.model, f"{p.pesq:.2f}", f"{p.stoi:.2f}", p.note, p.source)
