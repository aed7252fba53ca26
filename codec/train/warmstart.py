"""Warm start and frozen parts: train a new recipe or head on top of an existing model.

``init_from`` copies every tensor of a model directory whose name and shape match into the
generator (a new head or a changed layer keeps its fresh initialisation).  ``freeze`` stops
the encoder and/or the quantizer from training: with both frozen, every input keeps exactly
the codes of the warm-start model, so token files written with it stay valid while the
decoder learns.  Quantizer dropout still applies to a frozen quantizer (the decoder must
keep serving every bitrate), but its codebooks are neither updated nor replaced.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch.nn import functional as F

from codec.checkpoint import WEIGHTS_NAME, CheckpointError, read_config
from codec.config import CodecConfig
from codec.model import CodecModel, ModelOutput
from codec.quantize import QuantizerOutput, ResidualVQ


def resolve_model_dir(name_or_dir: str | Path) -> Path:
    """A model directory, or the folder of a bundled model given by name."""
    path = Path(name_or_dir)
    if path.is_dir() or "/" in str(name_or_dir):
        return path
    from codec import pretrained

    try:
        return pretrained.model_dir(str(name_or_dir))
    except pretrained.NoBundledModelError as err:
        raise CheckpointError(str(err)) from None


def warm_start(model: CodecModel, name_or_dir: str | Path) -> list[str]:
    """Load the matching tensors of a model directory (or bundled model name) into ``model``.

    Returns: the names of the model's tensors that were not loaded (absent or reshaped).
    Raises: :class:`codec.checkpoint.CheckpointError` if it is not a model.
    """
    directory = resolve_model_dir(name_or_dir)
    read_config(directory)  # a clear error for anything that is not a model directory
    try:
        source = load_file(str(directory / WEIGHTS_NAME))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{directory}: unreadable weights ({err})") from None
    target = model.state_dict()
    loaded = {k: v for k, v in source.items() if k in target and v.shape == target[k].shape}
    model.load_state_dict(loaded, strict=False)
    loaded.update(spread_head(model, source, read_config(directory)[0]))
    skipped = sorted(set(target) - set(loaded))
    if skipped:
        warnings.warn(
            f"warm start from {directory}: {len(skipped)} tensors keep their initialisation "
            f"(first: {skipped[0]})",
            stacklevel=2,
        )
    return skipped


def spread_head(model: CodecModel, source: dict[str, torch.Tensor], source_cfg: CodecConfig) -> dict:
    """Start a finer polar head from a source model's one-window polar head of the same window.

    A head with ``head_upsample = U`` and window ``n`` (e.g. 640 samples every 160: 75%
    overlap) gets the source's projection (``n``-sample windows every frame) for each of its
    ``U`` windows, window ``u`` delayed by ``(U - 1 - u)`` sub-hops (a phase ramp on the bias),
    so that all of a frame's windows place the source frame at the same time.  On the bundled
    model this starts a 75%-overlap head at PESQ-wb 1.89 on 8 dev files (source 2.10; a fresh
    head: near 1).  Returns the tensors it set (empty when the heads do not fit this rule).
    """
    if model.cfg.architecture != "convnext" or source_cfg.architecture != "convnext":
        return {}  # only our iSTFT heads have a window to spread
    head, d, src = model.decoder.head, model.cfg.decoder, source_cfg.decoder
    fits = (
        d.head == src.head == "polar"
        and src.head_upsample == 1
        and src.head_window in (None, head.n_fft)
        and 2 * model.cfg.hop_length // src.upsample == head.n_fft
        and head.upsample > 1
        and "decoder.head.proj.weight" in source
    )
    if not fits:
        return {}
    weight, bias = source["decoder.head.proj.weight"], source["decoder.head.proj.bias"]
    if weight.shape[1] != 2 * head.bins:
        return {}
    ramp = 2 * math.pi * torch.arange(head.bins, dtype=torch.float32) / head.n_fft
    bias_u = []
    for u in range(head.upsample):
        phase_bias = bias[head.bins :] - ramp * (head.upsample - 1 - u) * head.sub_hop
        bias_u.append(torch.cat([bias[: head.bins], phase_bias]))
    spread = {
        "decoder.head.proj.weight": weight.repeat(1, head.upsample),
        "decoder.head.proj.bias": torch.cat(bias_u),
    }
    model.load_state_dict(spread, strict=False)
    return spread


def freeze(model: CodecModel, parts: tuple[str, ...]) -> None:
    """Stop gradients into ``parts`` (``"encoder"``, ``"quantizer"``) of ``model``."""
    for name in parts:
        getattr(model, name).requires_grad_(False)


def frozen_quantize(quantizer: ResidualVQ, latent: torch.Tensor, training: bool) -> QuantizerOutput:
    """Quantize ``latent [M, D]`` with fixed codebooks, with quantizer dropout when ``training``.

    The quantized latent passes the gradient straight through to ``latent`` (as in the
    trainable quantizer); the commitment loss pulls ``latent`` towards the fixed codewords.
    """
    with torch.autocast(latent.device.type, enabled=False), torch.no_grad():
        latent32 = latent.float()
        k = quantizer.total_codebooks
        codes = quantizer.encode(latent32)
        m = latent.shape[0]
        num_active = torch.full((m,), k, device=latent.device, dtype=torch.long)
        if training and quantizer.cfg.dropout > 0:
            drop = torch.rand(m, device=latent.device) < quantizer.cfg.dropout
            num_active = torch.where(drop, torch.randint(1, k + 1, (m,), device=latent.device), num_active)
        words = quantizer._packed().out_codebooks  # [K, size, D]
        levels = torch.arange(k, device=latent.device)
        chosen = words[levels[None, :], codes]  # [M, K, D]
        mask = (levels[None, :] < num_active[:, None]).to(chosen.dtype)
        quantized = (chosen * mask[..., None]).sum(1)
    straight = latent32 + (quantized - latent32).detach()
    commitment = F.mse_loss(latent32, quantized) if latent.requires_grad else latent32.new_zeros(())
    return QuantizerOutput(straight, codes, num_active, commitment, latent32.new_zeros(()))


def generator_forward(model: CodecModel, wav: torch.Tensor, frozen: tuple[str, ...]) -> ModelOutput:
    """``model(wav)`` for training, with the ``frozen`` parts in eval mode and without gradients."""
    if not frozen:
        return model(wav)
    return forward_with_latent(model, wav, frozen)[1]


def forward_with_latent(
    model: CodecModel, wav: torch.Tensor, frozen: tuple[str, ...]
) -> tuple[torch.Tensor, ModelOutput]:
    """The training forward step by step: encoder latent ``[N, F, D]`` and the model's output,
    with the ``frozen`` parts in eval mode and without gradients."""
    for name in frozen:
        getattr(model, name).eval()
    with torch.set_grad_enabled("encoder" not in frozen and torch.is_grad_enabled()):
        latent = model.encoder(wav)
    n, f, d = latent.shape
    flat = latent.reshape(n * f, d)
    if "quantizer" in frozen:
        q = frozen_quantize(model.quantizer, flat, model.training)
    else:
        q = model.quantizer(flat)
    return latent, ModelOutput(model.synthesize(q.quantized.reshape(n, f, d).to(latent.dtype)), q)
