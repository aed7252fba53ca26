"""The tokenizer API: :class:`Codec` turns batches of audio into :class:`Codes` and back.

Promises, each held by a test:

* batch invariance: item ``i`` of a padded batch gets exactly the codes it gets alone and
  decodes to the same samples (bit for bit on one CPU thread: with several, the matrix
  products' summation order can follow the batch shape and flip a near-tie code);
* determinism: the same input gives the same codes, across runs and batch sizes;
* variable bitrate: the first ``k`` codebooks are a valid lower-bitrate encoding;
* streaming parity: a causal model streamed in any chunking gives the offline result.

``encode`` takes a padded batch with ``lengths`` or a list of clips of different lengths;
``decode`` takes :class:`Codes` or a plain integer tensor ``[B, K, F]`` (what a language model
generates; see :mod:`codec.tokens` for LM layouts and the step-by-step detokenizer).

Outputs are ordinary tensors (computed under ``no_grad``, not ``inference_mode``), so codes can
index an embedding that trains and decoded audio can enter a loss.  They are returned on the
input's device (or ``device=``).  The codes record the weights fingerprint of the model that
made them, and decoding refuses codes of other weights (:class:`codec.checkpoint.ModelIdentity`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from codec import pretrained
from codec.audio import AudioError, as_batch, pad_clips, resample, resampled_length
from codec.checkpoint import ModelIdentity, load_checkpoint, weights_fingerprint
from codec.config import CodecConfig
from codec.errors import CodesError
from codec.model import CodecModel, build_model
from codec.streaming import Stream, check_codes, check_num_codebooks
from codec.tokens.codes import Codes

# Offline inputs are padded to at least this many frames so every matrix product has enough
# rows to take the same kernel path as a long input: a row's result then does not depend on
# the batch size or length, which is what makes codes batch-invariant bit for bit.
MIN_FRAMES = 16  # public: callers that count the frames a batch runs on (padding statistics) use it


class Codec:
    """A loaded codec model with the tokenizer API.

    Args:
        model: the underlying :class:`CodecModel` (put in eval mode).
        name: a name recorded in the codes and token files.
    """

    def __init__(self, model: CodecModel, name: str | None = None) -> None:
        self.model = model.eval()
        self.name = name or model.cfg.name
        # What old (version-1) token files hashed to identify the model: its config as saved.
        self._saved_config = model.cfg.to_dict()
        self._fingerprint_key: tuple | None = None
        self._fingerprint = ""

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls, name_or_dir: str | Path | None = None, device: str | torch.device | None = None
    ) -> Codec:
        """Load the bundled default model (no argument), a bundled model by name, or a model directory."""
        if name_or_dir is not None and Path(name_or_dir).is_dir():
            folder, name = Path(name_or_dir), None
        elif name_or_dir is not None and (Path(name_or_dir).exists() or "/" in str(name_or_dir)):
            raise FileNotFoundError(f"{name_or_dir}: no such model directory")
        else:
            folder = pretrained.model_dir(None if name_or_dir is None else str(name_or_dir))
            name = folder.name
        ckpt = load_checkpoint(folder, device)
        codec = cls(ckpt.model, name)
        codec._saved_config = ckpt.config
        codec._fingerprint_key, codec._fingerprint = codec._weights_key(), ckpt.fingerprint
        return codec

    @classmethod
    def from_config(cls, config: CodecConfig | str | Path, device: str | torch.device | None = None) -> Codec:
        """A randomly initialised codec (for tests and training), from a config or preset."""
        cfg = config if isinstance(config, CodecConfig) else CodecConfig.from_yaml(config)
        return cls(build_model(cfg).to(device or "cpu"))

    def to(self, device: str | torch.device) -> Codec:
        self.model.to(device)
        return self

    # -- properties -----------------------------------------------------------------------------

    @property
    def config(self) -> CodecConfig:
        return self.model.cfg

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def fingerprint(self) -> str:
        """The weights fingerprint (:func:`codec.checkpoint.weights_fingerprint`): the model's identity.

        Recomputed whenever a weight has changed since it was last computed (e.g. by training).
        """
        key = self._weights_key()
        if key != self._fingerprint_key:
            self._fingerprint = weights_fingerprint(self.model.state_dict())
            self._fingerprint_key = key
        return self._fingerprint

    @property
    def identity(self) -> ModelIdentity:
        """Name, fingerprint and saved config, to check codes against (see :meth:`ModelIdentity.mismatch`)."""
        return ModelIdentity(self.name, self.fingerprint, self._saved_config)

    def _weights_key(self) -> tuple:
        # Every in-place change bumps a tensor's version; moving or replacing one changes its
        # storage: either makes the cached fingerprint stale.
        return tuple(
            (t.data_ptr(), t._version, t.dtype) for t in (*self.model.parameters(), *self.model.buffers())
        )

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def frame_rate(self) -> float:
        return self.config.frame_rate

    @property
    def codebook_size(self) -> int:
        return self.config.quantizer.codebook_size

    @property
    def total_codebooks(self) -> int:
        return self.config.quantizer.total_codebooks

    @property
    def causal(self) -> bool:
        return self.config.causal

    @property
    def lookahead(self) -> int:
        """Decoder lookahead in samples: streamed audio lags its codes by this much."""
        return self.model.decoder_delay

    def bitrate(self, num_codebooks: int | None = None) -> float:
        """Bits per second per channel: ``frame_rate * K * log2(codebook_size)``."""
        k = self._check_num_codebooks(num_codebooks)
        return self.frame_rate * k * math.log2(self.codebook_size)

    # -- offline --------------------------------------------------------------------------------

    @torch.no_grad()
    def encode(
        self,
        wav: torch.Tensor | Sequence[torch.Tensor],
        sample_rate: int,
        lengths: torch.Tensor | list[int] | None = None,
        num_codebooks: int | None = None,
        device: str | torch.device | None = None,
    ) -> Codes:
        """Encode a padded batch, or a list of clips of different lengths.

        Args:
            wav: ``[B, C, T]`` float samples in [-1, 1] (or ``[T]`` for one mono clip), or a list
                of ``B`` clips, each ``[T_i]`` or ``[C, T_i]`` with the same ``C`` (padded into
                one batch with ``lengths = T_i``; each item's codes equal encoding it alone).
                Each channel is coded separately.
            sample_rate: rate of ``wav``; resampled to the model's rate if different.
            lengths: ``[B]`` valid samples per item (default: all ``T``; not with a list);
                samples past an item's length are ignored.
            num_codebooks: codebooks to produce (default: all); lower means lower bitrate.
            device: where the codes go (default: ``wav``'s device).
        Returns: :class:`Codes` with ``codes [B * C, K, F]`` (``lengths`` stay on the CPU).
        """
        if isinstance(wav, (list, tuple)):
            if lengths is not None:
                raise AudioError("lengths come from the clips when wav is a list; do not pass lengths")
            wav, lengths = pad_clips(wav)
        wav = as_batch(wav)
        out_device = torch.device(device) if device is not None else wav.device
        k = self._check_num_codebooks(num_codebooks)
        _check_rate(sample_rate)
        b, c, t = wav.shape
        orig_lengths = self._check_lengths(lengths, b, t)
        rows = self._to_model_rate(wav, orig_lengths, sample_rate)
        model_lengths = resampled_length(orig_lengths, sample_rate, self.sample_rate)
        n_frames = int(
            torch.div(model_lengths.max() + self.hop_length - 1, self.hop_length, rounding_mode="floor")
        )
        padded = max(n_frames, MIN_FRAMES) * self.hop_length
        rows = torch.nn.functional.pad(rows, (0, padded - rows.shape[-1]))
        frame_mask = None if self.causal else self._frame_mask(model_lengths, c, padded // self.hop_length)
        codes = self.model.encode(rows, k, frame_mask=frame_mask)[..., :n_frames]
        return Codes(
            codes=codes.to(out_device).contiguous(),
            lengths=model_lengths,
            sample_rate=self.sample_rate,
            hop_length=self.hop_length,
            codebook_size=self.codebook_size,
            channels=c,
            original_sample_rate=sample_rate,
            original_lengths=orig_lengths,
            model=self.name,
            fingerprint=self.fingerprint,
        )

    @torch.no_grad()
    def decode(
        self,
        codes: Codes | torch.Tensor,
        sample_rate: int | None = None,
        device: str | torch.device | None = None,
    ) -> torch.Tensor:
        """Decode to ``[B, C, T]`` with ``T = max(lengths)``, zeros past each item's length.

        Args:
            codes: as returned by :meth:`encode` (any number of codebooks from 1 up), or a
                plain integer tensor ``[B, K, F]`` (what an LM generates): ``B`` mono items of
                ``F`` full frames each (``T = F * hop_length``).  A plain tensor carries no
                weights fingerprint, so nothing checks that this model made it.
            sample_rate: output rate (default: the model's); ``codes.original_sample_rate``
                restores the input's rate.
            device: where the audio goes (default: the device of ``codes.codes``).
        Returns: float32 ``[B, C, T]``.
        """
        if isinstance(codes, torch.Tensor):
            codes = self._wrap_tensor(codes)
        self._check_codes_match(codes)
        if sample_rate is not None:
            _check_rate(sample_rate)
        out_device = torch.device(device) if device is not None else codes.codes.device
        lengths = codes.lengths.to(torch.long).cpu()
        n_frames = codes.num_frames
        padded = max(n_frames, MIN_FRAMES)
        data = torch.nn.functional.pad(codes.codes.to(torch.long), (0, padded - n_frames)).to(self.device)
        frame_mask = self._frame_mask(lengths, codes.channels, padded)
        wav = self.model.decode_offline(data, frame_mask).float()
        t = int(lengths.max())
        wav = wav[:, :t].reshape(codes.batch_size, codes.channels, t)
        keep = torch.arange(t)[None, :] < lengths[:, None]
        wav = (wav * keep[:, None, :].to(wav.device)).to(out_device)
        if sample_rate is None or sample_rate == self.sample_rate:
            return wav
        if sample_rate == codes.original_sample_rate and codes.original_lengths is not None:
            out_lengths = codes.original_lengths.to(torch.long).cpu()
        else:
            out_lengths = resampled_length(lengths, self.sample_rate, sample_rate)
        out = resample(wav, self.sample_rate, sample_rate)
        out = torch.nn.functional.pad(out, (0, max(0, int(out_lengths.max()) - out.shape[-1])))
        out = out[..., : int(out_lengths.max())]
        keep = torch.arange(out.shape[-1])[None, :] < out_lengths[:, None]
        return out * keep[:, None, :].to(out.device)

    # -- streams (files: codec.pipeline.encode_file / decode_file) ----------------------------

    def stream(self, batch_size: int = 1, channels: int = 1, num_codebooks: int | None = None) -> Stream:
        """A new, independent streaming handle (causal models only); see :class:`codec.streaming.Stream`."""
        return Stream(self.model, batch_size, channels, num_codebooks, check=self._check_codes_match)

    # -- checks ---------------------------------------------------------------------------------

    def _check_num_codebooks(self, num_codebooks: int | None) -> int:
        return check_num_codebooks(num_codebooks, self.total_codebooks)

    @staticmethod
    def _check_lengths(lengths: torch.Tensor | list[int] | None, batch: int, t: int) -> torch.Tensor:
        if lengths is None:
            return torch.full((batch,), t, dtype=torch.long)
        try:
            lengths = torch.as_tensor(lengths).to("cpu")
        except (TypeError, ValueError, RuntimeError):
            raise AudioError(f"lengths must be {batch} integers (one per item), got {lengths!r}") from None
        bad_type = lengths.dtype.is_floating_point or lengths.dtype == torch.bool or lengths.is_complex()
        if lengths.dim() != 1 or lengths.shape[0] != batch or bad_type:
            raise AudioError(f"lengths must be {batch} integers (one per item), got {lengths.tolist()!r}")
        if int(lengths.min()) < 1 or int(lengths.max()) > t:
            raise AudioError(f"lengths must be in 1..{t} (the padded length), got {lengths.tolist()}")
        return lengths.to(torch.long)

    def _to_model_rate(self, wav: torch.Tensor, lengths: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """``[B, C, T]`` -> mono rows ``[B * C, T']`` at the model rate, zero past each length.

        Items are resampled one by one at their own lengths, so padding never changes them.
        """
        b, c, t = wav.shape
        param = next(self.model.parameters())
        wav = wav.to(param.device, param.dtype)
        if sample_rate == self.sample_rate:
            mask = torch.arange(t, device=wav.device)[None, :] < lengths.to(wav.device)[:, None]
            return (wav * mask[:, None, :]).reshape(b * c, t)
        new_lengths = resampled_length(lengths, sample_rate, self.sample_rate)
        out = wav.new_zeros(b, c, int(new_lengths.max()))
        for i in range(b):
            item = resample(wav[i, :, : int(lengths[i])], sample_rate, self.sample_rate)
            n = int(new_lengths[i])
            out[i, :, :n] = item[:, :n]
        return out.reshape(b * c, -1)

    def _frame_mask(self, lengths: torch.Tensor, channels: int, n_frames: int) -> torch.Tensor:
        frames = torch.div(lengths + self.hop_length - 1, self.hop_length, rounding_mode="floor")
        mask = torch.arange(n_frames)[None, :] < frames.repeat_interleave(channels)[:, None]
        return mask[..., None].to(self.device, next(self.model.parameters()).dtype)

    def _wrap_tensor(self, codes: torch.Tensor) -> Codes:
        """A plain ``[B, K, F]`` tensor as :class:`Codes` of ``B`` mono items of ``F`` full frames."""
        codes = check_codes(codes, None, self.total_codebooks, self.codebook_size)
        if codes.shape[0] == 0 or codes.shape[2] == 0:
            raise CodesError(f"codes are empty (shape {tuple(codes.shape)})")
        b, _, f = codes.shape
        return Codes(
            codes=codes.to(torch.long),
            lengths=torch.full((b,), f * self.hop_length, dtype=torch.long),
            sample_rate=self.sample_rate,
            hop_length=self.hop_length,
            codebook_size=self.codebook_size,
            model=self.name,
        )

    def _check_codes_match(self, codes: Codes) -> None:
        if not isinstance(codes, Codes):
            raise CodesError(
                f"codes must be a Codes object or a [B, K, F] integer tensor, got {type(codes).__name__}"
            )
        problem = self.identity.mismatch(codes.model, codes.fingerprint, codes.config_hash)
        if problem:
            raise CodesError(f"these codes were {problem}")
        if codes.sample_rate != self.sample_rate or codes.hop_length != self.hop_length:
            raise CodesError(
                f"codes are for {codes.sample_rate} Hz / hop {codes.hop_length}, "
                f"this model is {self.sample_rate} Hz / hop {self.hop_length}"
            )
        if codes.codebook_size != self.codebook_size:
            raise CodesError(
                f"codes use {codes.codebook_size}-entry codebooks, this model {self.codebook_size}"
            )
        # Also catches rows that are not a whole number of items (batch_size rounds down).
        check_codes(codes.codes, codes.batch_size * codes.channels, self.total_codebooks, self.codebook_size)
        if codes.lengths.shape != (codes.batch_size,):
            raise CodesError(f"codes.lengths must have one entry per item ({codes.batch_size})")
        if int(codes.frame_lengths.max()) > codes.num_frames or int(codes.lengths.min()) < 1:
            raise CodesError("codes.lengths do not fit the number of frames in codes.codes")


def _check_rate(sample_rate: object) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise AudioError(f"sample_rate must be a positive integer, got {sample_rate!r}")


__all__ = ["Codec"]
