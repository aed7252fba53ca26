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

import torch


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
    r = x.float()
    # Per-stage views taken once (unbind), not indexed per stage: at one frame per call the
    # per-op overhead is most of the cost.
    stages = search.shape[0]
    neg_bias = search_bias.float().neg().unbind(0)
    search_t = search.float().transpose(1, 2).unbind(0)
    out_cb = out_codebooks.float().unbind(0)
    if in_weight is None:
        proj: tuple[torch.Tensor | None, ...] = (None,) * stages
        proj_bias: tuple[torch.Tensor | None, ...] = (None,) * stages
    else:
        proj, proj_bias = in_weight.float().unbind(0), in_bias.float().unbind(0)
    codes = []
    for k in range(stages):
        z = r if proj[k] is None else torch.addmm(proj_bias[k], r, proj[k])
        idx = torch.addmm(neg_bias[k], z, search_t[k]).argmax(dim=-1)
        codes.append(idx)
        r = r - out_cb[k][idx]
    quantized = x.float() - r if return_quantized else None
    return torch.stack(codes, dim=1), quantized


def rvq_decode(codes: torch.Tensor, out_codebooks: torch.Tensor) -> torch.Tensor:
    """Args: codes ``[N, K]`` (K <= stages in out_codebooks); out_codebooks ``[K', S, D]``.

    Returns the summed codewords ``[N, D]`` float32 (codes outside ``[0, S)`` add zero).
    """
    n, num_stages = codes.shape
    size, dim = out_codebooks.shape[1], out_codebooks.shape[2]
    table = out_codebooks[:num_stages].float()
    valid = (codes >= 0) & (codes < size)
    codes = torch.where(valid, codes, 0).long()
    if n * num_stages * dim <= 1 << 20:
        # Small inputs (streaming): one gather and one sum instead of K of each.
        offsets = torch.arange(num_stages, device=codes.device) * size
        rows = table.reshape(-1, dim)[codes + offsets]
        return torch.where(valid[..., None], rows, 0.0).sum(1)
    out = torch.zeros(n, dim, device=codes.device, dtype=torch.float32)
    for k in range(num_stages):
        out += torch.where(valid[:, k, None], table[k][codes[:, k]], 0.0)
    return out
