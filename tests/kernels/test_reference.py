"""The PyTorch reference's own CPU paths against the plain formulation of its specification."""

from __future__ import annotations

import pytest
import torch

from codec.kernels.rvq import reference
from tests.kernels.test_rvq import make_problem, reference_trace


@pytest.mark.parametrize("kind", ["factorized", "euclidean"])
def test_reference_row_blocks_and_zero_bias_change_nothing(kind: str) -> None:
    """The reference searches a CPU batch in blocks of ``SEARCH_ROWS`` rows and leaves out an
    all-zero bias; codes (exact ties included) and the quantized latent equal the plain
    whole-batch formulation bit for bit, across block edges and a ragged last block."""
    n = 2 * reference.SEARCH_ROWS + 37
    p = make_problem(kind, n, 24, 300, 4)
    for t in (p.search, p.search_bias, p.out_codebooks):
        t[:, 250] = t[:, 7]  # an exact tie: the first of the two wins
    stages = reference.prepare_encode(*p.args[1:])
    assert all((b is None) == (kind == "factorized") for b in stages.neg_bias)
    want_codes = reference_trace(p)[0]
    r = p.x.float()
    for k in range(4):
        r = r - p.out_codebooks[k].float()[want_codes[:, k]]
    codes, quant = reference.encode_stages(p.x, stages, return_quantized=True)
    assert torch.equal(codes, want_codes) and torch.equal(quant, p.x.float() - r)
    assert (codes == 7).any() and not (codes == 250).any()
    rows = [reference.encode_stages(p.x[i : i + 1], stages)[0] for i in (0, 255, 256, n - 1)]
    assert torch.equal(torch.cat(rows), codes[[0, 255, 256, n - 1]])  # a row's codes alone
