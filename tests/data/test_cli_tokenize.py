"""``codec tokenize`` as a command: bad arguments, two processes (gloo), kill -9 and rerun."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import soundfile as sf

from codec.cli import main
from codec.tokenize.inputs import list_inputs
from codec.tokenize.launch import free_port
from codec.tokenize.plan import load_plan, make_plan
from tests.conftest import speech_like
from tests.data.kit import all_ids, check_output
from tests.faults.kit import cli_command

CLI = cli_command()


def _run(argv: list, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = None if env is None else {**os.environ, **env}
    return subprocess.run([*CLI, *map(str, argv)], capture_output=True, text=True, timeout=timeout, env=env)


def _shard_ranks(out: Path) -> list[int]:
    index = json.loads((out / "index.json").read_text())
    return [
        json.loads(pq.read_schema(out / s["file"]).metadata[b"codec.shard"])["rank"] for s in index["shards"]
    ]


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--shard-size", "0"], "--shard-size: expected a positive integer, got 0"),
        (["--device", "tpu"], "--device: invalid choice: 'tpu'"),
        (["--batch-seconds", "nan"], "--batch-seconds: expected a positive number, got nan"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(capsys, corpus, tmp_path, argv, match) -> None:
    code = main(["tokenize", str(corpus), "-o", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1


def test_bad_inputs_are_one_line_and_exit_2(capsys, corpus, model_dir, tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    for inputs, out, match in [
        ([tmp_path / "nowhere"], tmp_path / "out", "nowhere: no such file or folder"),
        ([corpus], tmp_path / "file", "file: is a file (the output is a folder)"),
    ]:
        code = main(["tokenize", *map(str, inputs), "-o", str(out), "--model", str(model_dir), "-q"])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("codec: error: ") and match in err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_two_processes(corpus, model_dir, model, tmp_path) -> None:
    out = tmp_path / "out"
    argv = ["tokenize", corpus, "-o", out, "--model", model_dir, "--device", "cpu", "--devices", 2]
    # 8 items, default --shard-size: still one shard per process.  Every import is logged: the
    # processes this command starts meet by torch.distributed's env:// rendezvous, no Lightning.
    done = _run(argv, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "8 items" in done.stdout and "1 error " in done.stdout
    check_output(out, model, all_ids())
    assert _shard_ranks(out) == [0, 1]  # each rank its own shard
    # Each process read half of the headers; the plan is the one a single process makes.
    plan = load_plan(out)
    assert plan.table.equals(make_plan(list_inputs([str(corpus)]), plan.key, min_shards=2).table)
    imports = [
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    ]
    assert imports.count("torch.distributed.distributed_c10d") == 2, "both processes log their imports"
    assert not [m for m in imports if m.startswith(("lightning", "torchmetrics"))]


# What srun sets for a job of two tasks on one node (each task adds its SLURM_PROCID/LOCALID).
SLURM_JOB = {"SLURM_NTASKS": "2", "SLURM_NODEID": "0", "SLURM_JOB_ID": "1", "SLURM_NODELIST": "localhost",
             "SLURM_JOB_NAME": "tokenize"}  # fmt: skip


@pytest.mark.slow
def test_two_processes_under_slurm_are_lightnings(corpus, model_dir, model, tmp_path) -> None:
    """``srun`` starts every task with SLURM's variables and no LOCAL_RANK: Lightning Fabric
    reads them and forms the group (here two tasks started by hand, as srun would)."""
    out = tmp_path / "out"
    argv = [
        *CLI,
        "tokenize",
        corpus,
        "-o",
        out,
        "--model",
        model_dir,
        "--device",
        "cpu",
        "--devices",
        2,
        "-q",
    ]
    slurm = {**SLURM_JOB, "SLURM_NTASKS_PER_NODE": "2", "MASTER_PORT": str(free_port())}
    env = {
        k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "RANK", "MASTER_ADDR")
    }
    logs = [(tmp_path / f"out{r}.txt", tmp_path / f"err{r}.txt") for r in (0, 1)]
    procs = []
    for r, (stdout, stderr) in enumerate(logs):  # files, not pipes: a full pipe would stall a rank
        task = {**slurm, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r), "PYTHONPROFILEIMPORTTIME": "1"}
        with stdout.open("w") as o, stderr.open("w") as e:
            procs.append(subprocess.Popen([str(a) for a in argv], env={**env, **task}, stdout=o, stderr=e))
    codes = [p.wait(timeout=300) for p in procs]
    results = [(o.read_text(), e.read_text()) for o, e in logs]
    assert codes == [0, 0], results[0][1][-3000:]
    assert "8 items" in results[0][0] and results[1][0] == ""  # rank 0 reports
    check_output(out, model, all_ids())
    assert _shard_ranks(out) == [0, 1]
    assert "lightning.fabric" in results[1][1]  # the task imported Lightning for its group


def test_a_slurm_setup_fabric_refuses_is_one_line_and_exit_2(corpus, model_dir, tmp_path) -> None:
    slurm = {**SLURM_JOB, "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}  # no SLURM_NTASKS_PER_NODE
    argv = [
        "tokenize",
        corpus,
        "-o",
        tmp_path / "out",
        "--model",
        model_dir,
        "--device",
        "cpu",
        "--devices",
        2,
    ]
    done = _run(argv, env=slurm)  # --ntasks without --ntasks-per-node: Lightning refuses it
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("codec: error: ") and "--ntasks-per-node" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    """40 short files: a run of a second or two, long enough to be killed in the middle."""
    root = tmp_path_factory.mktemp("many")
    for n in range(40):
        sf.write(root / f"f{n:02d}.wav", speech_like(1600 + 400 * (n % 7), seed=n).T.numpy(), 16000)
    (root / "zz_broken.flac").write_bytes(b"fLaC\x00\x00")
    return root


@pytest.mark.slow
def test_kill_9_at_random_moments_then_rerun(many, model_dir, model, tmp_path) -> None:
    out = tmp_path / "out"
    argv = [*CLI, "tokenize", many, "-o", out, "--model", model_dir, "--device", "cpu", "-q"]
    argv = [str(a) for a in [*argv, "--shard-size", 1, "--batch-seconds", 0.2]]
    rng = random.Random(os.getpid())
    kills = 0
    for target in sorted(rng.sample(range(1, 38), 2)):
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        while proc.poll() is None and len(list((out / "shards").glob("shard-*.parquet"))) < target:
            time.sleep(0.003)
        time.sleep(rng.uniform(0, 0.02))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert kills >= 1, "every run finished before it could be killed"
    check_output(out, model, {f"f{n:02d}" for n in range(40)})
    errors = (out / "errors.csv").read_text().splitlines()
    assert len(errors) == 2 and errors[1].startswith("zz_broken,")
    assert not list(out.rglob(".*")), "leftovers of the killed runs"


def test_without_the_data_extra_the_command_says_so(monkeypatch, capsys, tmp_path) -> None:
    import importlib.util
    import sys

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    monkeypatch.delitem(sys.modules, "codec.tokenize.cli", raising=False)
    code = main(["tokenize", str(tmp_path), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "'codec tokenize' is not available" in err and "pip install 'codec[data]'" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("report", [True, False])
def test_a_run_that_failed_in_any_process_is_reported_once_with_its_status(
    monkeypatch, capsys, corpus, tmp_path, report
) -> None:
    """The process that reports (rank 0) prints the failed process's one line; the others end
    quietly; every one ends with the status of that error."""
    import codec.tokenize.run as run
    from codec.errors import UsageError

    def fail(*args, **kwargs):
        raise run.RunFailed(UsageError("c/x.flac: cannot list"), report=report)

    monkeypatch.setattr(run, "tokenize", fail)
    code = main(["tokenize", str(corpus), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err == ("codec: error: c/x.flac: cannot list\n" if report else "")
