"""``tokenize`` in one process: exact batching, the output files, errors, resume and refusals."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest

from codec import Codec
from codec.checkpoint import save_model
from codec.exitcodes import UsageError
from codec.tokenize import TokenizeOptions, tokenize
from codec.tokenize.plan import load_plan
from codec.tokenize.shards import sha256_file
from tests.data.kit import CLIPS, all_ids, check_output, read_rows


def options(inputs: list, out: Path, model_dir: Path, **kw) -> TokenizeOptions:
    kw = {"shard_size": 3, "batch_seconds": 2.0, **kw}
    return TokenizeOptions(
        [str(i) for i in inputs], out, model=str(model_dir), device="cpu", quiet=True, **kw
    )


@pytest.fixture(scope="module")
def noncausal_dir(tmp_path_factory, noncausal_codec: Codec) -> Path:
    return save_model(noncausal_codec.model, tmp_path_factory.mktemp("model") / "noncausal")


@pytest.mark.parametrize("batch_seconds", [0.4, 60.0])
@pytest.mark.parametrize("causal", [True, False])
def test_every_item_equals_encoding_it_alone(
    tmp_path, corpus, model_dir, noncausal_dir, batch_seconds, causal
) -> None:
    # Small batches (several per shard) and one batch per shard; a non-causal model is the one
    # whose codes would change with the padding if the lengths were not passed.
    folder = model_dir if causal else noncausal_dir
    report = tokenize(options([corpus], tmp_path / "out", folder, batch_seconds=batch_seconds))
    check_output(tmp_path / "out", Codec.from_pretrained(folder), all_ids())
    assert (report.items, report.errors, report.shards) == (len(CLIPS), 1, 3)
    assert report.run.padding >= 0


def test_output_files(tmp_path, corpus, model_dir, model) -> None:
    out = tmp_path / "out"
    report = tokenize(options([corpus], out, model_dir, num_codebooks=2))
    check_output(out, model, all_ids(), num_codebooks=2)
    index = json.loads((out / "index.json").read_text())
    assert index["model"]["fingerprint"] == model.fingerprint and index["model"]["num_codebooks"] == 2
    assert sum(s["rows"] for s in index["shards"]) == index["items"] == len(CLIPS)
    for shard in index["shards"]:
        assert sha256_file(out / shard["file"]) == shard["sha256"]
    rows = read_rows(out)
    assert index["tokens"] == report.tokens == sum(r["codes"].size for r in rows)
    stereo = next(r for r in rows if r["id"] == "stereo")
    assert (stereo["sample_rate"], stereo["num_samples"]) == (16000, round(0.52 * 16000))
    assert {r["model"] for r in rows} == {"debug"} and {r["fingerprint"] for r in rows} == {model.fingerprint}
    with (out / "errors.csv").open() as f:
        errors = list(csv.DictReader(f))
    assert [e["id"] for e in errors] == ["c/broken"]
    assert "not a readable audio file" in errors[0]["reason"]
    assert not [p for p in out.rglob(".*")], "temporary or lock files left behind"


def test_manifests_carry_metadata(tmp_path, corpus, model_dir, model) -> None:
    csv_manifest = corpus / "list.csv"
    csv_manifest.write_text(
        "path,id,speaker,duration\na/mid.wav,utt1,anna,0.7\nb/rate8k.wav,,bo,\nmissing.wav,gone,x,1\n"
    )
    jsonl = tmp_path / "list.jsonl"
    lines = [
        {"path": str(corpus / "long.wav"), "id": "utt3", "score": 1, "tags": ["x"]},
        {"path": str(corpus / "stereo.wav"), "id": "utt4", "score": 2.5},
    ]
    jsonl.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "out"
    report = tokenize(options([csv_manifest, jsonl], out, model_dir))
    check_output(out, model, {"utt1", "b/rate8k", "utt3", "utt4"})
    rows = {r["id"]: r for r in read_rows(out)}
    assert rows["utt1"]["speaker"] == "anna" and rows["utt3"]["speaker"] is None
    assert rows["utt1"]["manifest_duration"] == "0.7" and rows["utt1"]["duration"] == 0.73  # not replaced
    assert rows["utt3"]["score"] == 1.0 and rows["utt4"]["score"] == 2.5  # int and float: a float column
    assert rows["utt3"]["tags"] == '["x"]' and rows["utt4"]["tags"] is None
    assert report.errors == 1 and "no such file" in (out / "errors.csv").read_text()


def test_a_finished_run_is_recognised(tmp_path, corpus, model_dir) -> None:
    out = tmp_path / "out"
    tokenize(options([corpus], out, model_dir))
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    again = tokenize(options([corpus], out, model_dir, batch_seconds=5.0))  # batching is not identity
    assert again.already_complete and again.run.items == 0 and again.items == len(CLIPS)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamps


def test_a_rerun_codes_only_what_is_missing(tmp_path, corpus, model_dir, model) -> None:
    out = tmp_path / "out"
    tokenize(options([corpus], out, model_dir))
    plan = load_plan(out)
    # What a kill leaves: no index, a shard never committed, temporary and lock files.
    (out / "index.json").unlink()
    (out / "shards" / "shard-00001.parquet").unlink()
    (out / "shards" / ".shard-00001.parquet.x1.codec-tmp.parquet").write_bytes(b"PAR1 half")
    (out / "shards" / ".shard-00001.parquet.codec-lock").write_bytes(b"")
    (out / ".index.json.x2.codec-tmp").write_bytes(b"{")
    kept = (out / "shards" / "shard-00000.parquet").stat().st_mtime_ns
    report = tokenize(options([corpus], out, model_dir))
    assert report.run.items + report.run.errors == plan.shard_sizes()[1]
    assert (out / "shards" / "shard-00000.parquet").stat().st_mtime_ns == kept
    check_output(out, model, all_ids())
    assert not [p for p in out.rglob(".*")]


def test_a_shard_of_another_plan_is_redone(tmp_path, corpus, model_dir, model) -> None:
    out, other = tmp_path / "out", tmp_path / "other"
    tokenize(options([corpus], out, model_dir))
    tokenize(options([corpus / "a", corpus / "b"], other, model_dir))
    (out / "index.json").unlink()
    os.replace(other / "shards" / "shard-00000.parquet", out / "shards" / "shard-00000.parquet")
    report = tokenize(options([corpus], out, model_dir))
    assert report.run.items == 3
    check_output(out, model, all_ids())


def test_other_options_are_refused_until_force(tmp_path, corpus, model_dir, model) -> None:
    out = tmp_path / "out"
    tokenize(options([corpus], out, model_dir))
    with pytest.raises(UsageError, match=r"num_codebooks 4, not 2.*--force"):
        tokenize(options([corpus], out, model_dir, num_codebooks=2))
    with pytest.raises(UsageError, match="other inputs"):
        tokenize(options([corpus / "a"], out, model_dir))
    report = tokenize(options([corpus], out, model_dir, num_codebooks=2, force=True))
    assert report.run.items == len(CLIPS)
    check_output(out, model, all_ids(), num_codebooks=2)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"shard_size": 0}, "--shard-size must be at least 1"),
        ({"num_codebooks": 9}, "--num-codebooks must be in 1..4"),
        ({"inputs": ["nowhere"]}, "nowhere: no such file or folder"),
    ],
)
def test_bad_options(tmp_path, corpus, model_dir, change, match) -> None:
    opts = dataclasses.replace(options([corpus], tmp_path / "out", model_dir), **change)
    with pytest.raises(UsageError, match=match):
        tokenize(opts)
    assert not (tmp_path / "out").exists()


def test_a_foreign_folder_is_not_touched(tmp_path, corpus, model_dir) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for force in (False, True):
        with pytest.raises(UsageError, match="not empty and not a tokenize output"):
            tokenize(options([corpus], out, model_dir, force=force))
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_duplicate_ids_are_refused(tmp_path, corpus, model_dir) -> None:
    manifest = tmp_path / "dup.csv"
    manifest.write_text(f"path,id\n{corpus}/a/mid.wav,x\n{corpus}/long.wav,x\n")
    with pytest.raises(UsageError, match="duplicate id 'x'"):
        tokenize(options([manifest], tmp_path / "out", model_dir))


def test_codes_column_is_frame_major(tmp_path, corpus, model_dir, model) -> None:
    out = tmp_path / "out"
    tokenize(options([corpus / "a"], out, model_dir))
    import pyarrow.parquet as pq

    row = pq.read_table(out / "shards" / "shard-00000.parquet").to_pylist()[-1]
    want = np.asarray(model.encode(*_mono(corpus / "a" / "mid.wav")).codes[0])  # [K, F]
    assert row["codes"][: want.shape[0]] == want[:, 0].tolist()  # frame 0, every codebook


def _mono(path: Path) -> tuple:
    from codec.pipeline.audiofile import load_audio

    audio = load_audio(path)
    return audio.wav[None], audio.sample_rate


def test_a_complete_run_missing_a_shard_redoes_it(tmp_path, corpus, model_dir, model) -> None:
    out = tmp_path / "out"
    tokenize(options([corpus], out, model_dir))
    (out / "shards" / "shard-00002.parquet").unlink()
    report = tokenize(options([corpus], out, model_dir))
    assert not report.already_complete and report.run.items == 2
    check_output(out, model, all_ids())


class _Rank0:
    """Rank 0 of a group of two whose other process's header reading is given."""

    rank, world_size, device = 0, 2, "cpu"

    def __init__(self, other: tuple) -> None:
        self.other, self.sent = other, []

    def gather(self, obj):
        return [obj, self.other]

    def broadcast(self, obj):
        self.sent.append(obj)
        return obj


