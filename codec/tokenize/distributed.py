"""The processes of a tokenize run: one local process, or a DDP process group.

One process needs no group.  Several processes (``--devices N``, ``--num-nodes M``) form a
``torch.distributed`` group (gloo on CPU, NCCL on GPUs) that only carries a few small
messages: the plan's status from rank 0, the totals and the end-of-run barrier.  Who starts
them decides how they meet:

* processes started with the ``env://`` rendezvous in their environment (``LOCAL_RANK``,
  ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``; ``RANK`` or ``NODE_RANK``): the ones
  ``codec tokenize --devices N`` starts itself (:mod:`codec.tokenize.launch`), or ``torchrun``'s,
  join with ``torch.distributed.init_process_group`` directly.  Lightning is not imported:
  its import alone (it pulls in ``torch._dynamo`` and torchmetrics) costs every process
  seconds of CPU, more than a short run's coding, and Fabric would only join the same group;
* anything else (SLURM's ``srun``, or ``--num-nodes`` with one process per node and no
  ``LOCAL_RANK``) is Lightning Fabric's: it reads SLURM's variables (node list, task ids) and
  starts or joins the processes.
"""

from __future__ import annotations

import datetime
import logging
import os
from typing import Any, Protocol

import torch
import torch.distributed as dist  # loaded by `import torch` already

from codec.errors import UsageError

# Launchers that start every process themselves (Fabric then only joins their group): the
# number of processes they started.
_LAUNCHER_VARS = ("SLURM_NTASKS", "WORLD_SIZE")
# The env:// rendezvous of processes started with their ranks (by codec.tokenize.launch, torchrun).
_ENV_VARS = ("LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
# How long a process waits for the others in a collective (rank 0 plans a corpus meanwhile).
_TIMEOUT = datetime.timedelta(hours=2)


class Ranks(Protocol):
    """What a run needs from its process group."""

    rank: int
    world_size: int
    device: torch.device

    def broadcast(self, obj: Any) -> Any: ...
    def gather(self, obj: Any) -> list[Any]: ...
    def sum(self, values: list[float]) -> list[float]: ...
    def barrier(self) -> None: ...
    def close(self) -> None: ...


class LocalRanks:
    """A single process: rank 0 of 1."""

    rank, world_size = 0, 1

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def broadcast(self, obj: Any) -> Any:
        return obj

    def gather(self, obj: Any) -> list[Any]:
        return [obj]

    def sum(self, values: list[float]) -> list[float]:
        return list(values)

    def barrier(self) -> None:
        pass

    def close(self) -> None:
        pass


class _GroupRanks:
    """The collectives of this process's ``torch.distributed`` default group; subclasses form
    the group and set ``rank``, ``world_size`` and ``device``."""

    rank: int
    world_size: int
    device: torch.device

    def broadcast(self, obj: Any) -> Any:
        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj`` (picklable), in rank order, on every process."""
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def sum(self, values: list[float]) -> list[float]:
        # On the process's device: NCCL reduces CUDA tensors only.
        total = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return [float(v) for v in total.cpu()]

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


class TorchRanks(_GroupRanks):
    """Processes of an ``env://`` group (see the module docstring); ``close()`` leaves it."""

    def __init__(self, accelerator: str, rank: int, world_size: int, local_rank: int) -> None:
        self.rank, self.world_size = rank, world_size
        if accelerator == "cuda":
            torch.cuda.set_device(local_rank)
            self.device = torch.device("cuda", local_rank)
        else:
            self.device = torch.device("cpu")
        backend = "nccl" if accelerator == "cuda" else "gloo"
        dist.init_process_group(
            backend,
            init_method="env://",
            rank=rank,
            world_size=world_size,
            timeout=_TIMEOUT,
            device_id=self.device if accelerator == "cuda" else None,  # NCCL: this process's GPU
        )


class FabricRanks(_GroupRanks):
    """Processes of a Lightning Fabric DDP group (see the module docstring): Fabric forms the
    ``torch.distributed`` group, whose collectives are used directly."""

    def __init__(self, accelerator: str, devices: int, num_nodes: int) -> None:
        from lightning.fabric import Fabric
        from lightning.fabric.strategies import DDPStrategy

        # Lightning sets its loggers' levels when imported: quiet them after, so no banners.
        for name in ("lightning.fabric", "lightning.pytorch", "lightning_fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)

        strategy = DDPStrategy(timeout=_TIMEOUT)
        try:
            self.fabric = Fabric(
                accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy
            )
        except (RuntimeError, ValueError) as err:  # Fabric checks the launcher's variables here
            raise UsageError(" ".join(str(err).split())) from None
        self.fabric.launch()
        self.rank, self.world_size = self.fabric.global_rank, self.fabric.world_size
        self.device = self.fabric.device

    def close(self) -> None:
        pass  # Fabric's group lives as long as the process


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
        # One thread per process: with several, the BLAS library may split the inner dimension
        # of a short item's products between threads (not a batch's), and a near-tie in the
        # quantizer can then flip a code (README, Exactness); single-threaded, batched codes
        # equal codes alone by construction.  Cores are used by processes instead (--devices N).
        torch.set_num_threads(1)
    launched = any(os.environ.get(v, "1").strip() not in ("", "1") for v in _LAUNCHER_VARS)
    if devices * num_nodes == 1 and not launched:
        return LocalRanks(torch.device("cuda" if accelerator == "cuda" else "cpu"))
    if all(v in os.environ for v in _ENV_VARS):
        return TorchRanks(accelerator, *env_ranks(devices, num_nodes))
    try:
        return FabricRanks(accelerator, devices, num_nodes)
    except ImportError as err:
        raise UsageError(
            f"a group started by SLURM (or --num-nodes without LOCAL_RANK) needs Lightning "
            f"(pip install 'codec[data]'): {err}"
        ) from None


def env_ranks(
    devices: int, num_nodes: int, environ: dict[str, str] | os._Environ = os.environ
) -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` of a process started with the ``env://`` variables.

    ``RANK`` when the launcher sets it (``torchrun``), else ``NODE_RANK * devices + LOCAL_RANK``
    (:mod:`codec.tokenize.launch`, or set by hand).  Raises ``UsageError`` when they disagree with
    ``--devices``/``--num-nodes``.
    """
    try:
        world_size, local_rank = int(environ["WORLD_SIZE"]), int(environ["LOCAL_RANK"])
        rank = (
            int(environ["RANK"])
            if "RANK" in environ
            else int(environ.get("NODE_RANK", "0")) * devices + local_rank
        )
    except ValueError as err:
        raise UsageError(f"the process group's environment is not a set of integers: {err}") from None
    if world_size != devices * num_nodes:
        raise UsageError(
            f"WORLD_SIZE={world_size} in the environment, but --devices {devices} x --num-nodes {num_nodes}"
            f" is {devices * num_nodes} processes"
        )
    if not (0 <= local_rank < devices and 0 <= rank < world_size):
        raise UsageError(f"rank {rank} (LOCAL_RANK={local_rank}) is outside a group of {world_size}")
    return rank, world_size, local_rank
