"""Residual VQ: training path vs inference, STE gradients, dropout, EMA, k-means, dead codes."""

from __future__ import annotations

import pytest
import torch

from codec.config import QuantizerConfig
from codec.quantize import ResidualVQ


def _rvq(**kw) -> ResidualVQ:
    torch.manual_seed(0)
    return ResidualVQ(
        16, QuantizerConfig(**({"total_codebooks": 4, "codebook_size": 32, "codebook_dim": 4} | kw))
    )


@pytest.mark.parametrize("kind", ["factorized", "euclidean"])
def test_inference_codes_and_latent_match_the_training_path(kind: str) -> None:
    dim = 4 if kind == "factorized" else 16
    rvq = _rvq(kind=kind, codebook_dim=dim, dropout=0.0).eval()
    x = torch.randn(50, 16)
    out = rvq(x)
    codes = rvq.encode(x)
    assert torch.equal(out.codes, codes)
    torch.testing.assert_close(rvq.decode(codes), out.quantized, atol=1e-5, rtol=1e-5)
    # Any prefix of the levels decodes to the sum of those levels only.
    torch.testing.assert_close(
        rvq.decode(codes[:, :2]), rvq(x, num_codebooks=2).quantized, atol=1e-5, rtol=1e-5
    )


def test_straight_through_gradients_reach_encoder_and_codebooks() -> None:
    rvq = _rvq(dropout=0.0).train()
    x = torch.randn(40, 16, requires_grad=True)
    out = rvq(x)
    (out.quantized.pow(2).sum() + out.codebook_loss + out.commitment_loss).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for lvl in rvq.levels:
        assert lvl.codebook.embed.grad.abs().sum() > 0
        assert lvl.in_proj.weight.grad.abs().sum() > 0 and lvl.out_proj.weight.grad.abs().sum() > 0


def test_straight_through_passes_the_gradient_of_the_quantized_latent_unchanged() -> None:
    """d quantized / d x is the projections' Jacobian, as if quantization were the identity.

    Only ``quantized`` enters the loss (no commitment or codebook loss, which would give ``x``
    a gradient on their own)."""
    rvq = _rvq(dropout=0.0, total_codebooks=1).train()
    x = torch.randn(30, 16, requires_grad=True)
    g = torch.randn(30, 16)
    (rvq(x).quantized * g).sum().backward()
    lvl = rvq.levels[0]
    want = g @ lvl.out_proj.weight.T @ lvl.in_proj.weight.T
    torch.testing.assert_close(x.grad, want, atol=1e-5, rtol=1e-5)
    # Through several levels too: the quantized latent carries a gradient back to x.
    deep = _rvq(dropout=0.0).train()
    y = torch.randn(30, 16, requires_grad=True)
    deep(y).quantized.pow(2).sum().backward()
    assert y.grad.abs().min() > 0


def test_dropped_levels_are_left_out_of_the_latent_losses_and_statistics() -> None:
    """Variable bitrate in training: a row with ``k`` active levels is quantized by those ``k``."""
    rvq = _rvq(kind="euclidean", codebook_dim=16, dropout=1.0, ema_decay=0.5).train()
    x = torch.randn(300, 16)
    torch.manual_seed(3)
    out = rvq(x)
    assert len(out.num_active.unique()) == 4
    for k in range(1, 5):
        rows = out.num_active == k
        torch.testing.assert_close(out.quantized[rows], rvq.decode(out.codes[rows, :k]), atol=1e-5, rtol=1e-5)
    # Codebook usage of level k counts only the rows that used level k (usage starts at 1).
    for k, lvl in enumerate(rvq.levels):
        used = int((out.num_active > k).sum())
        assert lvl.codebook.usage.sum().item() == pytest.approx(32 * 0.5 + used * 0.5)
    # Losses average, level by level, over the rows that used the level (residuals run on
    # through every level: the codes of all levels are chosen before dropout).
    residual, want = x, 0.0
    for k, lvl in enumerate(rvq.levels):
        entry = lvl.codebook.embed[out.codes[:, k]]
        per_row = (residual - entry).pow(2).mean(-1)
        want += per_row[out.num_active > k].mean().item() / 4
        residual = residual - entry
    assert out.commitment_loss.item() == pytest.approx(want, rel=1e-5)
    # The codebook loss is the same distance seen from the codebook side (learned codebooks).
    assert out.codebook_loss.item() == pytest.approx(want, rel=1e-5)


