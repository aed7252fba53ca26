"""Start-up of ``codec tokenize --devices N``: the other local processes, started before the imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from codec.cli import build_parser
from codec.data import launch
from codec.data.cli import child_argv
from codec.data.distributed import env_ranks
from codec.exitcodes import UsageError

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
