"""Start-up of ``codec tokenize --devices N``: the other local processes, started before the imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from codec.cli import build_parser
from codec.exitcodes import UsageError
from codec.tokenize import launch
from codec.tokenize.cli import child_argv
from codec.tokenize.distributed import env_ranks

_ENV = ("LOCAL_RANK", "WORLD_SIZE", "SLURM_NTASKS", "MASTER_ADDR", "MASTER_PORT", "NODE_RANK")


@pytest.fixture
def clean_env(monkeypatch) -> None:
    for name in _ENV:  # set first, so that the test's own changes are undone too
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


@pytest.fixture
def started(monkeypatch) -> list[tuple[list[str], dict[str, str]]]:
    """Records what would be started instead of starting it; no watcher thread."""
    calls: list[tuple[list[str], dict[str, str]]] = []

    class FakeProc:
        def __init__(self, command: list[str], env: dict[str, str]) -> None:
            calls.append((command, env))

    monkeypatch.setattr(launch.subprocess, "Popen", FakeProc)

    class NoThread:
        def __init__(self, **kwargs) -> None:
            pass

        def start(self) -> None:
            pass

    monkeypatch.setattr(launch.threading, "Thread", NoThread)
    return calls


def test_the_other_local_ranks_run_the_same_command(clean_env, started) -> None:
    group = launch.start_local_processes(["tokenize", "in", "-o", "out"], devices=3, num_nodes=1)
    assert len(group.procs) == 2
    assert [env["LOCAL_RANK"] for _, env in started] == ["1", "2"]
    for command, env in started:
        assert command == [sys.executable, "-m", "codec.cli", "tokenize", "in", "-o", "out"]
        assert env["WORLD_SIZE"] == "3" and env["NODE_RANK"] == "0" and env["MASTER_ADDR"] == "127.0.0.1"
    ports = {env["MASTER_PORT"] for _, env in started}
    assert len(ports) == 1 and int(ports.pop()) > 0
    # This process is rank 0 of the same group (Fabric then joins it instead of launching).
    assert launch.os.environ["LOCAL_RANK"] == "0" and launch.launched_externally()


@pytest.mark.parametrize(
    ("env", "devices"),
    [({}, 1), ({"LOCAL_RANK": "1"}, 2), ({"SLURM_NTASKS": "4"}, 2), ({"WORLD_SIZE": "2"}, 2)],
)
def test_nothing_is_started_by_one_process_or_under_a_launcher(
    clean_env, started, monkeypatch, env, devices
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    group = launch.start_local_processes(["tokenize"], devices=devices, num_nodes=1)
    assert group.procs == [] and started == []


def test_several_nodes_start_only_this_nodes_processes(clean_env, started, monkeypatch) -> None:
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    monkeypatch.setenv("NODE_RANK", "1")
    launch.start_local_processes(["tokenize"], devices=2, num_nodes=3)
    [(_, env)] = started
    assert (env["MASTER_ADDR"], env["MASTER_PORT"], env["NODE_RANK"], env["WORLD_SIZE"]) == (
        "10.0.0.1",
        "29500",
        "1",
        "6",
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["tokenize", "a", "b.csv", "-o", "out"],
        ["tokenize", "a", "-o", "out", "--model", "m", "--num-codebooks", "3", "--device", "cpu", "--devices",
         "4", "--num-nodes", "2", "--batch-seconds", "12.5", "--shard-size", "7", "--force", "-q", "--debug"],
    ],
)  # fmt: skip
def test_child_argv_parses_back_to_the_same_arguments(argv) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    again = parser.parse_args(child_argv(args))
    assert {k: v for k, v in vars(again).items() if k != "run"} == {
        k: v for k, v in vars(args).items() if k != "run"
    }


def test_a_failed_process_sets_the_exit_status_and_stop_kills(tmp_path: Path) -> None:
    fail = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    ok = subprocess.Popen([sys.executable, "-c", "pass"])
    assert launch.LocalGroup([ok, fail]).wait(0) == 3
    assert launch.LocalGroup([ok]).wait(0) == 0
    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    group = launch.LocalGroup([slow])
    group.stop()
    assert group.wait(0) == 128 + 9  # SIGKILL


@pytest.mark.parametrize(
    ("env", "devices", "num_nodes", "want"),
    [
        ({"LOCAL_RANK": "1", "WORLD_SIZE": "2"}, 2, 1, (1, 2, 1)),  # started by codec tokenize
        ({"LOCAL_RANK": "1", "WORLD_SIZE": "6", "NODE_RANK": "2"}, 2, 3, (5, 6, 1)),  # node 2 of 3
        ({"LOCAL_RANK": "0", "WORLD_SIZE": "4", "RANK": "3", "NODE_RANK": "0"}, 2, 2, (3, 4, 0)),  # torchrun
    ],
)
def test_ranks_from_the_environment(env, devices, num_nodes, want) -> None:
    assert env_ranks(devices, num_nodes, env) == want


@pytest.mark.parametrize(
    ("env", "match"),
    [
        (
            {"LOCAL_RANK": "0", "WORLD_SIZE": "4"},
            r"WORLD_SIZE=4 in the environment, but --devices 2 x --num-nodes 1",
        ),
        ({"LOCAL_RANK": "2", "WORLD_SIZE": "2"}, r"rank 2 \(LOCAL_RANK=2\) is outside a group of 2"),
        ({"LOCAL_RANK": "x", "WORLD_SIZE": "2"}, "not a set of integers"),
    ],
)
def test_a_wrong_environment_is_a_usage_error(env, match) -> None:
    with pytest.raises(UsageError, match=match):
        env_ranks(2, 1, env)


@pytest.mark.parametrize(("script", "status", "how"), [
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", 137, "was killed by SIGKILL"),
    ("raise SystemExit(3)", 3, "failed (exit status 3)"),
])  # fmt: skip
def test_a_failed_process_ends_the_group_with_one_line(monkeypatch, capsys, script, status, how) -> None:
    ok = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    failed = subprocess.Popen([sys.executable, "-c", script])
    failed.wait()

    class Exited(Exception):
        pass

    def fake_exit(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(launch, "GRACE_SECONDS", 0.0)
    monkeypatch.setattr(launch.os, "_exit", fake_exit)
    with pytest.raises(Exited) as exited:
        launch._watch(launch.LocalGroup([ok, failed]))
    assert exited.value.args == (status,)
    assert ok.wait(10) == -9  # the rest of the group is stopped
    err = capsys.readouterr().err
    assert err == f"codec: error: local rank 2 {how}; rerun the same command to finish\n"


def test_a_group_error_after_a_local_rank_died_names_the_rank(monkeypatch, capsys, tmp_path) -> None:
    """Rank 0 sees a dead peer as its group's error (gloo: "Connection closed by peer"): the
    command reports the process that died, with its status, not the symptom."""
    import codec.tokenize.run
    from codec.tokenize.cli import run_tokenize

    dead = subprocess.Popen([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    dead.wait()

    def lost(opts, **kwargs):
        raise RuntimeError("Connection closed by peer [127.0.0.1]:9633")

    monkeypatch.setattr(codec.tokenize.run, "tokenize", lost)
    args = build_parser().parse_args(["tokenize", str(tmp_path), "-o", str(tmp_path / "out")])
    args.local_group = launch.LocalGroup([dead])
    assert run_tokenize(args) == 137
    assert (
        capsys.readouterr().err
        == "codec: error: local rank 1 was killed by SIGKILL; rerun the same command to finish\n"
    )
    args.local_group = launch.LocalGroup([])  # no process died: the error is the command's own
    with pytest.raises(RuntimeError, match="Connection closed"):
        run_tokenize(args)
