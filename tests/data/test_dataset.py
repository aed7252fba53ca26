"""Reading a tokenize output: Hugging Face ``datasets``, ``pyarrow.dataset``, and the token datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest
import torch

from codec.tokenize import (
    IterableTokenDataset,
    TokenDataset,
    TokenizeOptions,
    collate_tokens,
    row_codes,
    tokenize,
)
from tests.data.kit import CLIPS, all_ids, read_rows


@pytest.fixture(scope="module")
def output(tmp_path_factory, corpus, model_dir) -> Path:
    out = tmp_path_factory.mktemp("tok") / "out"
    opts = TokenizeOptions([str(corpus)], out, model=str(model_dir), device="cpu", shard_size=3, quiet=True)
    tokenize(opts)
    return out


@pytest.fixture(scope="module")
def stored(output) -> dict[str, dict]:
    return {r["id"]: r for r in read_rows(output)}


def test_hugging_face_datasets_reads_the_shards(output, stored, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets

    ds = datasets.load_dataset(
        "parquet", data_files=str(output / "shards" / "*.parquet"), split="train", cache_dir=str(tmp_path)
    )
    assert ds.num_rows == len(CLIPS) and set(ds["id"]) == all_ids()
    row = ds.filter(lambda r: r["id"] == "long")[0]
    codes = np.asarray(row["codes"]).reshape(row["num_frames"], row["num_codebooks"]).T
    assert np.array_equal(codes, stored["long"]["codes"])
    assert torch.equal(row_codes(row), torch.from_numpy(stored["long"]["codes"]))  # [K, F], no reshaping


def test_pyarrow_dataset_reads_the_shards(output) -> None:
    table = pads.dataset(output / "shards", format="parquet").to_table(columns=["id", "num_frames"])
    assert table.num_rows == len(CLIPS) and set(table["id"].to_pylist()) == all_ids()


def test_map_style_items(output, stored) -> None:
    ds = TokenDataset(output)
    assert len(ds) == len(CLIPS)
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        want = stored[item["id"]]
        assert item["codes"].dtype == torch.int64 and item["codes"].shape == want["codes"].shape
        assert np.array_equal(item["codes"].numpy(), want["codes"]) and item["length"] == want["num_frames"]
        assert item["path"] == want["path"] and item["duration"] == want["duration"]
        seen.add(item["id"])
    assert seen == all_ids()
    assert ds[-1]["id"] == ds[len(ds) - 1]["id"]
    with pytest.raises(IndexError):
        ds[len(ds)]
    assert TokenDataset(output, num_codebooks=2)[0]["codes"].shape[0] == 2


def test_crop_and_pad(output, stored) -> None:
    ds = TokenDataset(output, max_frames=20, pad=True, pad_value=-1)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=len(ds))))
    assert batch["codes"].shape == (len(ds), 4, 20)
    for i, name in enumerate(batch["id"]):
        full, n = stored[name]["codes"], int(batch["length"][i])
        assert n == min(20, full.shape[1])
        assert np.array_equal(batch["codes"][i, :, :n].numpy(), full[:, :n])
        assert (batch["codes"][i, :, n:] == -1).all()
    crops = TokenDataset(output, max_frames=20, random_crop=True, seed=3)
    long = next(i for i in range(len(crops)) if crops[i]["id"] == "long")
    starts = set()
    for epoch in range(6):
        crops.set_epoch(epoch)
        item, full = crops[long], stored["long"]["codes"]
        start = next(
            s for s in range(full.shape[1] - 19) if np.array_equal(full[:, s : s + 20], item["codes"])
        )
        assert np.array_equal(crops[long]["codes"], item["codes"])  # a pure function of (seed, epoch, item)
        starts.add(start)
    assert len(starts) > 1


@pytest.mark.parametrize(("world", "workers"), [(3, 0), (2, 2), (1, 0)])
def test_iterable_splits_across_ranks_and_workers(output, stored, world, workers) -> None:
    # 3 shards: 3 ranks take a shard each; 2 ranks x 2 workers split rows; 1 consumer reads all.
    got = []
    for rank in range(world):
        ds = IterableTokenDataset(output, rank=rank, world_size=world, shuffle=True, seed=1)
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers)
        got += [item["id"] for item in loader]
    assert sorted(got) == sorted(all_ids())


def test_iterable_shuffle_is_seeded(output) -> None:
    order = [[x["id"] for x in IterableTokenDataset(output, shuffle=True, seed=s)] for s in (0, 0, 1)]
    assert order[0] == order[1] and sorted(order[0]) == sorted(order[2])
    assert order[0] != [x["id"] for x in IterableTokenDataset(output)] or order[0] != order[2]


def test_not_an_output(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"no index\.json"):
        TokenDataset(tmp_path)
    (tmp_path / "index.json").write_text("[1]")
    with pytest.raises(ValueError, match="not a `codec tokenize` index"):
        TokenDataset(tmp_path)


def _start(full: np.ndarray, crop: torch.Tensor) -> int:
    return next(s for s in range(full.shape[1]) if np.array_equal(full[:, s : s + crop.shape[1]], crop))


def test_random_crops_differ_every_epoch_and_say_where_they_start(output, stored) -> None:
    ids = [item["id"] for item in TokenDataset(output)]
    long = ids.index("long")
    ds = TokenDataset(output, max_frames=20, random_crop=True, seed=3)
    full, rate = stored["long"]["codes"], ds.shards.frame_rate
    starts = []
    for _ in range(6):  # no set_epoch: each read (epoch) draws again
        item = ds[long]
        assert item["start_frame"] == _start(full, item["codes"]) and item["length"] == 20
        assert item["start_time"] == pytest.approx(item["start_frame"] / rate)
        starts.append(item["start_frame"])
    assert len(set(starts)) > 1
    again = TokenDataset(output, max_frames=20, random_crop=True, seed=3)
    assert [again[long]["start_frame"] for _ in range(6)] == starts  # reproducible from the seed
    short = ids.index("a/short")  # 5 frames: not cropped, starts at 0
    assert (ds[short]["start_frame"], ds[short]["start_time"]) == (0, 0.0)


def test_random_crops_differ_between_epochs_with_loader_workers(output) -> None:
    ds = TokenDataset(output, max_frames=20, random_crop=True, seed=3)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)

    def epochs() -> list[list[int]]:
        torch.manual_seed(0)  # the loader draws each epoch's worker seed from torch's generator
        return [[item["start_frame"] for item in loader] for _ in range(3)]

    first = epochs()
    assert first == epochs()  # reproducible
    assert first[0] != first[1] or first[1] != first[2]  # yet not the same every epoch


def test_collate_pads_items_of_any_length_with_their_lengths(output, stored) -> None:
    ds = TokenDataset(output, max_frames=30)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=4, collate_fn=lambda items: collate_tokens(items, pad_value=-7)
    )
    for batch in loader:
        longest = int(batch["length"].max())
        assert batch["codes"].dtype == torch.int64 and batch["codes"].shape[1:] == (4, longest)
        assert batch["length"].dtype == torch.int64 and batch["start_frame"].tolist() == [0] * len(
            batch["id"]
        )
        for i, name in enumerate(batch["id"]):
            n = int(batch["length"][i])
            assert np.array_equal(batch["codes"][i, :, :n].numpy(), stored[name]["codes"][:, :n])
            assert (batch["codes"][i, :, n:] == -7).all()
    with pytest.raises(ValueError, match="different codebook counts"):
        collate_tokens([ds[0], TokenDataset(output, num_codebooks=2)[1]])


@pytest.mark.parametrize("k", [-1, 0, 5, 2.0, True])
def test_num_codebooks_out_of_range_is_refused(output, k) -> None:
    for dataset in (TokenDataset, IterableTokenDataset):
        with pytest.raises(ValueError, match="num_codebooks"):
            dataset(output, num_codebooks=k)


@pytest.mark.parametrize(("rank", "world"), [(5, 2), (2, 2), (-1, 2), (0, 0)])
def test_a_rank_outside_the_world_is_refused(output, rank, world) -> None:
    with pytest.raises(ValueError, match=r"rank|world_size"):
        IterableTokenDataset(output, rank=rank, world_size=world)
