"""Parity of the Triton RVQ kernels with the PyTorch reference, dispatch, and the model on both.

Without a GPU the kernels run under ``TRITON_INTERPRET=1`` (see ``conftest.py``).  Outputs are
pre-filled with NaN (floats) or -1 (codes) so unwritten elements show.  Argmax ties may flip
between implementations: a code may differ from the reference only where the reference's
best/second-best score gap is below ``EPS`` (relative); after a flip, that row's later stages
legitimately differ and are not compared.  Winning scores are compared everywhere else, and the
quantized latent of rows whose codes all match must be bitwise equal (same float32 ops).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import pytest
import torch
from torch.nn import functional as F

from codec.config import CodecConfig
from codec.kernels import backend_for
from codec.kernels.rvq import reference, rvq_decode, rvq_encode
from codec.kernels.rvq import triton as rvq_triton
from codec.model import build_model

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
EPS = 1e-5  # relative to the largest |score| of the row at that stage


@dataclass
class Problem:
    """One encode problem: latents ``x [N, D]`` and the packed quantizer tensors."""

    x: torch.Tensor
    search: torch.Tensor
    search_bias: torch.Tensor
    out_codebooks: torch.Tensor
    in_weight: torch.Tensor | None
    in_bias: torch.Tensor | None

    @property
    def args(self) -> tuple:
        return (self.x, self.search, self.search_bias, self.out_codebooks, self.in_weight, self.in_bias)


def make_problem(
    kind: str, n: int, dim: int, size: int, stages: int, dtype=torch.float32, code_dim: int = 8, seed: int = 0
) -> Problem:
    """Random factorized (DAC) or euclidean (EnCodec) quantizer tensors, in ``dtype``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    if kind == "factorized":
        raw = torch.randn(stages, size, code_dim, generator=g)
        w_out = torch.randn(stages, code_dim, dim, generator=g) / code_dim**0.5
        tensors = (
            x,
            F.normalize(raw, dim=-1),
            torch.zeros(stages, size),
            torch.einsum("ksc,kcd->ksd", raw, w_out),
            torch.randn(stages, dim, code_dim, generator=g) / dim**0.5,
            0.1 * torch.randn(stages, code_dim, generator=g),
        )
    else:
        codes = torch.randn(stages, size, dim, generator=g) * 0.5
        tensors = (x, codes, 0.5 * codes.pow(2).sum(-1), codes, None, None)
    return Problem(*(None if t is None else t.to(DEVICE, dtype) for t in tensors))


def reference_trace(p: Problem) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference's stage loop, also returning the best score, the top-2 gap and the row scale.

    Returns: codes, best, gap, scale, each ``[N, K]``.
    """
    r = p.x.float()
    codes, best, gap, scale = [], [], [], []
    for k in range(p.search.shape[0]):
        z = r if p.in_weight is None else torch.addmm(p.in_bias[k].float(), r, p.in_weight[k].float())
        scores = torch.addmm(-p.search_bias[k].float(), z, p.search[k].float().T)
        top = scores.topk(min(2, scores.shape[1]), dim=-1).values
        idx = scores.argmax(-1)
        codes.append(idx)
        best.append(top[:, 0])
        gap.append(top[:, 0] - top[:, -1] if top.shape[1] > 1 else torch.full_like(top[:, 0], torch.inf))
        scale.append(1.0 + scores.abs().amax(-1))
        r = r - p.out_codebooks[k].float()[idx]
    return tuple(torch.stack(t, dim=1) for t in (codes, best, gap, scale))


def triton_encode(p: Problem, **kwargs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Triton launcher writing into NaN / -1 pre-filled buffers; checks all were written."""
    n, dim = p.x.shape
    stages = p.search.shape[0]
    codes = torch.full((n, stages), -1, dtype=torch.int64, device=DEVICE)
    scores = torch.full((n, stages), torch.nan, device=DEVICE)
    quant = torch.full((n, dim), torch.nan, device=DEVICE)
    out = rvq_triton.rvq_encode(
        *p.args, True, codes_out=codes, quantized_out=quant, scores_out=scores, **kwargs
    )
    assert out[0] is codes and out[1] is quant
    assert (codes >= 0).all() and (codes < p.search.shape[1]).all(), "unwritten or invalid codes"
    assert not scores.isnan().any() and not quant.isnan().any(), "unwritten outputs"
    return codes, scores, quant


