"""Fused residual vector quantization in Triton: encode (all K stages in one kernel) and decode.

The formulation is the one of :mod:`codec.kernels.rvq.reference`.  Encode runs one program per
block of ``BLOCK_N`` frames; the residual ``[BLOCK_N, D]`` stays in registers for all K stages:

    for each stage k:  z = r @ W_k + b_k          (tl.dot; skipped for the euclidean kind)
                       scores = z @ search_k^T - search_bias_k   (tl.dot, BLOCK_S codes at a time,
                                                  running max/argmax, first index wins ties)
                       r -= out_codebooks[k, argmax]            (row gather, from L2)

Only ``x`` is read from and the codes (and optionally the quantized latent) written to memory;
the codebooks are small enough to stay in L2 across programs.  Everything is computed in
float32 whatever the input dtype (bfloat16 inputs are upcast on load, as in the reference), and
``tl.dot`` runs with ``input_precision="ieee"`` by default so the codes match the float32
reference; ``"tf32x3"``/``"tf32"`` trade exactness near ties for tensor-core speed.

Normalising ``z`` (the "cosine" of the factorized quantizer) is skipped: it scales all scores of a
row by one positive factor, which does not move the argmax.  Dimensions that are not powers of two
are padded by masked loads (zeros), never by copies.

Launch on CUDA tensors, or on CPU tensors when ``TRITON_INTERPRET=1`` was set before triton and
this module were first imported (Triton reads it when functions are decorated).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction
from triton.runtime.jit import JITFunction

from codec.kernels.rvq.checks import check_decode_args, check_encode_args

_PRECISIONS = ("ieee", "tf32x3", "tf32")


@dataclass(frozen=True)
class LaunchConfig:
    """Tile sizes for the encode kernel: rows and codes per tile (powers of two), warps, pipeline stages."""

    block_n: int
    block_s: int
    num_warps: int
    num_stages: int = 1


def _pow2(n: int, low: int = 16) -> int:
    return max(low, triton.next_power_of_2(n))


def _search_pad(search_dim: int) -> int:
    # float32 tl.dot needs an inner dimension >= 8 on NVIDIA GPUs (16 for 16-bit inputs; the
    # kernel always feeds float32), so d = 4 or 8 costs no padded FLOPs.
    return _pow2(search_dim, low=8)


def default_config(
    num_rows: int, dim: int, search_dim: int, size: int, interpreted: bool | None = None
) -> LaunchConfig:
    """Heuristic tiles.  On a GPU: keep the ``[BLOCK_N, D]`` residual near 16k floats (registers)
    and the score tile and the euclidean codebook tile near 8k floats; untuned on hardware, the
    benchmark's ``--sweep`` tries alternatives.  Under the CPU interpreter every tile costs
    Python overhead, so tiles are as large as the problem allows.

    Args: num_rows N, dim D, search_dim d, size S of the encode problem; interpreted: plan for
        the interpreter (default: whether this module runs interpreted).
    """
    if INTERPRETED if interpreted is None else interpreted:
        return LaunchConfig(min(256, _pow2(num_rows)), min(512, _pow2(size)), 4)
    d_pad, e_pad = _pow2(dim), _search_pad(search_dim)
    block_n = min(max(16, 16384 // d_pad), 128, _pow2(num_rows))
    # Euclidean search tiles are [BLOCK_S, D]; factorized ones are tiny, so widen them.
    block_s = min(max(16, 8192 // max(e_pad, block_n)), 128, _pow2(size))
    num_warps = 8 if block_n * d_pad >= 8192 else 4
    return LaunchConfig(block_n, block_s, num_warps)


@triton.jit
def _project(
    r,
    w_ptr,
    b_ptr,
    k,
    D,
    E,
    offs_d,
    offs_e,
    D_PAD: tl.constexpr,
    E_PAD: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """``r @ W_k + b_k`` for one block: ``[BLOCK_N, D_PAD] -> [BLOCK_N, E_PAD]`` (padding is zero)."""
    w_mask = (offs_d[:, None] < D) & (offs_e[None, :] < E)
    w = tl.load(w_ptr + k * D * E + offs_d[:, None] * E + offs_e[None, :], mask=w_mask, other=0.0)
    b = tl.load(b_ptr + k * E + offs_e, mask=offs_e < E, other=0.0)
    return tl.dot(r, w.to(tl.float32), input_precision=PRECISION) + b.to(tl.float32)[None, :]


@triton.jit
def _search(
    z,
    search_ptr,
    bias_ptr,
    k,
    S,
    E,
    offs_e,
    BLOCK_N: tl.constexpr,
    BLOCK_S: tl.constexpr,
    E_PAD: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Best score and its code for each row of ``z [BLOCK_N, E_PAD]`` against stage ``k``'s codes."""
    best = tl.full([BLOCK_N], float("-inf"), tl.float32)
    best_idx = tl.zeros([BLOCK_N], dtype=tl.int32)
    offs_s = tl.arange(0, BLOCK_S)
    for s0 in range(0, S, BLOCK_S):
        codes_s = s0 + offs_s
        s_mask = codes_s < S
        c_mask = s_mask[:, None] & (offs_e[None, :] < E)
        c = tl.load(search_ptr + (k * S + codes_s[:, None]) * E + offs_e[None, :], mask=c_mask, other=0.0)
        bias = tl.load(bias_ptr + k * S + codes_s, mask=s_mask, other=0.0).to(tl.float32)
        scores = tl.dot(z, tl.trans(c.to(tl.float32)), input_precision=PRECISION) - bias[None, :]
        scores = tl.where(s_mask[None, :], scores, float("-inf"))
        tile_best, tile_idx = tl.max(scores, axis=1, return_indices=True, return_indices_tie_break_left=True)
        # Strictly greater: on an exact tie the earlier tile (lower code) wins, as torch.argmax.
        better = tile_best > best
        best = tl.where(better, tile_best, best)
        best_idx = tl.where(better, tile_idx + s0, best_idx)
    return best, best_idx


