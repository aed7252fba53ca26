"""Validation for :class:`codec.train.module.CodecTrainingModule`: metrics, audio and spectrograms.

Every validation item (one utterance, batch size 1) gets the mel distance at full depth and
at the configured lower codebook counts; the first ``metric_items`` also get SI-SDR and
PESQ-wb, the first ``audio_items`` are written to TensorBoard as audio and as spectrogram
images.  Codebook usage entropy is pooled over the whole validation set.
"""

from __future__ import annotations

import torch

from codec import metrics
from codec.metrics import MetricUnavailable, entropy_bits

# Colour map anchors (dark blue -> teal -> yellow) for spectrogram images without matplotlib.
_CMAP = torch.tensor([[0.05, 0.03, 0.25], [0.15, 0.35, 0.55], [0.15, 0.65, 0.5], [0.95, 0.9, 0.15]])


def spectrogram_image(wav: torch.Tensor, n_fft: int = 512, floor_db: float = -80.0) -> torch.Tensor:
    """Colour log-magnitude spectrogram of ``wav [T]``.

    Returns: ``[3, bins, frames]`` in [0, 1], low frequencies at the bottom.
    """
    spec = torch.stft(
        wav.float().cpu(), n_fft, n_fft // 4, window=torch.hann_window(n_fft), return_complex=True
    ).abs()
    db = 20 * torch.log10(spec.clamp(min=1e-8))
    x = ((db - db.max()).clamp(min=floor_db) / -floor_db + 1).flip(0)  # [bins, frames] in [0, 1]
    pos = x * (len(_CMAP) - 1)
    lo = pos.floor().long().clamp(max=len(_CMAP) - 2)
    frac = (pos - lo)[..., None]
    rgb = _CMAP[lo] * (1 - frac) + _CMAP[lo + 1] * frac
    return rgb.permute(2, 0, 1).contiguous()


class ValidationMixin:
    """Validation hooks; expects ``self.cfg``, ``self.model_cfg`` and ``inference_model()``."""

    def on_validation_epoch_start(self) -> None:
        q = self.model_cfg.quantizer
        self._val_counts = torch.zeros(q.total_codebooks, q.codebook_size)

    @torch.no_grad()
    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        """Args: batch ``[1, T]`` one utterance."""
        model = self.inference_model()
        was_training = model.training
        model.eval()
        try:
            self._validate_item(model, batch, batch_idx)
        finally:
            model.train(was_training)

    def _validate_item(self, model, batch: torch.Tensor, batch_idx: int) -> None:
        sr = self.model_cfg.sample_rate
        out = model(batch)
        ref, est = batch[0].float().cpu(), out.wav[0].float().cpu()
        codes = out.quantizer.codes.cpu()
        for k in range(codes.shape[1]):
            self._val_counts[k] += torch.bincount(codes[:, k], minlength=self._val_counts.shape[1]).float()
        values = {"mel_distance": metrics.mel_distance(ref, est, sr)}
        for k in self.cfg.logging.val_num_codebooks:
            if 0 < k < self.model_cfg.quantizer.total_codebooks:
                low = model(batch, num_codebooks=k).wav[0].float().cpu()
                values[f"mel_distance_{k}cb"] = metrics.mel_distance(ref, low, sr)
        if batch_idx < self.cfg.logging.metric_items:
            values["si_sdr"] = metrics.si_sdr(ref, est)
            try:
                values["pesq_wb"] = metrics.pesq_wb(ref, est, sr)
            except MetricUnavailable:
                pass
            except Exception:  # PESQ raises on silent or too short input: skip the item
                pass
        for name, value in values.items():
            self.log(f"val/{name}", value, on_epoch=True, batch_size=1, rank_zero_only=True)
        if batch_idx < self.cfg.logging.audio_items:
            self._log_media(batch_idx, ref, est)

    def _log_media(self, index: int, ref: torch.Tensor, est: torch.Tensor) -> None:
        writer = getattr(self.logger, "experiment", None)
        if writer is None or not hasattr(writer, "add_audio") or self.global_rank != 0:
            return
        sr, step = self.model_cfg.sample_rate, self.global_step
        writer.add_audio(f"audio/{index}/decoded", est.clamp(-1, 1)[None], step, sample_rate=sr)
        writer.add_image(f"spectrogram/{index}/decoded", spectrogram_image(est), step)
        if step == 0 or not getattr(self, "_logged_references", False):
            writer.add_audio(f"audio/{index}/reference", ref.clamp(-1, 1)[None], step, sample_rate=sr)
            writer.add_image(f"spectrogram/{index}/reference", spectrogram_image(ref), step)

    def on_validation_epoch_end(self) -> None:
        self._logged_references = True
        counts = getattr(self, "_val_counts", None)
        if counts is None or counts.sum() == 0:
            return
        entropies = [entropy_bits(c) for c in counts]
        logs = {f"val/codebook_entropy/{k}": h for k, h in enumerate(entropies)}
        logs["val/codebook_entropy_min"] = min(entropies)
        self.log_dict(logs, rank_zero_only=True)
