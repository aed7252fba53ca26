"""The tokenizer interface every codec model implements: this library's model and published peers.

:class:`Backend` is what :class:`codec.Codec` (our model) and the backends for other codecs'
published weights (:mod:`codec.backends`) share: batches of audio in, :class:`Codes` out and
back, with one set of input checks, lengths, rates and model identity.  A backend supplies
its model's numbers (rate, hop, codebooks), its weights fingerprint and two hooks on rows of
mono audio at the model's rate, :meth:`Backend._encode_rows` and :meth:`Backend._decode_rows`.
Everything around them lives here once: a list of clips padded into a batch, each item
resampled at its own length, frames counted from lengths, decoded audio trimmed and zeroed
past each length and brought back to any rate, and codes of other weights refused.

What holds beyond shapes and lengths is each backend's own and is stated by it:
``batch_invariant`` (item ``i`` of a padded batch gets exactly the codes it gets alone: ours
by construction; a peer whose layers see past an item's end into the padding does not) and
``causal`` (:meth:`Backend.stream` works; the others refuse with a :class:`StreamingError`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch

from codec.audio import AudioError, as_batch, pad_clips, resample, resampled_length
from codec.checkpoint import ModelIdentity, weights_fingerprint
from codec.checks import check_codes
from codec.errors import CodesError, InputError
from codec.streaming import StreamingError
from codec.tokens.codes import Codes


class Backend(ABC):
    """A loaded codec model with the tokenizer API (``encode``, ``decode``, ``stream``).

    Attributes:
        kind: the model family (``ours``, ``encodec``, ``dac``, ``mimi``, ``snac``, ...).
        name: a plain name recorded in codes and token files (informational; the identity
            is :attr:`fingerprint`).
        source: the hub id or folder the weights came from ("" for ours).
        versions: e.g. ``transformers=5.25.0`` ("" for ours).
        batch_invariant: whether item ``i`` of a padded batch gets exactly the codes it gets
            alone (and decodes to the same samples).
    """

    kind: str = ""
    name: str = ""
    source: str = ""  # where the weights came from (a hub id or folder), for reports
    versions: str = ""  # the library that runs the model, where its version can change the output
    batch_invariant: bool = False

    # -- the model's numbers --------------------------------------------------------------------

    @property
    @abstractmethod
    def sample_rate(self) -> int: ...

    @property
    @abstractmethod
    def hop_length(self) -> int:
        """Samples per frame at :attr:`sample_rate`."""

    @property
    @abstractmethod
    def codebook_size(self) -> int: ...

    @property
    @abstractmethod
    def total_codebooks(self) -> int: ...

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """The weights fingerprint (:func:`codec.checkpoint.weights_fingerprint`): the model's identity."""

    @abstractmethod
    def torch_module(self) -> torch.nn.Module:
        """The PyTorch model behind the backend (its parameters and device)."""

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def causal(self) -> bool:
        """Whether the model streams (:meth:`stream`); offline-only models return False."""
        return False

    @property
    def lookahead(self) -> int:
        """Decoder lookahead in samples: streamed audio lags its codes by this much."""
        return 0

    @property
    def device(self) -> torch.device:
        return next(self.torch_module().parameters()).device

    @property
    def identity(self) -> ModelIdentity:
        """Name and fingerprint, to check codes against (see :meth:`ModelIdentity.mismatch`)."""
        return ModelIdentity(self.name, self.fingerprint, {})

    def codebook_counts(self) -> tuple[int, ...]:
        """The numbers of leading codebooks that are a valid encoding (default: every 1..K)."""
        return tuple(range(1, self.total_codebooks + 1))

    def bitrate(self, num_codebooks: int | None = None) -> float:
        """Bits per second per channel: ``frame_rate * K * log2(codebook_size)``."""
        k = self._check_num_codebooks(num_codebooks)
        return self.frame_rate * k * math.log2(self.codebook_size)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.torch_module().parameters())

    def to(self, device: str | torch.device) -> Backend:
        self.torch_module().to(device)
        return self

    # -- the two hooks --------------------------------------------------------------------------

    @abstractmethod
    def _encode_rows(self, rows: torch.Tensor, frames: torch.Tensor, num_codebooks: int) -> torch.Tensor:
        """Codes of mono rows at the model rate.

        Args:
            rows: ``[N, F * hop_length]`` float on :attr:`device`, zero past each row's length.
            frames: ``[N]`` valid frames per row (CPU int64; the longest is ``F``).
            num_codebooks: K.
        Returns: int ``[N, K, F]``.
        """

    @abstractmethod
    def _decode_rows(self, codes: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Audio of code rows.

        Args:
            codes: int64 ``[N, K, F]`` on :attr:`device` (valid codes; frames past a row's
                length hold whatever the encoder gave its padding).
            frames: ``[N]`` valid frames per row (CPU int64).
        Returns: float ``[N, T]`` at the model rate with ``T`` about ``F * hop_length``
        (trimmed or zero-padded to the true lengths by the caller).
        """

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
                one batch with ``lengths = T_i``).  Each channel is coded separately.
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
        check_rate(sample_rate)
        b, c, t = wav.shape
        orig_lengths = self._check_lengths(lengths, b, t)
        rows = self._to_model_rate(wav, orig_lengths, sample_rate)
        model_lengths = resampled_length(orig_lengths, sample_rate, self.sample_rate)
        frames = torch.div(model_lengths + self.hop_length - 1, self.hop_length, rounding_mode="floor")
        n_frames = int(frames.max())
        rows = torch.nn.functional.pad(rows, (0, n_frames * self.hop_length - rows.shape[-1]))
        codes = self._encode_rows(rows, frames.repeat_interleave(c), k)
        if tuple(codes.shape) != (b * c, k, n_frames):
            raise RuntimeError(
                f"{self.kind} model gave codes {tuple(codes.shape)}, expected {(b * c, k, n_frames)}"
            )
        return Codes(
            codes=codes.to(out_device, torch.long).contiguous(),
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
            codes: as returned by :meth:`encode` (any valid number of leading codebooks), or a
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
            check_rate(sample_rate)
        out_device = torch.device(device) if device is not None else codes.codes.device
        lengths = codes.lengths.to(torch.long).cpu()
        frames = codes.frame_lengths.to(torch.long).cpu().repeat_interleave(codes.channels)
        wav = self._decode_rows(codes.codes.to(self.device, torch.long), frames).float()
        t = int(lengths.max())
        wav = torch.nn.functional.pad(wav, (0, max(0, t - wav.shape[-1])))[:, :t]
        wav = wav.reshape(codes.batch_size, codes.channels, t)
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

    def stream(self, batch_size: int = 1, channels: int = 1, num_codebooks: int | None = None) -> Any:
        """A stateful streaming handle (causal models only; see :class:`codec.streaming.Stream`)."""
        raise StreamingError(
            f"model {self.name!r} ({self.kind}) cannot stream: it codes whole signals only; "
            "use encode()/decode() on whole signals"
        )

    # -- checks ---------------------------------------------------------------------------------

    def _check_num_codebooks(self, num_codebooks: int | None) -> int:
        if num_codebooks is None:
            return self.total_codebooks
        if isinstance(num_codebooks, bool) or not isinstance(num_codebooks, int):
            raise InputError(f"num_codebooks must be an integer, got {num_codebooks!r}")
        counts = self.codebook_counts()
        if num_codebooks not in counts:
            valid = f"1..{self.total_codebooks}" if len(counts) == self.total_codebooks else str(counts)[1:-1]
            raise InputError(f"num_codebooks must be in {valid}, got {num_codebooks}")
        return num_codebooks

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

    def _model_dtype(self) -> torch.dtype:
        return next(self.torch_module().parameters()).dtype

    def _to_model_rate(self, wav: torch.Tensor, lengths: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """``[B, C, T]`` -> mono rows ``[B * C, T']`` at the model rate, zero past each length.

        Items are resampled one by one at their own lengths, so padding never changes them.
        """
        b, c, t = wav.shape
        wav = wav.to(self.device, self._model_dtype())
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
        if codes.num_codebooks not in self.codebook_counts():
            raise CodesError(
                f"codes have {codes.num_codebooks} codebooks; this model decodes "
                f"{', '.join(map(str, self.codebook_counts()))}"
            )
        if codes.lengths.shape != (codes.batch_size,):
            raise CodesError(f"codes.lengths must have one entry per item ({codes.batch_size})")
        if int(codes.frame_lengths.max()) > codes.num_frames or int(codes.lengths.min()) < 1:
            raise CodesError("codes.lengths do not fit the number of frames in codes.codes")


class WrappedBackend(Backend):
    """A peer's loaded model object behind :class:`Backend`.

    Holds the object, its name and source, puts its PyTorch module in eval mode and fingerprints
    that module's weights once (with ``extra`` tensors first, for settings that change the codes
    without being weights, such as a bottleneck preset).  Subclasses whose object is not itself
    the module override :meth:`torch_module`.
    """

    def __init__(
        self, model: Any, name: str, source: str = "", extra: dict[str, torch.Tensor] | None = None
    ) -> None:
        self.model, self.name, self.source = model, name, source
        module = self.torch_module().eval()
        self._fingerprint = weights_fingerprint({**(extra or {}), **module.state_dict()})

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def torch_module(self) -> torch.nn.Module:
        return self.model


def check_rate(sample_rate: object) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise AudioError(f"sample_rate must be a positive integer, got {sample_rate!r}")
