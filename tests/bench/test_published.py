"""The peers' published figures: shown for the peers a run leaves out, each with its source."""

from __future__ import annotations

from codec.backends import KINDS
from codec.bench.published import NONE_PUBLISHED, PUBLISHED, published_html


def test_every_peer_is_either_published_with_a_source_or_checked() -> None:
    peers = set(KINDS) - {"ours"}
    assert {p.kind for p in PUBLISHED} | set(NONE_PUBLISHED) == peers
    assert all(p.source.startswith("https://") and 1 <= p.pesq <= 4.6 and 0 < p.stoi <= 1 for p in PUBLISHED)


def test_only_peers_left_out_of_the_run_are_shown() -> None:
    page = published_html({"ours", "dac"})
    assert "<td>stable-codec-speech-16k</td><td>3.01</td><td>0.90</td>" in page
    assert "mimi (kyutai-labs/moshi" in page and "dac (" not in page
    assert published_html(set(KINDS)) == ""
    assert "<table>" not in published_html({"stablecodec"})  # only the checked-and-silent line is left
