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

``Codec`` implements :class:`codec.backends.Backend`, the interface the backends for other codecs'
published weights implement too; ``Codec.from_pretrained("dac:descript/dac_16khz")`` and the
other specs of :mod:`codec.backends` load those.
"""

from __future__ import annotations

from pathlib import Path

import torch

from codec import pretrained
from codec.backends.base import Backend
from codec.checkpoint import ModelIdentity, load_checkpoint, weights_fingerprint
from codec.config import CodecConfig
from codec.lazy import moved
from codec.model import CodecModel, build_model
from codec.streaming import EXACT_FRAMES, Stream


class Codec(Backend):
    """A loaded model of this library with the tokenizer API (:class:`codec.backends.Backend`).

    Args:
        model: the underlying :class:`CodecModel` (put in eval mode).
        name: a name recorded in the codes and token files.
    """

    kind = "ours"
    batch_invariant = True

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
    ) -> Backend:
        """Load the bundled default model (no argument), a bundled model by name, a model directory,
        or another codec's published weights by a backend spec (``dac:descript/dac_16khz``,
        ``mimi:./my_mimi``, ...; see :mod:`codec.backends`), which gives that backend."""
        from codec import backends

        text = name_or_dir if isinstance(name_or_dir, str) else ""
        if backends.is_spec(text) or (":" in text and not Path(text).exists()):
            kind, ref = backends.parse(text)  # an unknown kind is named, with the known ones
            if kind != "ours":
                return backends.load(name_or_dir, device)
            name_or_dir = ref or None  # ours:NAME_OR_DIR is NAME_OR_DIR
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

    def torch_module(self) -> CodecModel:
        return self.model

    # -- properties -----------------------------------------------------------------------------

    @property
    def config(self) -> CodecConfig:
        return self.model.cfg

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

    # -- the model's hooks (the rest of encode/decode is Backend's) -----------------------------

    def _encode_rows(self, rows: torch.Tensor, frames: torch.Tensor, num_codebooks: int) -> torch.Tensor:
        # Padded to EXACT_FRAMES so every matrix product has enough rows to take the kernel path
        # of a long input: a row's result then depends on neither the batch size nor the length.
        n_frames = rows.shape[-1] // self.hop_length
        padded = max(n_frames, EXACT_FRAMES)
        rows = torch.nn.functional.pad(rows, (0, padded * self.hop_length - rows.shape[-1]))
        frame_mask = None if self.causal else self._row_mask(frames, padded)
        return self.model.encode(rows, num_codebooks, frame_mask=frame_mask)[..., :n_frames]

    def _decode_rows(self, codes: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        n_frames = codes.shape[-1]
        padded = max(n_frames, EXACT_FRAMES)
        data = torch.nn.functional.pad(codes, (0, padded - n_frames))
        return self.model.decode_offline(data, self._row_mask(frames, padded))

    def _row_mask(self, frames: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``[N, n_frames, 1]``: 1 on each row's valid frames (non-causal layers must not see padding)."""
        mask = torch.arange(n_frames)[None, :] < frames[:, None]
        return mask[..., None].to(self.device, self._model_dtype())

    def _frame_mask(self, lengths: torch.Tensor, channels: int, n_frames: int) -> torch.Tensor:
        """:meth:`_row_mask` of items of ``lengths`` samples, ``channels`` rows each."""
        frames = torch.div(lengths + self.hop_length - 1, self.hop_length, rounding_mode="floor")
        return self._row_mask(frames.repeat_interleave(channels), n_frames)

    # -- streams (files: codec.pipeline.encode_file / decode_file) ----------------------------

    def stream(self, batch_size: int = 1, channels: int = 1, num_codebooks: int | None = None) -> Stream:
        """A new, independent streaming handle (causal models only); see :class:`codec.streaming.Stream`."""
        return Stream(self.model, batch_size, channels, num_codebooks, check=self._check_codes_match)


__all__ = ["Codec"]
# The padding constant now lives with the stream whose exactness it guarantees.
__getattr__ = moved(__name__, {"MIN_FRAMES": ("codec.streaming", "EXACT_FRAMES")})
