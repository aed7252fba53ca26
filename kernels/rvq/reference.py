"""Residual vector quantization in plain PyTorch: the ground truth for the Triton kernels.

One formulation covers both quantizer kinds.  Stage ``k`` of ``K``:

    z_k   = r_k @ in_weight[k] + in_bias[k]      (skipped when in_weight is None)
    i_k   = argmax_s  z_k . search[k, s] - search_bias[k, s]
    r_k+1 = r_k - out_codebooks[k, i_k]

* factorized (DAC): ``search`` holds the L2-normalised codes and ``search_bias`` is zero, so
  the argmax is the nearest code by cosine (normalising ``z_k`` does not change the argmax);
  ``out_codebooks[k] = out_proj_k(raw codes)`` are the codes already projected back.
* euclidean (EnCodec/Mimi): no projection, ``search = out_codebooks = codes`` and
  ``search_bias = |c|^2 / 2``, so the argmax is the nearest code by L2 distance.

The quantized latent is ``x - r_K``, the sum of the chosen ``out_codebooks`` rows.

Decoding sums ``out_codebooks[k, codes[:, k]]`` over the stages given.  A code outside
``[0, S)`` contributes zero: it is never read as another stage's row or as stray memory.
Code values are not validated by the kernels (that would make a GPU wait on every call);
callers that take codes from outside check them first (``codec.streaming.check_codes``).
This is the specification for every backend.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EncodeStages:
    """The per-stage float32 views :func:`encode_stages` works on (see :func:`prepare_encode`).

    Built once per set of weights by a caller that encodes many times (a streaming quantizer):
    at one frame per call, re-deriving them costs as much as a third of the search.
    """

    neg_bias: tuple[torch.Tensor | None, ...]  # [S] each, or None where the bias is all zero
    search_t: tuple[torch.Tensor, ...]  # [d, S] each
    out_codebooks: tuple[torch.Tensor, ...]  # [S, D] each
    proj: tuple[torch.Tensor | None, ...]  # [D, d] each, or None
    proj_bias: tuple[torch.Tensor | None, ...]  # [d] each, or None

    def __len__(self) -> int:
        return len(self.neg_bias)

    def head(self, stages: int) -> EncodeStages:
        """The first ``stages`` stages."""
        if stages == len(self):
            return self
        return EncodeStages(*(getattr(self, f.name)[:stages] for f in dataclasses.fields(self)))


def prepare_encode(
    search: torch.Tensor,
    search_bias: torch.Tensor,
    out_codebooks: torch.Tensor,
    in_weight: torch.Tensor | None = None,
    in_bias: torch.Tensor | None = None,
) -> EncodeStages:
    """Per-stage views of the arguments of :func:`rvq_encode` (shapes as there)."""
    stages = search.shape[0]
    if in_weight is None:
        proj: tuple[torch.Tensor | None, ...] = (None,) * stages
        proj_bias: tuple[torch.Tensor | None, ...] = (None,) * stages
    else:
        proj, proj_bias = in_weight.float().unbind(0), in_bias.float().unbind(0)
    # An all-zero bias (factorized) is left out: the product alone has the same scores, without
    # first filling the scores with the bias (a third of a block's product on a CPU).
    neg_bias = tuple(None if not b.any() else b for b in search_bias.float().neg().unbind(0))
    return EncodeStages(
        neg_bias,
        search.float().transpose(1, 2).unbind(0),
        out_codebooks.float().unbind(0),
        proj,
        proj_bias,
    )


# On a CPU, rows are searched in blocks of this many: a block's scores ([rows, S] float32,
# 1 MiB at S = 1024) stay in the core's cache from the product to the max, where a whole
# batch's would go through memory.  Each row's arithmetic is the same in any block, so codes
# do not depend on it.  With the max, mm and index_select of _encode_rows, the bundled model's
# search runs 1.7x faster on 3,000 rows, 2x on 50 and 1.2x on one (a streamed frame) than a
# whole-batch argmax loop, on one thread of a 2-core Xeon VM, with the same codes.
SEARCH_ROWS = 256


def encode_stages(
    x: torch.Tensor, stages: EncodeStages, return_quantized: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`rvq_encode` on prepared stages: codes ``[N, K]`` int64 and, optionally, the
    quantized latent ``[N, D]`` float32 for latents ``x [N, D]``."""
    x = x.float()
    n = x.shape[0]
    if x.device.type != "cpu" or n <= SEARCH_ROWS:
        return _encode_rows(x, stages, return_quantized)
    parts = [_encode_rows(x[i : i + SEARCH_ROWS], stages, return_quantized) for i in range(0, n, SEARCH_ROWS)]
    codes = torch.cat([c for c, _ in parts])
    return codes, torch.cat([q for _, q in parts]) if return_quantized else None