def assert_parity(p: Problem, codes: torch.Tensor, scores: torch.Tensor, quant: torch.Tensor) -> dict:
    """Tie-aware comparison with the reference; returns the flip count and max differences."""
    ref_codes, best, gap, scale = reference_trace(p)
    codes_ref_api, quant_ref = reference.rvq_encode(*p.args, True)
    assert torch.equal(ref_codes, codes_ref_api), "the trace must follow the reference exactly"
    on_path = torch.ones(codes.shape[0], dtype=torch.bool, device=codes.device)
    flips, max_score_diff = 0, 0.0
    for k in range(codes.shape[1]):
        same = codes[:, k] == ref_codes[:, k]
        flipped = on_path & ~same
        assert (gap[flipped, k] <= EPS * scale[flipped, k]).all(), f"stage {k}: a code differs off a tie"
        flips += int(flipped.sum())
        diff = (scores[on_path, k] - best[on_path, k]).abs()
        assert (diff <= EPS * scale[on_path, k]).all(), f"stage {k}: winning scores differ"
        max_score_diff = max(max_score_diff, float(diff.max()) if diff.numel() else 0.0)
        on_path &= same
    # Same codes, same float32 subtractions: the quantized latent is bitwise identical.
    assert torch.equal(quant[on_path], quant_ref[on_path])
    return {"flips": flips, "max_score_diff": max_score_diff, "rows_compared": int(on_path.sum())}


# (kind, frames, latent dim, codebook size, stages, dtype): every value the issue lists appears.
SHAPES = [
    ("factorized", 1, 60, 1000, 1, torch.float32),
    ("factorized", 63, 512, 1024, 12, torch.bfloat16),
    ("factorized", 1000, 60, 1024, 7, torch.float32),
    ("factorized", 1000, 512, 1000, 12, torch.float32),
    ("factorized", 63, 60, 1000, 2, torch.bfloat16),
    ("factorized", 1000, 512, 1024, 4, torch.bfloat16),
    ("euclidean", 1, 512, 1024, 12, torch.bfloat16),
    ("euclidean", 63, 60, 1000, 3, torch.float32),
    ("euclidean", 1000, 60, 1024, 12, torch.bfloat16),
    ("euclidean", 1000, 512, 1000, 8, torch.float32),
    ("euclidean", 63, 128, 1024, 5, torch.float32),
    ("euclidean", 63, 256, 4096, 2, torch.float32),
]


def _shape_id(shape: tuple) -> str:
    kind, n, dim, size, stages, dtype = shape
    return f"{kind}-N{n}-D{dim}-S{size}-K{stages}-{str(dtype).removeprefix('torch.')}"


@pytest.mark.parametrize(("kind", "n", "dim", "size", "stages", "dtype"), SHAPES, ids=map(_shape_id, SHAPES))
def test_encode_matches_reference(kind, n, dim, size, stages, dtype) -> None:
    p = make_problem(kind, n, dim, size, stages, dtype)
    stats = assert_parity(p, *triton_encode(p))
    print(f"{kind} N={n} D={dim} S={size} K={stages} {dtype}: {stats}")


@pytest.mark.parametrize("code_dim", [4, 12, 32])
def test_encode_codebook_dims(code_dim: int) -> None:
    """d below tl.dot's minimum (4), not a power of two (12) and wider (32)."""
    p = make_problem("factorized", 63, 60, 1000, 3, code_dim=code_dim)
    assert_parity(p, *triton_encode(p))