@triton.jit
def _rvq_encode_kernel(
    x_ptr, search_ptr, bias_ptr, out_cb_ptr, w_ptr, b_ptr, codes_ptr, quant_ptr, scores_ptr,
    N, D, E, S, K,
    stride_xn, stride_xd, stride_cn, stride_ck, stride_qn, stride_qd, stride_sn, stride_sk,
    PROJECT: tl.constexpr, WRITE_QUANT: tl.constexpr, WRITE_SCORES: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_S: tl.constexpr, D_PAD: tl.constexpr, E_PAD: tl.constexpr,
    PRECISION: tl.constexpr,
):  # fmt: skip
    """One block of ``BLOCK_N`` rows through all ``K`` stages; see the module docstring."""
    pid = tl.program_id(0)
    offs_n = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    rows = offs_n.to(tl.int64)  # 64-bit offsets: N * D can pass 2**31 at a million frames
    n_mask = offs_n < N
    offs_d = tl.arange(0, D_PAD)
    offs_e = tl.arange(0, E_PAD)
    d_mask = offs_d < D
    x_ptrs = x_ptr + rows[:, None] * stride_xn + offs_d[None, :] * stride_xd
    x_mask = n_mask[:, None] & d_mask[None, :]
    r = tl.load(x_ptrs, mask=x_mask, other=0.0).to(tl.float32)
    for k in range(K):
        if PROJECT:  # noqa: SIM108 (a constexpr branch, resolved at compile time)
            z = _project(r, w_ptr, b_ptr, k, D, E, offs_d, offs_e, D_PAD, E_PAD, PRECISION)
        else:
            z = r
        best, idx = _search(z, search_ptr, bias_ptr, k, S, E, offs_e, BLOCK_N, BLOCK_S, E_PAD, PRECISION)
        tl.store(codes_ptr + rows * stride_cn + k * stride_ck, idx.to(tl.int64), mask=n_mask)
        if WRITE_SCORES:
            tl.store(scores_ptr + rows * stride_sn + k * stride_sk, best, mask=n_mask)
        cw_ptrs = out_cb_ptr + (k * S + idx[:, None]).to(tl.int64) * D + offs_d[None, :]
        r -= tl.load(cw_ptrs, mask=d_mask[None, :], other=0.0).to(tl.float32)
    if WRITE_QUANT:
        # x - r (x reloaded rather than kept in registers): the same float32 ops as the reference.
        x = tl.load(x_ptrs, mask=x_mask, other=0.0).to(tl.float32)
        q_ptrs = quant_ptr + rows[:, None] * stride_qn + offs_d[None, :] * stride_qd
        tl.store(q_ptrs, x - r, mask=x_mask)


