"""The output folder of ``codec bench quality``.

::

    OUT/per_file.csv        one line per (file, codec setting): bitrates, metrics, reasons
    OUT/summary.json        per setting: achieved kbps, mean / 95% CI / std / n per metric, code usage
    OUT/summary.md          the same as Markdown tables, with the run's context
    OUT/metric_*.png        each metric against bitrate, one line per codec
    OUT/spectrogram_*.png   reference and every setting's output for the best, median, worst file
    OUT/report.html         one self-contained page: tables, plots, audio players for those files
    OUT/cache/              the results a rerun reuses (see codec.bench.quality)

The listening examples are coded again at report time (three files, every setting), so the
cache holds scores only.  Files are ranked by their mean primary metric (PESQ-wb when
computed) over all settings.
"""

from __future__ import annotations

import base64
import html
import io
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from codec.atomic import atomic_write
from codec.bench import plots
from codec.bench.data import read_mono
from codec.bench.published import published_html
from codec.bench.quality import QualityRun, coded_at_score_rate
from codec.bench.scoring import METRICS
from codec.bench.summary import per_file_csv, settings, summary_json, summary_markdown


@dataclass(frozen=True)
class Example:
    """A listening example: which (best/median/worst), file, its score, and labelled signals."""

    which: str
    file: str
    score: float
    signals: list[tuple[str, np.ndarray]]
    spectrogram: Path


def primary_metric(run: QualityRun) -> str | None:
    for m in ("pesq_wb", *run.metrics):
        if m in run.metrics and any(m in r.values for r in run.rows):
            return m
    return None


def pick_examples(run: QualityRun) -> list[tuple[str, str, float]]:
    """(which, file, mean score) for the best, median and worst file by the primary metric."""
    metric = primary_metric(run)
    if metric is None:
        return []
    per_file: dict[str, list[float]] = {}
    for r in run.rows:
        if metric in r.values:
            per_file.setdefault(r.file, []).append(r.values[metric])
    ranked = sorted(((statistics.fmean(v), f) for f, v in per_file.items()), reverse=METRICS[metric][1])
    if not ranked:
        return []
    picks = {"best": ranked[0], "median": ranked[len(ranked) // 2], "worst": ranked[-1]}
    seen: set[str] = set()
    out = []
    for which, (value, name) in picks.items():
        if name not in seen:
            seen.add(name)
            out.append((which, name, value))
    return out


def make_examples(run: QualityRun, out: Path) -> list[Example]:
    """Code the picked files again with every setting; write their spectrogram PNGs."""
    by_name = {i.name: i for i in run.files}
    examples = []
    for which, name, value in pick_examples(run):
        clip = read_mono(by_name[name].path)
        signals = [("reference", _at(clip.wav, clip.sample_rate, run.score_rate))]
        for a in run.adapters:
            try:
                est, _ = coded_at_score_rate(a, clip.wav, clip.sample_rate, run.score_rate)
            except Exception:  # the per-file table already says why this setting failed here
                continue
            signals.append((a.name, est))
        png = plots.spectrogram_plot(
            signals, run.score_rate, f"{which}: {name}", out / f"spectrogram_{which}.png"
        )
        examples.append(Example(which, name, value, signals, png))
    return examples


def _at(wav: np.ndarray, rate: int, new: int) -> np.ndarray:
    from codec.bench.data import at_rate

    return at_rate(wav, rate, new)


def write_report(run: QualityRun, out: Path, context: dict[str, str]) -> list[Path]:
    """Write every file of the output folder (atomically, one by one); returns them."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"{k}: {v}" for k, v in context.items()]
    written = [
        _write_text(out / "per_file.csv", per_file_csv(run.rows, run.metrics)),
        _write_text(out / "summary.json", summary_json(run, dict(context))),
        _write_text(out / "summary.md", "# Codec benchmark\n\n" + summary_markdown(run, lines)),
    ]
    pngs = plots.metric_plots(settings(run), run.metrics, out)
    examples = make_examples(run, out)
    page = report_html(run, lines, pngs, examples)
    written += [*pngs, *(e.spectrogram for e in examples), _write_text(out / "report.html", page)]
    return written


def _write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _flac(wav: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.clip(wav, -1, 1), rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


_STYLE = """body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px}
th{background:#f3f3f3}img{max-width:100%}.plots img{width:48%}audio{height:28px;vertical-align:middle}
.ex td:first-child{white-space:nowrap}#status{color:#666;font-size:12px}"""

# Counts players whose audio decoded and images that loaded, so a reader (or a headless
# browser check) sees at once whether the page is whole.
_SCRIPT = """<script>
function check(){
 const a=[...document.querySelectorAll('audio')],i=[...document.images];
 const ok=a.filter(x=>x.readyState>=1&&x.duration>0).length;
 const im=i.filter(x=>x.complete&&x.naturalWidth>0).length;
 const s=document.getElementById('status');
 s.textContent=`${ok} of ${a.length} players ready, ${im} of ${i.length} images loaded`;
 s.dataset.players=ok;s.dataset.images=im;}
window.addEventListener('load',()=>{check();
 document.querySelectorAll('audio').forEach(x=>x.addEventListener('loadedmetadata',check));
 setTimeout(check,1500);});
</script>"""


def _table_html(run: QualityRun) -> str:
    heads = ["codec", "kbps", "achieved kbps", "files", *(METRICS[m][0] for m in run.metrics)]
    rows = []
    for s in settings(run):
        cells = [s.codec, f"{s.kbps:g}", f"{s.achieved_kbps:.2f}", str(s.files)]
        for m in run.metrics:
            st = s.stats[m]
            cells.append(
                "-" if st.n == 0 else f"{st.mean:.3g} ± {st.ci95:.2g}" if st.n > 1 else f"{st.mean:.3g}"
            )
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def report_html(run: QualityRun, context: list[str], pngs: list[Path], examples: list[Example]) -> str:
    """The self-contained page: every image and sound inlined as a data URI."""
    ctx = "".join(f"<li>{html.escape(line)}</li>" for line in context)
    imgs = "".join(f'<img alt="{p.stem}" src="{_data_uri("image/png", p.read_bytes())}">' for p in pngs)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Codec benchmark</title>",
        f"<style>{_STYLE}</style>",
        f"</head><body><h1>Codec benchmark</h1><ul>{ctx}</ul><p id='status'></p>",
        "<h2>Scores</h2><p>Mean ± 95% confidence interval over files.</p>",
        _table_html(run),
        published_html({a.kind for a in run.adapters}),
        f"<h2>Against bitrate</h2><div class='plots'>{imgs}</div>",
    ]
    for ex in examples:
        players = "".join(
            f"<tr><td>{html.escape(label)}</td><td><audio controls preload='metadata' "
            f"src='{_data_uri('audio/flac', _flac(wav, run.score_rate))}'></audio></td></tr>"
            for label, wav in ex.signals
        )
        spec = _data_uri("image/png", ex.spectrogram.read_bytes())
        parts.append(
            f"<h2>Listen: {ex.which} file</h2><p>{html.escape(ex.file)} (mean {primary_metric(run)} "
            f"{ex.score:.3g})</p><table class='ex'>{players}</table>"
            f"<img alt='spectrogram {ex.which}' src='{spec}'>"
        )
    parts.append(f"{_SCRIPT}</body></html>")
    return "\n".join(parts)
