"""The implementations timed by ``benchmarks/kernels/rvq.py``: ours and the peers' quantizers.

Each builder takes a :class:`Shape`, the frame count and the device, and returns a zero-argument
callable that encodes ``N`` frames (inputs are prepared outside the callable, in each
implementation's native layout), or raises :class:`Unavailable` with the reason it cannot run.
Peers are built with random weights of the same shapes (the compute does not depend on the
values) and run in eval mode under ``torch.no_grad``.  They live in a separate environment and
are never dependencies of ``codec``.  From the repository root (``benchmarks/.venv`` is an
ignored folder inside the repository; any other folder works as well)::

    python3 -m venv benchmarks/.venv
    benchmarks/.venv/bin/pip install torch==2.14.1 torchaudio==2.11.0 vector-quantize-pytorch==1.32.0 \
        encodec==0.1.1 descript-audio-codec==1.0.0 -e .
    benchmarks/.venv/bin/python benchmarks/kernels/rvq.py --device cpu --quick

What each peer computes for the same shape:
* vector-quantize-pytorch ``ResidualVQ``: euclidean as ours; for the factorized shape,
  ``codebook_dim=d, use_cosine_sim=True``, whose in/out projection is shared by all stages
  (one projection instead of K: less work than ours and DAC's).
* DAC ``ResidualVectorQuantize`` (factorized only): per-stage weight-normalised projections,
  L2-normalised codes, as ours; its forward also computes the losses and the quantized latent.
* EnCodec ``ResidualVectorQuantizer`` (euclidean only): ``vq.encode``, codes only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from codec.kernels.rvq import reference


class Unavailable(Exception):
    """An implementation that cannot run here (package missing, shape not supported)."""


@dataclass(frozen=True)
class Shape:
    """One quantizer: kind, latent dim D, search dim d (= D for euclidean), size S, stages K."""

    name: str
    kind: str
    dim: int
    code_dim: int
    size: int
    stages: int


@dataclass
class Packed:
    """Our packed tensors for a shape (the arguments of ``rvq_encode`` after ``x``)."""

    search: torch.Tensor
    search_bias: torch.Tensor
    out_codebooks: torch.Tensor
    in_weight: torch.Tensor | None
    in_bias: torch.Tensor | None

    def args(self) -> tuple:
        return (self.search, self.search_bias, self.out_codebooks, self.in_weight, self.in_bias)


def pack(shape: Shape, device: str, seed: int = 0) -> Packed:
    """Random quantizer tensors in our packed layout (factorized: DAC-like; euclidean: EnCodec-like)."""
    g = torch.Generator().manual_seed(seed)
    k, s, d, dim = shape.stages, shape.size, shape.code_dim, shape.dim
    if shape.kind == "factorized":
        raw = torch.randn(k, s, d, generator=g)
        out_cb = torch.einsum("ksc,kcd->ksd", raw, torch.randn(k, d, dim, generator=g) / d**0.5)
        t = (
            F.normalize(raw, dim=-1),
            torch.zeros(k, s),
            out_cb,
            torch.randn(k, dim, d, generator=g) / dim**0.5,
        )
        t = (*t, 0.1 * torch.randn(k, d, generator=g))
    else:
        codes = 0.5 * torch.randn(k, s, dim, generator=g)
        t = (codes, 0.5 * codes.pow(2).sum(-1), codes, None, None)
    return Packed(*(None if x is None else x.to(device) for x in t))


def latents(shape: Shape, frames: int, device: str) -> torch.Tensor:
    return torch.randn(frames, shape.dim, generator=torch.Generator().manual_seed(1)).to(device)


def build_ours(backend: str, precision: str = "ieee") -> Callable:
    """``backend``: ``triton``, ``reference`` or ``compiled`` (``torch.compile`` of the reference)."""

    def build(shape: Shape, frames: int, device: str) -> Callable[[], object]:
        x, p = latents(shape, frames, device), pack(shape, device)
        if backend == "triton":
            if device != "cuda":
                raise Unavailable("needs a CUDA GPU (interpreter timings on the CPU mean nothing)")
            from codec.kernels.rvq import triton as rvq_triton

            return lambda: rvq_triton.rvq_encode(x, *p.args(), precision=precision)
        fn = reference.rvq_encode if backend == "reference" else compiled_reference()
        return lambda: fn(x, *p.args())

    return build


_COMPILED: list[Callable] = []


def compiled_reference() -> Callable:
    """``torch.compile`` of the reference, allowed to specialise on every benchmarked shape."""
    if not _COMPILED:
        import torch._dynamo

        # One graph per (shape, frames): raise the recompile cap so none falls back to eager.
        for name in ("recompile_limit", "cache_size_limit"):
            if hasattr(torch._dynamo.config, name):
                setattr(torch._dynamo.config, name, 4096)
        _COMPILED.append(torch.compile(reference.rvq_encode, dynamic=False))
    return _COMPILED[0]


def build_vqp(shape: Shape, frames: int, device: str) -> Callable[[], object]:
    try:
        from vector_quantize_pytorch import ResidualVQ
    except ImportError as err:
        raise Unavailable("vector-quantize-pytorch is not installed") from err
    kwargs = {"codebook_dim": shape.code_dim, "use_cosine_sim": True} if shape.kind == "factorized" else {}
    rvq = ResidualVQ(dim=shape.dim, num_quantizers=shape.stages, codebook_size=shape.size, **kwargs)
    rvq = rvq.to(device).eval()
    x = latents(shape, frames, device)[None]  # [1, N, D]
    return lambda: rvq(x)


def build_dac(shape: Shape, frames: int, device: str) -> Callable[[], object]:
    if shape.kind != "factorized":
        raise Unavailable("DAC's quantizer is factorized only")
    try:
        from dac.nn.quantize import ResidualVectorQuantize
    except ImportError as err:
        raise Unavailable("descript-audio-codec is not installed") from err
    rvq = ResidualVectorQuantize(
        input_dim=shape.dim,
        n_codebooks=shape.stages,
        codebook_size=shape.size,
        codebook_dim=shape.code_dim,
        quantizer_dropout=0.0,
    )
    rvq = rvq.to(device).eval()
    x = latents(shape, frames, device).T[None].contiguous()  # [1, D, N]
    return lambda: rvq(x)


def build_encodec(shape: Shape, frames: int, device: str) -> Callable[[], object]:
    if shape.kind != "euclidean":
        raise Unavailable("EnCodec's quantizer is euclidean only")
    try:
        from encodec.quantization import ResidualVectorQuantizer
    except ImportError as err:
        raise Unavailable("encodec is not installed") from err
    rvq = ResidualVectorQuantizer(dimension=shape.dim, n_q=shape.stages, bins=shape.size, kmeans_init=False)
    rvq = rvq.to(device).eval()
    x = latents(shape, frames, device).T[None].contiguous()  # [1, D, N]
    return lambda: rvq.vq.encode(x, n_q=shape.stages)


IMPLS: dict[str, Callable] = {
    "triton": build_ours("triton"),
    "triton-tf32x3": build_ours("triton", precision="tf32x3"),
    "reference": build_ours("reference"),
    "torch.compile(reference)": build_ours("compiled"),
    "vector-quantize-pytorch": build_vqp,
    "dac": build_dac,
    "encodec": build_encodec,
}