@triton.jit
def _rvq_decode_kernel(
    codes_ptr, out_cb_ptr, out_ptr, N, D, S, K, stride_cn, stride_ck, stride_on, stride_od,
    BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """``out[n] = sum_k out_codebooks[k, codes[n, k]]`` for a ``[BLOCK_N, BLOCK_D]`` tile."""
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    rows = offs_n.to(tl.int64)
    n_mask = offs_n < N
    d_mask = offs_d < D
    acc = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    for k in range(K):
        idx = tl.load(codes_ptr + rows * stride_cn + k * stride_ck, mask=n_mask, other=0)
        # Out-of-range codes read nothing (zero) instead of stray memory.
        ok = n_mask & (idx >= 0) & (idx < S)
        cw_ptrs = out_cb_ptr + (k * S + idx[:, None]).to(tl.int64) * D + offs_d[None, :]
        acc += tl.load(cw_ptrs, mask=ok[:, None] & d_mask[None, :], other=0.0).to(tl.float32)
    out_ptrs = out_ptr + rows[:, None] * stride_on + offs_d[None, :] * stride_od
    tl.store(out_ptrs, acc, mask=n_mask[:, None] & d_mask[None, :])


# Triton reads TRITON_INTERPRET when @triton.jit decorates a function: its own library functions
# (tl.zeros, tl.max, ...) when triton is first imported, ours when this module is.  Both must
# have seen it for the interpreter to work.
INTERPRETED = isinstance(_rvq_encode_kernel, InterpretedFunction)
_LIBRARY_COMPILED = isinstance(getattr(tl, "zeros", None), JITFunction)


def _check_device(*tensors: torch.Tensor | None) -> None:
    """CPU tensors need the interpreter, set up before triton was first imported."""
    if all(t is None or t.is_cuda for t in tensors):
        return
    if not INTERPRETED:
        raise RuntimeError(
            "the Triton RVQ kernels need CUDA tensors; for CPU tensors set TRITON_INTERPRET=1 before "
            "triton and codec.kernels.rvq.triton are first imported, or use CODEC_KERNELS=reference"
        )
    if _LIBRARY_COMPILED:
        raise RuntimeError(
            "TRITON_INTERPRET=1 was set after triton itself was imported; set it before the first import"
        )


def _out(
    given: torch.Tensor | None, shape: tuple[int, ...], dtype: torch.dtype, like: torch.Tensor, name: str
) -> torch.Tensor:
    """The caller's output buffer (checked) or a fresh uninitialised one."""
    if given is None:
        return torch.empty(shape, dtype=dtype, device=like.device)
    if tuple(given.shape) != shape or given.dtype != dtype or given.device != like.device:
        raise ValueError(
            f"{name} must be {dtype} of shape {list(shape)} on {like.device}, "
            f"got {given.dtype} {list(given.shape)} on {given.device}"
        )
    return given


def rvq_encode(
    x: torch.Tensor,
    search: torch.Tensor,
    search_bias: torch.Tensor,
    out_codebooks: torch.Tensor,
    in_weight: torch.Tensor | None = None,
    in_bias: torch.Tensor | None = None,
    return_quantized: bool = False,
    *,
    codes_out: torch.Tensor | None = None,
    quantized_out: torch.Tensor | None = None,
    scores_out: torch.Tensor | None = None,
    precision: str = "ieee",
    config: LaunchConfig | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Fused RVQ encode; arguments and results as :func:`codec.kernels.rvq.reference.rvq_encode`.

    Keyword-only extras:
        codes_out, quantized_out: ``[N, K]`` int64 / ``[N, D]`` float32 buffers to write into
            (any strides); fresh ones otherwise.
        scores_out: ``[N, K]`` float32, receives each stage's winning score (for tie analysis).
        precision: ``tl.dot`` input precision, ``"ieee"`` (exact float32, default), ``"tf32x3"``
            or ``"tf32"`` (faster on tensor cores, may flip near-ties).
        config: tile sizes; :func:`default_config` otherwise.
    Returns:
        codes ``[N, K]`` int64 and the quantized latent ``[N, D]`` float32 (or None).
    """
    check_encode_args(x, search, search_bias, out_codebooks, in_weight, in_bias)
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    _check_device(x, search, search_bias, out_codebooks, in_weight, in_bias)
    (n, dim), (stages, size, search_dim) = x.shape, search.shape
    codes = _out(codes_out, (n, stages), torch.int64, x, "codes_out")
    quantized = _out(quantized_out, (n, dim), torch.float32, x, "quantized_out") if return_quantized else None
    scores = _out(scores_out, (n, stages), torch.float32, x, "scores_out") if scores_out is not None else None
    if n == 0:
        return codes, quantized
    cfg = config or default_config(n, dim, search_dim, size)
    search, search_bias, out_codebooks = (
        search.contiguous(),
        search_bias.contiguous(),
        out_codebooks.contiguous(),
    )
    project = in_weight is not None
    # Unused pointer slots get a real tensor; the constexpr flags keep the kernel off them.
    w = in_weight.contiguous() if project else search
    b = in_bias.contiguous() if project else search
    q_arg = quantized if quantized is not None else x
    s_arg = scores if scores is not None else codes
    _rvq_encode_kernel[(triton.cdiv(n, cfg.block_n),)](
        x, search, search_bias, out_codebooks, w, b, codes, q_arg, s_arg,
        n, dim, search_dim, size, stages,
        x.stride(0), x.stride(1), codes.stride(0), codes.stride(1),
        q_arg.stride(0), q_arg.stride(1), s_arg.stride(0), s_arg.stride(1),
        PROJECT=project, WRITE_QUANT=quantized is not None, WRITE_SCORES=scores is not None,
        BLOCK_N=cfg.block_n, BLOCK_S=cfg.block_s, D_PAD=_pow2(dim), E_PAD=_search_pad(search_dim),
        PRECISION=precision, num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )  # fmt: skip
    return codes, quantized


def rvq_decode(
    codes: torch.Tensor,
    out_codebooks: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
    block_n: int | None = None,
    block_d: int = 128,
) -> torch.Tensor:
    """Fused RVQ decode: summed codewords ``[N, D]`` float32 for codes ``[N, K]`` in one pass.

    Args:
        codes: ``[N, K]`` integer codes, ``K <= out_codebooks.shape[0]`` (the first K stages).
        out_codebooks: ``[K', S, D]``.
        out: optional ``[N, D]`` float32 buffer to write into.
        block_n, block_d: tile sizes (powers of two); block_n defaults to 32 on a GPU and to
            the whole problem (up to 256 rows) under the interpreter.
    Returns:
        ``[N, D]`` float32; codes outside ``[0, S)`` contribute zero, as the reference specifies.
    """
    check_decode_args(codes, out_codebooks)
    _check_device(codes, out_codebooks)
    (n, stages), (size, dim) = codes.shape, out_codebooks.shape[1:]
    result = _out(out, (n, dim), torch.float32, out_codebooks, "out")
    if n == 0:
        return result
    table = out_codebooks.contiguous()
    if block_n is None:
        block_n = min(256, _pow2(n)) if INTERPRETED else 32
    block_d = min(block_d, _pow2(dim))
    grid = (triton.cdiv(n, block_n), triton.cdiv(dim, block_d))
    _rvq_decode_kernel[grid](
        codes, table, result, n, dim, size, stages,
        codes.stride(0), codes.stride(1), result.stride(0), result.stride(1),
        BLOCK_N=block_n, BLOCK_D=block_d,
    )  # fmt: skip
    return result
