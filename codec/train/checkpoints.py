"""Checkpoints of a training run: ``stepNNNNNNN.ckpt`` every N generator steps and at the end,
the newest ``keep_last`` of them kept, and ``last.ckpt`` always the newest step.

Lightning's ``ModelCheckpoint`` versions a ``last.ckpt`` it did not write itself (a resumed run
left ``last.ckpt`` at the old step and wrote ``last-v1.ckpt``, ``last-v2.ckpt``), and keeps its
``keep_last`` bookkeeping in memory only (a resumed run never pruned the files of the runs
before it).  This callback owns both:

* every step file is written under a temporary name and renamed, so a kill never leaves half
  a checkpoint under a step's name;
* ``last.ckpt`` is then replaced, atomically, by a hard link to (or, where the file system has
  none, a copy of) the step just written: after any run, resumed or not, it is the newest step;
* pruning looks at the step files on disk: the ones this run wrote are the newest (newest
  last), then the earlier ones by step, so ``keep_last`` holds across resumes.  Resuming from
  an older checkpoint trains its later steps again and replaces their files.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

LAST = "last.ckpt"
_STEP = re.compile(r"step(\d{7,})\.ckpt")
_PART = ".part"


def step_file(step: int) -> str:
    return f"step{step:07d}.ckpt"


class StepCheckpoints(Callback):
    """Args:
    dirpath: the run's ``checkpoints`` folder.
    every_n_steps: save when the generator step count is a multiple of it (and at the end).
    keep_last: step files kept (the newest); a negative value keeps all, 0 only ``last.ckpt``.
    """

    def __init__(self, dirpath: Path, every_n_steps: int, keep_last: int) -> None:
        self.dirpath, self.every_n_steps, self.keep_last = Path(dirpath), every_n_steps, keep_last
        self._saved_step = -1
        self._written: list[str] = []  # step files this run wrote, oldest first

    @property
    def state_key(self) -> str:
        return "StepCheckpoints"

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and self.dirpath.is_dir():
            for leftover in self.dirpath.glob(f".*{_PART}"):  # a killed save's
                leftover.unlink(missing_ok=True)

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        step = trainer.global_step
        if step > 0 and step % self.every_n_steps == 0 and step != self._saved_step:
            self.save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run stopped by max_steps or max_time between two grid points keeps its last steps.
        if trainer.global_step > 0 and trainer.global_step != self._saved_step:
            self.save(trainer)

    def save(self, trainer: L.Trainer) -> Path:
        """Write this step's checkpoint (every process must call it), point ``last.ckpt`` at it, prune."""
        step = trainer.global_step
        path = self.dirpath / step_file(step)
        part = self.dirpath / f".{path.name}{_PART}"
        trainer.save_checkpoint(part)  # collective; the global-zero process writes the file
        self._saved_step = step
        if trainer.is_global_zero:
            os.replace(part, path)
            _replace_by_link(path, self.dirpath / LAST)
            if path.name in self._written:
                self._written.remove(path.name)
            self._written.append(path.name)
            self.prune()
        return path

    def prune(self) -> list[Path]:
        """Remove all but the newest ``keep_last`` step files (module docstring); returns them."""
        if self.keep_last < 0:
            return []
        files = [p for p in self.dirpath.iterdir() if _STEP.fullmatch(p.name)]

        def newness(p: Path) -> tuple[int, int]:
            mine = p.name in self._written
            return (1, self._written.index(p.name)) if mine else (0, int(_STEP.fullmatch(p.name).group(1)))

        files.sort(key=newness)
        old = files[: max(len(files) - self.keep_last, 0)]
        for p in old:
            p.unlink(missing_ok=True)
        return old


def _replace_by_link(source: Path, target: Path) -> None:
    """``target`` becomes ``source``'s contents in one rename (a hard link, else a copy)."""
    tmp = target.with_name(f".{target.name}{_PART}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    try:
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