@pytest.mark.parametrize("kind", ["factorized", "euclidean"])
def test_encode_gpu_tiles(kind: str) -> None:
    """The tiles chosen for GPUs (many code tiles, partial row blocks), run here as well."""
    p = make_problem(kind, 300, 60, 1000, 3)
    cfg = rvq_triton.default_config(300, 60, p.search.shape[2], 1000, interpreted=False)
    assert 300 % cfg.block_n and 1000 % cfg.block_s
    assert_parity(p, *triton_encode(p, config=cfg))


def test_stage_prefix_is_lower_bitrate_encoding() -> None:
    """Codes for the first k stages equal the first k columns of the 12-stage codes, k = 1..12."""
    p = make_problem("factorized", 63, 60, 1000, 12)
    full, _ = rvq_triton.rvq_encode(*p.args)
    assert_parity(p, *triton_encode(p))
    for k in range(1, 13):
        w = p.in_weight[:k]
        codes, _ = rvq_triton.rvq_encode(
            p.x, p.search[:k], p.search_bias[:k], p.out_codebooks[:k], w, p.in_bias[:k]
        )
        assert torch.equal(codes, full[:, :k])


def test_exact_ties_pick_the_first_code() -> None:
    """Duplicated codes (in one tile and across tiles) tie exactly; both backends pick the lower."""
    p = make_problem("euclidean", 200, 64, 1000, 2)
    for lo, hi in [(3, 5), (10, 900)]:
        for t in (p.search, p.search_bias, p.out_codebooks):
            t[:, hi] = t[:, lo]
    codes, scores, quant = triton_encode(p)
    assert not (codes == 5).any() and not (codes == 900).any()
    assert_parity(p, codes, scores, quant)


def test_strided_inputs_and_outputs() -> None:
    """A transposed latent view in, codes written straight into a ``[K, N]`` buffer's transpose."""
    p = make_problem("factorized", 63, 60, 1000, 4)
    x_t = p.x.T.contiguous().T
    buf = torch.full((4, 63), -1, dtype=torch.int64, device=DEVICE)
    codes, _ = rvq_triton.rvq_encode(x_t, *p.args[1:], codes_out=buf.T)
    assert torch.equal(buf.T, reference.rvq_encode(*p.args)[0])
    assert codes.data_ptr() == buf.data_ptr()


DECODE_SHAPES = [(1, 12, 60, torch.float32), (63, 3, 512, torch.bfloat16), (1000, 12, 60, torch.float32),
                 (1000, 5, 512, torch.float32)]  # fmt: skip