def _encode_rows(
    x: torch.Tensor, stages: EncodeStages, return_quantized: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Every stage for float32 rows ``x [n, D]``."""
    cpu = x.device.type == "cpu"
    r = x
    codes = []
    for k in range(len(stages)):
        proj = stages.proj[k]
        z = r if proj is None else torch.addmm(stages.proj_bias[k], r, proj)
        bias = stages.neg_bias[k]
        scores = torch.mm(z, stages.search_t[k]) if bias is None else torch.addmm(bias, z, stages.search_t[k])
        # The first best score on ties, as argmax; max(dim) is about 3x faster on a CPU batch.
        idx = scores.max(dim=-1).indices if cpu and x.shape[0] > 1 else scores.argmax(dim=-1)
        codes.append(idx)
        r = r - stages.out_codebooks[k].index_select(0, idx)  # 3x faster than [idx] on a CPU
    return torch.stack(codes, dim=1), x - r if return_quantized else None


def rvq_encode(
    x: torch.Tensor,
    search: torch.Tensor,
    search_bias: torch.Tensor,
    out_codebooks: torch.Tensor,
    in_weight: torch.Tensor | None = None,
    in_bias: torch.Tensor | None = None,
    return_quantized: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Args:
        x: latents ``[N, D]``.
        search: ``[K, S, d]`` codes compared against the projected residual.
        search_bias: ``[K, S]`` subtracted from the scores.
        out_codebooks: ``[K, S, D]`` what each code subtracts from the residual.
        in_weight, in_bias: ``[K, D, d]`` and ``[K, d]`` input projections, or None (no projection).
        return_quantized: also return the quantized latent.
    Returns:
        codes ``[N, K]`` int64 and the quantized latent ``[N, D]`` float32 (or None).
    """
    stages = prepare_encode(search, search_bias, out_codebooks, in_weight, in_bias)
    return encode_stages(x, stages, return_quantized)


# Inputs up to this many values ([N, K, D]) are decoded with one gather and one sum instead
# of K of each: at one frame per call (streaming) the per-op overhead is most of the cost.
_ONE_GATHER = 1 << 20


@dataclass(frozen=True)
class DecodeTable:
    """Every stage's codewords in one ``[K * S + 1, D]`` float32 table whose last row is zero,
    and each stage's first row ``[K]``: a code is one row, a code outside ``[0, S)`` the zero row.
    Built once per set of weights by :func:`prepare_decode`."""

    rows: torch.Tensor
    offsets: torch.Tensor
    size: int

    @property
    def zero_row(self) -> int:
        return self.rows.shape[0] - 1


def prepare_decode(out_codebooks: torch.Tensor) -> DecodeTable:
    """The :class:`DecodeTable` of ``out_codebooks [K, S, D]``."""
    stages, size, dim = out_codebooks.shape
    rows = torch.cat(
        [out_codebooks.float().reshape(-1, dim), out_codebooks.new_zeros(1, dim, dtype=torch.float32)]
    )
    offsets = torch.arange(stages, device=out_codebooks.device) * size
    return DecodeTable(rows, offsets, size)


def decode_table(codes: torch.Tensor, table: DecodeTable) -> torch.Tensor:
    """:func:`rvq_decode` for small inputs, on a prepared table: codes ``[N, K]`` -> ``[N, D]``."""
    codes = codes.long()
    outside = torch.floor_divide(codes, table.size) != 0  # below 0 or at/after S
    index = torch.where(outside, table.zero_row, codes + table.offsets[: codes.shape[1]])
    return table.rows[index].sum(1)


def rvq_decode(
    codes: torch.Tensor, out_codebooks: torch.Tensor, table: DecodeTable | None = None
) -> torch.Tensor:
    """Args: codes ``[N, K]`` (K <= stages in out_codebooks); out_codebooks ``[K', S, D]``;
    table: ``out_codebooks`` prepared by :func:`prepare_decode`, used for small inputs (built
    here when not given).

    Returns the summed codewords ``[N, D]`` float32 (codes outside ``[0, S)`` add zero).
    """
    n, num_stages = codes.shape
    size, dim = out_codebooks.shape[1], out_codebooks.shape[2]
    if n * num_stages * dim <= _ONE_GATHER:
        return decode_table(codes, table or prepare_decode(out_codebooks[:num_stages]))
    table = out_codebooks[:num_stages].float()
    valid = (codes >= 0) & (codes < size)
    codes = torch.where(valid, codes, 0).long()
    out = torch.zeros(n, dim, device=codes.device, dtype=torch.float32)
    for k in range(num_stages):
        out += torch.where(valid[:, k, None], table[k][codes[:, k]], 0.0)
    return out
