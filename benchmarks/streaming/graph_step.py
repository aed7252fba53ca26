"""One streaming step (encode one frame, decode its codes) as a replayable CUDA graph.

N concurrent streams are one batch of N: a step takes ``[N, hop]`` samples and returns
``[N, K, 1]`` codes and ``[N, hop]`` samples.  The model's layers replace their state tensors
(``state.tail = new``) rather than writing into them, which a CUDA graph cannot replay: the
graph would keep reading the first buffers.  :class:`StreamStep` therefore keeps one fixed
buffer per state tensor and, at the end of each step, copies the new state into it and puts
the fixed buffer back in place, so every replay reads and writes the same memory.

The same step runs eagerly (``graph=False``), on any device: that is how it is checked on a
machine without a GPU.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from codec.model import CodecModel

# (container, key): a dataclass and a field name, or a list and an index.
Slot = tuple[Any, Any]


def state_slots(state: object) -> list[Slot]:
    """Every tensor of a nested state (dataclasses and lists), as assignable slots."""
    slots: list[Slot] = []
    if dataclasses.is_dataclass(state):
        items: list[Slot] = [(state, f.name) for f in dataclasses.fields(state)]
    elif isinstance(state, list):
        items = [(state, i) for i in range(len(state))]
    else:
        return slots
    for container, key in items:
        value = getattr(container, key) if isinstance(key, str) else container[key]
        if isinstance(value, torch.Tensor):
            slots.append((container, key))
        else:
            slots.extend(state_slots(value))
    return slots


def _get(slot: Slot) -> torch.Tensor:
    container, key = slot
    return getattr(container, key) if isinstance(key, str) else container[key]


def _set(slot: Slot, value: torch.Tensor) -> None:
    container, key = slot
    if isinstance(key, str):
        setattr(container, key, value)
    else:
        container[key] = value


class StreamStep:
    """A fixed-address streaming step for ``batch`` streams of ``model``.

    Args:
        model: a causal model in eval mode, on its device.
        batch: number of concurrent streams N.
        num_codebooks: codebooks per frame (default: all).
        graph: capture the step as a CUDA graph (CUDA devices only).
    """

    def __init__(self, model: CodecModel, batch: int, num_codebooks: int | None = None, graph: bool = False):
        param = next(model.parameters())
        self.model, self.k = model, num_codebooks or model.quantizer.total_codebooks
        self.enc = model.encoder.init_state(batch, param.device, param.dtype)
        self.dec = model.decoder.init_state(batch, param.device, param.dtype)
        self.slots = state_slots(self.enc) + state_slots(self.dec)
        self.buffers = [_get(s) for s in self.slots]
        self.wav_in = torch.zeros(batch, model.hop_length, device=param.device, dtype=param.dtype)
        self.graph: torch.cuda.CUDAGraph | None = None
        if graph:
            self._capture()

    @torch.inference_mode()
    def _eager(self) -> tuple[torch.Tensor, torch.Tensor]:
        codes = self.model.encode(self.wav_in, self.k, self.enc)
        wav = self.model.decode(codes, self.dec)
        for slot, buf in zip(self.slots, self.buffers, strict=True):
            new = _get(slot)
            if new is not buf:
                buf.copy_(new)
                _set(slot, buf)
        return codes, wav

    def _capture(self) -> None:
        # Warm up on a side stream (lazy init, kernel autotuning) as CUDA graphs require,
        # then reset the state so the captured graph starts from silence.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._eager()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out_codes, self.out_wav = self._eager()
        self.reset()

    def reset(self) -> None:
        """Zero every stream's state (the buffers keep their addresses)."""
        for buf in self.buffers:
            buf.zero_()

    def __call__(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: wav ``[N, hop]``. Returns codes ``[N, K, 1]`` and audio ``[N, hop]`` (lagging by hop)."""
        self.wav_in.copy_(wav)
        if self.graph is None:
            return self._eager()
        self.graph.replay()
        return self.out_codes, self.out_wav