@pytest.mark.parametrize(("n", "stages", "dim", "dtype"), DECODE_SHAPES)
def test_decode_matches_reference(n: int, stages: int, dim: int, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(1)
    table = torch.randn(12, 1000, dim, generator=g).to(DEVICE, dtype)
    codes = torch.randint(0, 1000, (n, stages), generator=g).to(DEVICE)
    out = torch.full((n, dim), torch.nan, device=DEVICE)
    assert rvq_triton.rvq_decode(codes, table, out=out) is out
    torch.testing.assert_close(out, reference.rvq_decode(codes, table), rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(rvq_triton.rvq_decode(codes.int(), table), out, rtol=0, atol=0)


# The reference's two paths: one gather for small inputs, a loop over stages above 2**20 values.
@pytest.mark.parametrize(("n", "dim"), [(5, 8), (700, 512)])
def test_out_of_range_codes_add_zero_on_both_backends(n: int, dim: int) -> None:
    """The specification: a code outside [0, S) contributes nothing (not another stage's row)."""
    g = torch.Generator().manual_seed(4)
    table = torch.randn(4, 50, dim, generator=g).to(DEVICE)
    codes = torch.randint(0, 50, (n, 3), generator=g).to(DEVICE)
    codes[0] = torch.tensor([50, -1, 7])  # 50 would read stage 1's row 0 through the offsets
    codes[1] = torch.tensor([2, 10**6, -50])
    codes[2] = torch.tensor([-(2**40), 3, 99])
    want = torch.zeros(n, dim, device=DEVICE)
    for k in range(3):
        ok = (codes[:, k] >= 0) & (codes[:, k] < 50)
        want[ok] += table[k][codes[ok, k]]
    torch.testing.assert_close(reference.rvq_decode(codes, table), want, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(rvq_triton.rvq_decode(codes, table), want, rtol=1e-6, atol=1e-6)
    assert reference.rvq_decode(codes[:3], table)[0].equal(table[2][7])


def test_decode_inverts_encode_quantized() -> None:
    p = make_problem("factorized", 63, 60, 1000, 6)
    codes, quant = rvq_triton.rvq_encode(*p.args, True)
    torch.testing.assert_close(rvq_triton.rvq_decode(codes, p.out_codebooks), quant, rtol=1e-5, atol=1e-5)


def test_empty_inputs() -> None:
    p = make_problem("euclidean", 0, 64, 16, 2)
    codes, quant = rvq_triton.rvq_encode(*p.args, True)
    assert codes.shape == (0, 2) and quant.shape == (0, 64)
    assert rvq_triton.rvq_decode(codes, p.out_codebooks).shape == (0, 64)


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_bad_arguments_fail_clearly(backend: str, monkeypatch) -> None:
    monkeypatch.setenv("CODEC_KERNELS", backend)
    p = make_problem("factorized", 4, 60, 16, 2)
    with pytest.raises(ValueError, match=r"out_codebooks must be \[K, S, D\]"):
        rvq_encode(p.x, p.search, p.search_bias, p.out_codebooks[:, :, :10], p.in_weight, p.in_bias)
    with pytest.raises(ValueError, match="in_weight and in_bias go together"):
        rvq_encode(p.x, p.search, p.search_bias, p.out_codebooks, p.in_weight, None)
    with pytest.raises(ValueError, match="codes use 3 codebooks but only 2 exist"):
        rvq_decode(torch.zeros(4, 3, dtype=torch.long, device=DEVICE), p.out_codebooks)
    with pytest.raises(ValueError, match="must be an integer tensor"):
        rvq_decode(torch.zeros(4, 2, device=DEVICE), p.out_codebooks)


def test_launcher_options_are_checked() -> None:
    p = make_problem("factorized", 4, 60, 16, 2)
    with pytest.raises(ValueError, match="precision must be one of"):
        rvq_triton.rvq_encode(*p.args, precision="fp64")
    with pytest.raises(ValueError, match=r"codes_out must be torch\.int64"):
        rvq_triton.rvq_encode(*p.args, codes_out=torch.empty(4, 2, dtype=torch.int32, device=DEVICE))


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU-only behaviour")
def test_cpu_tensors_need_the_interpreter(monkeypatch) -> None:
    monkeypatch.setattr(rvq_triton, "INTERPRETED", False)
    p = make_problem("factorized", 4, 60, 16, 2)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        rvq_triton.rvq_encode(*p.args)


def test_dispatch_env_var(monkeypatch) -> None:
    x = torch.zeros(1, device=DEVICE)
    auto = "triton" if x.is_cuda else "reference"
    for value, expected in [(None, auto), ("auto", auto), ("reference", "reference"), (" Triton ", "triton")]:
        if value is None:
            monkeypatch.delenv("CODEC_KERNELS", raising=False)
        else:
            monkeypatch.setenv("CODEC_KERNELS", value)
        assert backend_for(x) == expected
    monkeypatch.setenv("CODEC_KERNELS", "cuda")
    with pytest.raises(ValueError, match="CODEC_KERNELS must be one of"):
        backend_for(x)


def test_dispatch_calls_the_chosen_backend(monkeypatch) -> None:
    calls = []
    real = rvq_triton.rvq_encode
    monkeypatch.setattr(rvq_triton, "rvq_encode", lambda *a, **k: calls.append("triton") or real(*a, **k))
    p = make_problem("factorized", 8, 60, 16, 2)
    monkeypatch.setenv("CODEC_KERNELS", "reference")
    ref, _ = rvq_encode(*p.args)
    monkeypatch.setenv("CODEC_KERNELS", "triton")
    tri, _ = rvq_encode(*p.args)
    assert calls == ["triton"] and torch.equal(ref, tri)


def _model(kind: str):
    cfg = CodecConfig.from_yaml("debug" if kind != "speech_16k" else "speech_16k")
    if kind == "euclidean":
        cfg = replace(cfg, quantizer=replace(cfg.quantizer, kind="euclidean", codebook_dim=cfg.latent_dim))
    torch.manual_seed(0)
    return build_model(cfg).to(DEVICE)


@pytest.mark.parametrize("kind", ["factorized", "euclidean", "speech_16k"])
def test_model_same_codes_with_either_backend(kind: str, monkeypatch) -> None:
    model = _model(kind).eval()
    wav = torch.randn(2, 30 * model.hop_length, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    calls = []
    for name in ("rvq_encode", "rvq_decode"):
        real = getattr(rvq_triton, name)
        monkeypatch.setattr(
            rvq_triton, name, lambda *a, _f=real, _n=name, **k: calls.append(_n) or _f(*a, **k)
        )
    results = {}
    for backend in ("reference", "triton"):
        monkeypatch.setenv("CODEC_KERNELS", backend)
        with torch.no_grad():
            codes = model.encode(wav)
            results[backend] = (codes, model.decode_offline(codes))
    assert calls == ["rvq_encode", "rvq_decode"], "the model must go through the dispatched kernels"
    assert torch.equal(results["reference"][0], results["triton"][0])
    torch.testing.assert_close(results["reference"][1], results["triton"][1], rtol=1e-5, atol=1e-5)


def test_training_forward_same_codes_and_gradients(monkeypatch) -> None:
    """The training forward takes its codes from the dispatched kernel; gradients are unchanged."""
    base = _model("factorized").train()
    wav = torch.randn(2, 20 * base.hop_length, generator=torch.Generator().manual_seed(3)).to(DEVICE)
    results = {}
    for backend in ("reference", "triton"):
        monkeypatch.setenv("CODEC_KERNELS", backend)
        model = copy.deepcopy(base)
        torch.manual_seed(4)  # same quantizer-dropout draws for both
        out = model(wav)
        loss = out.wav.square().mean() + out.quantizer.commitment_loss + out.quantizer.codebook_loss
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results[backend] = (out.quantizer.codes, grads)
    assert torch.equal(results["reference"][0], results["triton"][0])
    assert len(results["reference"][1]) == len(results["triton"][1]) > 0
    for g_ref, g_tri in zip(*(results[b][1] for b in ("reference", "triton")), strict=True):
        torch.testing.assert_close(g_ref, g_tri, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["factorized", "euclidean"])
def test_prepared_weights_give_the_plain_results(kind: str, monkeypatch) -> None:
    """Prepared stages (``stages=``) and decode tables (``table=``), built once for all stages and
    used for fewer, give bit for bit what the plain calls give, out-of-range codes included."""
    monkeypatch.setenv("CODEC_KERNELS", "reference")
    p = make_problem(kind, 37, 24, 50, 5)
    stages = reference.prepare_encode(*p.args[1:])
    table = reference.prepare_decode(p.out_codebooks)
    for k in (1, 3, 5):
        cut = [None if t is None else t[:k] for t in p.args[1:]]
        plain, quant = rvq_encode(p.x, *cut, True)
        prepared, prepared_quant = rvq_encode(p.x, *cut, True, stages=stages.head(k))
        assert torch.equal(prepared, plain) and torch.equal(prepared_quant, quant)
        codes = plain.clone()
        codes[0, 0], codes[1, k - 1], codes[2, k // 2] = 50, -1, -(2**40)  # outside [0, S): add zero
        want = torch.zeros(37, 24)
        for j in range(k):
            ok = (codes[:, j] >= 0) & (codes[:, j] < 50)
            want[ok] += p.out_codebooks[j][codes[ok, j]]
        got = rvq_decode(codes, p.out_codebooks, table=table)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
        assert torch.equal(got, rvq_decode(codes, p.out_codebooks[:k]))
    with pytest.raises(ValueError, match="x must be"):
        rvq_encode(p.x[:, :5], *p.args[1:], stages=stages)