def test_a_failure_of_another_process_while_planning_is_reported_once(
    capsys, corpus, model_dir, tmp_path
) -> None:
    from codec.tokenize.inputs import list_inputs
    from codec.tokenize.plan import plan_key, read_headers
    from codec.tokenize.run import RunFailed, plan_together

    opts = options([corpus], tmp_path / "out", model_dir)
    listing = list_inputs(opts.inputs)
    key = plan_key(listing, "m", "f", 4, 3)
    failure = UsageError("c/x.flac: cannot list")
    ranks = _Rank0(("error", failure))
    assert plan_together(opts, key, listing, ranks) == ("error", failure) and ranks.sent == [ranks.other]
    assert capsys.readouterr().err == ""  # the command line reports it, once (rank 0)
    with pytest.raises(RunFailed) as failed:
        tokenize(opts, ranks=_Rank0(("error", failure)))
    assert failed.value.error is failure and failed.value.report
    # The other process listed other files (added meanwhile): refused, on every process.
    other = ("ok", "another listing", read_headers(listing.items, range(1, len(listing.items), 2)))
    ranks = _Rank0(other)
    with pytest.raises(UsageError, match="the inputs changed while the processes listed them"):
        plan_together(opts, key, listing, ranks)
    assert ranks.sent[0][0] == "error" and isinstance(ranks.sent[0][1], UsageError)
    assert not (tmp_path / "out").exists()  # no plan saved
    # Both slices read: rank 0 saves the plan of them all.
    other = ("ok", key["inputs"], read_headers(listing.items, range(1, len(listing.items), 2)))
    (tmp_path / "out").mkdir()
    assert plan_together(opts, key, listing, _Rank0(other)) == ("run", None)
    assert load_plan(tmp_path / "out").shard_sizes() == [3, 3, 2]
