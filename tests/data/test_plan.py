"""Batching of a shard's items: every item once, in order, within the budget and the padding cap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec.tokenize.plan import MAX_PADDING, batches


@given(st.lists(st.integers(1, 50_000), max_size=60), st.integers(1, 200_000))
def test_batches_cover_every_item_within_the_budget(raw: list[int], budget: int) -> None:
    lengths = sorted(raw)
    groups = batches(lengths, budget)
    assert [i for g in groups for i in g] == list(range(len(lengths)))
    for g in groups:
        padded = len(g) * max(lengths[i] for i in g)
        valid = sum(lengths[i] for i in g)
        assert len(g) == 1 or (padded <= budget and padded <= valid * (1 + MAX_PADDING))


def test_batches_fill_up_to_the_budget() -> None:
    assert batches([10, 10, 10, 10, 10], 30) == [[0, 1, 2], [3, 4]]
    assert batches([10, 11, 30], 1000) == [[0, 1], [2]]  # 30 with 10 and 11 would be 50% padding


def test_unknown_lengths_are_alone() -> None:
    groups = batches([5, 6, None, None], 100)
    assert [2] in groups and [3] in groups and [0, 1] in groups


def test_shards_are_dealt_by_duration(corpus) -> None:
    from codec.tokenize.inputs import list_inputs
    from codec.tokenize.plan import make_plan, plan_key

    listing = list_inputs([str(corpus)])
    plan = make_plan(listing, plan_key(listing, "m", "f", 4, 3))
    assert plan.num_shards == 3 and plan.shard_sizes() == [3, 3, 2]
    assert [e[0] for e in plan.errors()] == ["c/broken"]
    durations = [[i.num_samples / i.sample_rate for i in plan.shard_items(s)] for s in range(3)]
    assert all(d == sorted(d) for d in durations)  # each shard shortest first
    assert sorted(x for d in durations for x in d)[:3] == [d[0] for d in durations]  # dealt round-robin
    wide = make_plan(listing, plan_key(listing, "m", "f", 4, 100), min_shards=2)
    assert wide.shard_sizes() == [4, 4] and wide.digest != plan.digest


def test_the_plan_is_the_row_by_row_deal(corpus, tmp_path) -> None:
    """The columnar plan equals the plain definition: readable items sorted by (undeclared
    length last, duration, id), dealt round-robin; unreadable ones last, shard -1."""
    from codec.pipeline.audiofile import audio_info
    from codec.tokenize.inputs import list_inputs
    from codec.tokenize.plan import make_plan, plan_key

    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(f'{{"path": "{p}", "speaker": {n}}}\n' for n, p in enumerate(sorted(
        q for q in corpus.rglob("*") if q.is_file()))))  # fmt: skip
    for inputs in ([str(corpus)], [str(manifest)]):
        listing = list_inputs(inputs)
        plan = make_plan(listing, plan_key(listing, "m", "f", 4, 3))
        rows = []
        for item in listing.items:
            try:
                info = audio_info(item.path)
            except Exception:
                continue
            n = info.num_samples
            rows.append(((n is None, 0.0 if n is None else n / info.sample_rate, item.id), item, info))
        rows.sort(key=lambda r: r[0])
        want = [(item.id, dict(item.meta), info.sample_rate, info.num_samples, k % plan.num_shards)
                for k, (_, item, info) in enumerate(rows)]  # fmt: skip
        got = plan.table.to_pylist()
        columns = list(listing.columns)
        assert [(r["id"], {c: r[c] for c in columns}, r["sample_rate"], r["num_samples"], r["shard"])
                for r in got[: len(want)]] == want  # fmt: skip
        assert all(r["shard"] == -1 and r["error"] for r in got[len(want) :])
        assert len(got) == len(listing.items)


def test_headers_read_in_slices_make_the_same_plan(corpus) -> None:
    """Several processes each read a slice of the headers: the plan is the one of reading them all."""
    from codec.tokenize.inputs import list_inputs
    from codec.tokenize.plan import make_plan, plan_key, read_headers

    listing = list_inputs([str(corpus)])
    key = plan_key(listing, "m", "f", 4, 3)
    whole = make_plan(listing, key, min_shards=2)
    n = len(listing.items)
    for world in (2, 3, n + 1):  # more processes than items: some read nothing
        parts = [read_headers(listing.items, range(r, n, world)) for r in range(world)]
        sliced = make_plan(listing, key, min_shards=2, headers=parts[::-1])  # any order
        assert sliced.table.equals(whole.table) and sliced.digest == whole.digest
    parts = [read_headers(listing.items, range(r, n, 2)) for r in range(2)]
    for wrong in (parts[:1], [*parts, parts[0]]):  # an item missing, or read twice
        with pytest.raises(ValueError, match="cover every item exactly once"):
            make_plan(listing, key, headers=wrong)
