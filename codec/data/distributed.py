"""The processes of a tokenize run: one local process, or a Lightning Fabric DDP group.

One process needs no process group, so it does not import Lightning (several seconds at
start-up).  Several processes (``--devices N``, ``--num-nodes M``) are Lightning's: Fabric
starts the local processes itself (re-running the same command with ``LOCAL_RANK`` set), and
takes ranks and the rendezvous from the environment when a launcher already started them:
SLURM (``srun``), ``torchrun``, or ``MASTER_ADDR``/``MASTER_PORT``/``NODE_RANK`` by hand.  The
group (gloo on CPU, NCCL on GPUs) only carries a few small messages: the plan's status from
rank 0, the end-of-run barrier and the totals.
"""

from __future__ import annotations

import datetime
import logging
import os
from typing import Any, Protocol

import torch

from codec.exitcodes import UsageError

# Launchers that start every process themselves (Fabric then only joins their group): the
# number of processes they started.
_LAUNCHER_VARS = ("SLURM_NTASKS", "WORLD_SIZE")


class Ranks(Protocol):
    """What a run needs from its process group."""

    rank: int
    world_size: int
    device: torch.device

    def broadcast(self, obj: Any) -> Any: ...
    def sum(self, values: list[float]) -> list[float]: ...
    def barrier(self) -> None: ...


class LocalRanks:
    """A single process: rank 0 of 1."""

    rank, world_size = 0, 1

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def broadcast(self, obj: Any) -> Any:
        return obj

    def sum(self, values: list[float]) -> list[float]:
        return list(values)

    def barrier(self) -> None:
        pass


class FabricRanks:
    """Processes of a Lightning Fabric DDP group (see the module docstring)."""

    def __init__(self, accelerator: str, devices: int, num_nodes: int) -> None:
        from lightning.fabric import Fabric
        from lightning.fabric.strategies import DDPStrategy

        # Lightning sets its loggers' levels when imported: quiet them after, so no banners.
        for name in ("lightning.fabric", "lightning.pytorch", "lightning_fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)

        strategy = DDPStrategy(timeout=datetime.timedelta(hours=2))
        self.fabric = Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy)
        self.fabric.launch()
        self.rank, self.world_size = self.fabric.global_rank, self.fabric.world_size
        self.device = self.fabric.device

    def broadcast(self, obj: Any) -> Any:
        return self.fabric.broadcast(obj, src=0)

    def sum(self, values: list[float]) -> list[float]:
        # On the process's device: NCCL reduces CUDA tensors only.
        values_t = torch.tensor(values, dtype=torch.float64, device=self.device)
        total = self.fabric.all_reduce(values_t, reduce_op="sum")
        return [float(v) for v in total.cpu()]

    def barrier(self) -> None:
        self.fabric.barrier()


def start(device: str, devices: int, num_nodes: int) -> Ranks:
    """The processes for ``--device``, ``--devices`` and ``--num-nodes`` (this one is one of them).

    Args:
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA when available).
        devices: processes (one device each) per node.
        num_nodes: nodes.
    Raises ``UsageError`` for CUDA on a machine without it.
    """
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    accelerator = "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"
    if accelerator == "cuda" and devices > torch.cuda.device_count():
        raise UsageError(f"--devices {devices}: only {torch.cuda.device_count()} CUDA devices here")
    if accelerator == "cpu":
        # One thread per process: with several, the CPU kernels split a batch's work in ways
        # that change float summation order with the batch's shape, and a near-tie in the
        # quantizer can then flip a code (measured: 1 file in 100 of LibriSpeech with the
        # bundled model); single-threaded, batched codes equal codes alone.  Cores are used
        # by processes instead (--devices N).
        torch.set_num_threads(1)
    launched = any(os.environ.get(v, "1").strip() not in ("", "1") for v in _LAUNCHER_VARS)
    if devices * num_nodes == 1 and not launched:
        return LocalRanks(torch.device("cuda" if accelerator == "cuda" else "cpu"))
    try:
        return FabricRanks(accelerator, devices, num_nodes)
    except ImportError as err:
        raise UsageError(f"several processes need Lightning (pip install 'codec[data]'): {err}") from None
