"""Shard integrity: damaged, missing, replaced and stale shards are found by a rerun and by the
datasets at open, and named."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest

from codec.tokenize import IterableTokenDataset, ShardError, TokenDataset, TokenizeOptions, tokenize
from tests.data.kit import all_ids, check_output, flip_code_byte


def _options(inputs: list, out: Path, model_dir: Path) -> TokenizeOptions:
    return TokenizeOptions(
        [str(i) for i in inputs], out, model=str(model_dir), device="cpu", quiet=True, shard_size=3
    )


@pytest.fixture(scope="module")
def complete(tmp_path_factory, corpus, model_dir) -> Path:
    """A complete output of the corpus (3 shards), to copy and damage."""
    out = tmp_path_factory.mktemp("complete") / "out"
    tokenize(_options([corpus], out, model_dir))
    return out


def _copy(complete: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(complete, tmp_path / "out"))


def test_a_rerun_verifies_digests_and_redoes_a_damaged_shard(
    complete, tmp_path, corpus, model_dir, model, capsys
):
    out = _copy(complete, tmp_path)
    flip_code_byte(out / "shards" / "shard-00001.parquet")
    report = tokenize(_options([corpus], out, model_dir))
    assert not report.already_complete and report.run.items + report.run.errors == 3
    assert "shard-00001.parquet: contents differ from index.json's sha256" in capsys.readouterr().err
    check_output(out, model, all_ids())
    assert tokenize(_options([corpus], out, model_dir)).already_complete


def test_a_rerun_after_a_kill_finds_a_damaged_shard_by_its_page_checksums(
    complete, tmp_path, corpus, model_dir, model
):
    out = _copy(complete, tmp_path)
    (out / "index.json").unlink()  # killed before the index: no digests to compare with
    flip_code_byte(out / "shards" / "shard-00002.parquet")
    report = tokenize(_options([corpus], out, model_dir))
    assert report.run.items + report.run.errors == 2  # that shard alone is coded again
    check_output(out, model, all_ids())


def test_stale_rows_go_when_a_run_starts_over_without_its_plan(tmp_path, corpus, model_dir, model, capsys):
    files = sorted(corpus.rglob("*.wav"))  # 8 clips and one broken file: 3 shards of 3
    out = tmp_path / "out"
    tokenize(_options(files, out, model_dir))
    (out / "_plan.parquet").unlink()
    fewer = [f for f in files if f.stem not in ("long", "broken", "tiny")]  # 6 files: 2 shards
    tokenize(_options(fewer, out, model_dir))
    assert "removed the shards of an earlier run whose plan is gone" in capsys.readouterr().err
    want = {f.stem for f in fewer}
    table = pads.dataset(out / "shards", format="parquet").to_table(columns=["path"])
    assert sorted(Path(p).stem for p in table["path"].to_pylist()) == sorted(want)
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        "shard-00000.parquet",
        "shard-00001.parquet",
    ]
    assert {Path(item["path"]).stem for item in TokenDataset(out)} == want
    assert "broken" not in (out / "errors.csv").read_text()
    # A shard file past the plan's (a copy, a bigger run's) is removed when the run finishes.
    (out / "index.json").unlink()
    shutil.copy(out / "shards" / "shard-00000.parquet", out / "shards" / "shard-00007.parquet")
    tokenize(_options(fewer, out, model_dir))
    assert not (out / "shards" / "shard-00007.parquet").exists()


@pytest.mark.parametrize("dataset", [TokenDataset, IterableTokenDataset])
def test_a_missing_or_damaged_shard_is_named_when_the_dataset_opens(complete, tmp_path, dataset):
    out = _copy(complete, tmp_path)
    shard = out / "shards" / "shard-00001.parquet"
    good = shard.read_bytes()
    cases = [
        (lambda: shard.unlink(), r"shard-00001\.parquet: missing \(listed in index\.json\)"),
        (lambda: shard.write_bytes(good[:-100]), r"shard-00001\.parquet: \d+ bytes where index\.json lists"),
        (lambda: flip_code_byte(shard), r"shard-00001\.parquet: contents differ from index\.json's sha256"),
        # A shard of another output, put in its place (same size: padded), is not this one.
        (
            lambda: shard.write_bytes(
                (out / "shards" / "shard-00000.parquet").read_bytes()[: len(good)].ljust(len(good), b"\0")
            ),
            "sha256",
        ),
    ]
    for damage, match in cases:
        shard.write_bytes(good)
        damage()
        with pytest.raises(ShardError, match=match) as err:
            dataset(out)
        assert "rerun the `codec tokenize` command" in str(err.value)


def test_damage_after_open_is_named_when_read(complete, tmp_path):
    out = _copy(complete, tmp_path)
    ds = TokenDataset(out)
    row = next(i for i in range(len(ds)) if ds.shards.locate(i)[0] == 1)
    ds = TokenDataset(out)  # nothing loaded yet
    flip_code_byte(out / "shards" / "shard-00001.parquet")
    with pytest.raises(ShardError, match=r"shard-00001\.parquet: unreadable since the dataset was opened"):
        ds[row]
    # verify=False checks presence and sizes only; the page checksums still refuse the codes.
    fast = TokenDataset(out, verify=False)
    with pytest.raises(ShardError, match="shard-00001"):
        fast[row]
    assert np.array_equal(fast[0]["codes"].numpy(), TokenDataset(complete)[0]["codes"].numpy())