def test_quantizer_dropout_draws_levels_per_item_in_training_only() -> None:
    rvq = _rvq(dropout=1.0).train()
    x = torch.randn(400, 16)
    active = rvq(x).num_active
    assert active.min() == 1 and active.max() == 4
    assert rvq.eval()(x).num_active.unique().tolist() == [4]
    assert _rvq(dropout=0.0).train()(x).num_active.unique().tolist() == [4]


def test_kmeans_init_seeds_codebooks_and_more_levels_reduce_error() -> None:
    rvq = _rvq(kind="euclidean", codebook_dim=16, kmeans_init=True, dropout=0.0)
    x = torch.randn(2000, 16)
    assert not bool(rvq.levels[0].codebook.initialized)
    rvq.train()(x)
    assert all(bool(lvl.codebook.initialized) for lvl in rvq.levels)
    rvq.eval()
    codes = rvq.encode(x)
    errors = [(rvq.decode(codes[:, :k]) - x).pow(2).mean().item() for k in range(1, 5)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.7 * errors[0]


def test_ema_codebook_moves_towards_its_assigned_vectors() -> None:
    rvq = _rvq(kind="euclidean", codebook_dim=16, ema=True, ema_decay=0.5, total_codebooks=1, dropout=0.0)
    assert not any(p is rvq.levels[0].codebook.embed for p in rvq.parameters())
    x = torch.randn(500, 16) + 3.0
    before = (rvq.levels[0].codebook.embed - 3.0).norm(dim=-1).mean()
    rvq.train()
    for _ in range(5):
        rvq(x)
    after = (rvq.levels[0].codebook.embed - 3.0).norm(dim=-1).mean()
    assert after < before


def test_dead_codes_are_replaced_by_batch_vectors() -> None:
    rvq = _rvq(
        kind="euclidean",
        codebook_dim=16,
        total_codebooks=1,
        dead_code_threshold=0.3,
        ema_decay=0.5,
        dropout=0.0,
    )
    book = rvq.levels[0].codebook
    with torch.no_grad():
        book.embed[1:] = 100.0  # far away: never chosen, so their usage decays
    x = torch.randn(64, 16)
    rvq.train()(x)
    assert (book.embed[1:] == 100).all(), "usage 0.5 is still above the threshold after one step"
    rvq(x)
    assert (book.embed[1:] < 50).all(), "dead entries should now hold batch vectors"
    rows = {tuple(r.tolist()) for r in x}
    assert all(tuple(e.tolist()) in rows for e in book.embed[1:])


@pytest.mark.parametrize("kmeans", [False, True])
def test_inference_sees_codebooks_changed_by_training_bookkeeping(kmeans: bool) -> None:
    """Dead-code replacement and k-means init write codebooks outside the optimiser; the cached
    search tensors of inference must not keep the old entries."""
    kw = {"kind": "euclidean", "codebook_dim": 16, "total_codebooks": 1, "dropout": 0.0}
    rvq = _rvq(**kw, dead_code_threshold=0.3, ema_decay=0.5, kmeans_init=kmeans)
    with torch.no_grad():
        rvq.levels[0].codebook.embed[1:] = 100.0
    x = torch.randn(64, 16)
    with torch.no_grad():
        before = rvq.eval().encode(x)  # fills the inference cache
    rvq.train()(x)
    rvq(x)
    fresh = _rvq(**kw)
    fresh.load_state_dict(rvq.state_dict())
    with torch.no_grad():
        after = rvq.eval().encode(x)
        assert torch.equal(after, fresh.eval().encode(x))
    assert not torch.equal(after, before)


@pytest.mark.parametrize("kind", ["factorized", "euclidean"])
def test_search_picks_the_nearest_code_by_its_kind(kind: str) -> None:
    """Factorized: highest cosine between the projected residual and the code; euclidean:
    smallest L2 distance.  Checked against those definitions, level by level."""
    dim = 4 if kind == "factorized" else 16
    rvq = _rvq(kind=kind, codebook_dim=dim, dropout=0.0).eval()
    x = torch.randn(200, 16)
    with torch.no_grad():
        codes = rvq.encode(x)
        residual = x
        for k, lvl in enumerate(rvq.levels):
            embed = lvl.codebook.embed
            if kind == "factorized":
                z = lvl.in_proj(residual)
                scores = (
                    torch.nn.functional.normalize(z, dim=-1) @ torch.nn.functional.normalize(embed, dim=-1).T
                )
                want = scores.argmax(-1)
            else:
                want = torch.cdist(residual, embed).argmin(-1)
            assert (codes[:, k] == want).float().mean() > 0.99  # near-ties may round either way
            residual = residual - lvl.out_proj(embed)[codes[:, k]]


def test_code_choice_stays_float32_under_autocast() -> None:
    rvq = _rvq(dropout=0.0).eval()
    x = torch.randn(500, 16).bfloat16().float()
    want = rvq(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = rvq(x.bfloat16())
    assert out.quantized.dtype == torch.float32 and out.commitment_loss.dtype == torch.float32
    assert torch.equal(out.codes, want.codes)
    assert rvq(x, num_codebooks=2).codes.shape == (500, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert rvq(x.bfloat16(), num_codebooks=2).codes.shape == (500, 2)


@pytest.mark.parametrize("ema", [False, True])
def test_replaced_dead_codes_restart_their_statistics(ema: bool) -> None:
    rvq = _rvq(kind="euclidean", codebook_dim=16, total_codebooks=1, dead_code_threshold=0.3,
               ema_decay=0.5, dropout=0.0, ema=ema)  # fmt: skip
    book = rvq.levels[0].codebook
    with torch.no_grad():
        book.embed[1:] = 100.0
        if ema:
            book.embed_sum[1:] = 100.0
    x = torch.randn(64, 16) * 0.01
    rvq.train()(x)
    rvq(x)  # usage of entries 1.. is now 0.25 < 0.3: replaced
    assert (book.usage[1:] == 1.0).all(), "a fresh entry starts with full usage, not dead again"
    assert book.usage[0] > 1.0  # every vector went to entry 0
    if ema:
        assert (book.cluster_size[1:] == 1.0).all() and torch.equal(book.embed_sum[1:], book.embed[1:])


def test_kmeans_leaves_empty_clusters_where_they_were() -> None:
    from codec.quantize.codebook import kmeans

    points = torch.tensor([[0.0, 0.0], [0.0, 0.0], [10.0, 10.0], [10.0, 10.0], [10.0, 12.0]])
    centroids = kmeans(points, 4, iters=5)
    assert torch.isfinite(centroids).all()
    # Every centroid is a mean of points assigned to it or an untouched (duplicate) seed.
    assert {tuple(c.tolist()) for c in centroids} <= {(0.0, 0.0), (10.0, 10.0), (10.0, 12.0), (10.0, 34 / 3)}
    assert kmeans(torch.randn(300, 3) + 5, 2).shape == (2, 3)


def test_kmeans_seeds_are_distinct_even_with_fewer_samples_than_clusters() -> None:
    """A large codebook initialised from a small batch: no two centroids may start equal (an
    equal pair ties forever and one of them is never used)."""
    from codec.quantize.codebook import kmeans

    for samples, clusters in ((torch.randn(300, 8), 1024), (torch.randn(2000, 8), 1024)):
        centroids = kmeans(samples, clusters, iters=3)
        assert torch.unique(centroids, dim=0).shape[0] == clusters
    assert torch.isfinite(kmeans(torch.ones(1, 4), 3)).all()


@pytest.mark.parametrize("kind", ["factorized", "euclidean"])
def test_cached_decode_table_follows_weight_changes(kind: str) -> None:
    """Inference decodes through a table built once per set of weights: a weight written in
    place afterwards (an optimiser step, a loaded state) must show in the next decode."""
    dim = 4 if kind == "factorized" else 16
    rvq = _rvq(kind=kind, codebook_dim=dim, dropout=0.0).eval()
    x = torch.randn(20, 16)
    with torch.no_grad():
        codes = rvq.encode(x)
        before = rvq.decode(codes)  # builds the table
        target = rvq.levels[2].out_proj.weight if kind == "factorized" else rvq.levels[2].codebook.embed
        target.mul_(2.0)
        after = rvq.decode(codes)
    fresh = _rvq(kind=kind, codebook_dim=dim, dropout=0.0).eval()
    fresh.load_state_dict(rvq.state_dict())
    with torch.no_grad():
        assert not torch.equal(before, after)
        assert torch.equal(after, fresh.decode(codes))
        assert torch.equal(rvq.encode(x), fresh.encode(x))
