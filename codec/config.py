"""Model configuration: nested frozen dataclasses and their strict YAML/JSON mapping.

A preset file (``configs/*.yaml``) has two top-level sections, ``model`` (a :class:`CodecConfig`)
and ``train`` (read by ``codec.train``).  Loading is strict: an unknown or mistyped key is an
error that names the key, and a value of the wrong type is an error that names the field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from codec.errors import InputError


class ConfigError(InputError):
    """A configuration file or dictionary does not describe a valid model."""


# A model name is one plain name, never a path: it names run folders (runs/NAME), bundled
# models and token files' makers.  No separators, control characters or leading dot or tilde
# (so no "..", no hidden or home-relative names), at most 128 characters.
MODEL_NAME = re.compile(r"[^/\\\x00-\x1f.~][^/\\\x00-\x1f]{0,127}")


@dataclass(frozen=True)
class EncoderConfig:
    """Waveform -> latent ``[B, latent_dim, F]``.

    A causal STFT front end (window ``2 * hop_length``) feeds a stack of ConvNeXt blocks that
    run at the frame rate.  With ``downsample > 1`` the front end runs at a finer rate
    (hop ``hop_length / downsample``), ``fine_layers`` blocks run there, and a causal strided
    layer pools each group of ``downsample`` fine frames into one frame for the
    ``num_layers`` blocks at the frame rate (see :class:`codec.modules.resample.FramePool`).
    """

    dim: int = 256
    intermediate_dim: int = 768
    num_layers: int = 8
    kernel_size: int = 7
    downsample: int = 1
    fine_layers: int = 0


@dataclass(frozen=True)
class QuantizerConfig:
    """Residual vector quantizer.

    ``kind="factorized"``: DAC-style, each level projects the residual to ``codebook_dim`` and
    picks the nearest L2-normalised code by cosine similarity.  ``kind="euclidean"``:
    EnCodec/Mimi-style, nearest code by L2 distance in ``codebook_dim`` (projections are
    identities when ``codebook_dim == latent_dim``).
    """

    kind: Literal["factorized", "euclidean"] = "factorized"
    total_codebooks: int = 12
    codebook_size: int = 1024
    codebook_dim: int = 8
    # Training only: probability that an item is trained with a random number of levels.
    dropout: float = 0.5
    # EMA codebook updates (no codebook loss), k-means init and dead-code replacement.
    ema: bool = False
    ema_decay: float = 0.99
    kmeans_init: bool = False
    dead_code_threshold: float = 0.0


@dataclass(frozen=True)
class DecoderConfig:
    """Latent -> waveform: ConvNeXt blocks at the frame rate and a synthesis head.

    ``head``: ``"polar"`` (log-magnitude and phase per bin, inverse FFT) or ``"waveform"``
    (window samples from one linear layer).  ``head_upsample``: synthesis windows per frame;
    above 1 the head overlap-adds on a grid that many times finer than the frame rate (see
    :class:`codec.modules.spectral.ISTFTHead`).  With ``upsample > 1`` the ``num_layers``
    blocks at the frame rate are followed by a causal layer that expands each frame into
    ``upsample`` finer frames, ``fine_layers`` blocks at that rate, and a head at hop
    ``hop_length / upsample``.  The lookahead is one head hop: ``hop_length / upsample``.
    """

    dim: int = 256
    intermediate_dim: int = 768
    num_layers: int = 8
    kernel_size: int = 7
    head: Literal["polar", "waveform"] = "polar"
    head_upsample: int = 1
    # Synthesis window in samples (null: head_upsample + 1 sub-hops); see ISTFTHead.
    head_window: int | None = None
    upsample: int = 1
    fine_layers: int = 0


@dataclass(frozen=True)
class CodecConfig:
    """Everything needed to build a :class:`codec.model.CodecModel`.

    ``architecture``: ``"convnext"`` (the encoder and decoder sections below) or ``"lyra_v2"``
    (Lyra v2's SoundStream encoder and LyraGAN decoder, :mod:`codec.modules.lyra`, whose shape
    is fixed: 16 kHz, hop 320, latent 64, causal; the encoder and decoder sections are unused).
    """

    name: str = "codec"
    sample_rate: int = 16000
    hop_length: int = 320
    causal: bool = True
    latent_dim: int = 256
    architecture: Literal["convnext", "lyra_v2"] = "convnext"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not MODEL_NAME.fullmatch(self.name):
            raise ConfigError(
                f"name: {self.name!r} is not a plain model name (no '/', '\\', leading '.' or '~', "
                "control characters, at most 128 characters): it names the run folder and the model"
            )
        _check_positive(self, ("sample_rate", "hop_length", "latent_dim"))
        e, d = self.encoder, self.decoder
        _check_positive(e, ("dim", "intermediate_dim", "num_layers", "kernel_size", "downsample"))
        _check_positive(
            d, ("dim", "intermediate_dim", "num_layers", "kernel_size", "head_upsample", "upsample")
        )
        _check_rate_change(self.hop_length, "encoder", "downsample", e.downsample, e.fine_layers)
        _check_rate_change(self.hop_length, "decoder", "upsample", d.upsample, d.fine_layers)
        head_hop = self.hop_length // d.upsample
        if head_hop % d.head_upsample:
            raise ConfigError(
                f"decoder.head_upsample ({d.head_upsample}) must divide the head's hop "
                f"(hop_length / decoder.upsample = {head_hop})"
            )
        sub_hop = head_hop // d.head_upsample
        if d.head_window is not None and (
            d.head_window % sub_hop or d.head_window < (d.head_upsample + 1) * sub_hop
        ):
            raise ConfigError(
                f"decoder.head_window ({d.head_window}) must be a multiple of the head's sub-hop "
                f"({sub_hop}) and at least {(d.head_upsample + 1) * sub_hop}"
            )
        if self.architecture == "lyra_v2":
            _check_lyra(self)
        q = self.quantizer
        _check_positive(q, ("total_codebooks", "codebook_size", "codebook_dim"))
        if q.kind not in ("factorized", "euclidean"):
            raise ConfigError(f"quantizer.kind must be 'factorized' or 'euclidean', got {q.kind!r}")
        if not 0.0 <= q.dropout <= 1.0:
            raise ConfigError(f"quantizer.dropout must be in [0, 1], got {q.dropout}")
        if not 0.0 < q.ema_decay < 1.0:
            raise ConfigError(f"quantizer.ema_decay must be in (0, 1), got {q.ema_decay}")
        if q.kind == "euclidean" and q.codebook_dim != self.latent_dim and q.ema:
            raise ConfigError("EMA codebooks need quantizer.codebook_dim == latent_dim (no projection)")

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodecConfig:
        return from_dict(cls, data)

    @classmethod
    def from_yaml(cls, path: str | Path) -> CodecConfig:
        return cls.from_dict(load_preset(path)["model"])

    def hash(self) -> str:
        """Short stable hash of the config, the model identity version-1 token files recorded.

        A model's identity is now its weights' fingerprint (:mod:`codec.checkpoint`); this hash
        only serves to read old token files (:func:`codec.checkpoint.legacy_config_hash`).
        """
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


T = TypeVar("T")


def _check_lyra(cfg: CodecConfig) -> None:
    """Lyra v2's encoder and decoder have one shape: the config must name it."""
    want = {"sample_rate": 16000, "hop_length": 320, "latent_dim": 64, "causal": True}
    for key, value in want.items():
        if getattr(cfg, key) != value:
            raise ConfigError(f"architecture lyra_v2 needs {key}: {value}, got {getattr(cfg, key)!r}")


def _check_rate_change(hop_length: int, section: str, key: str, factor: int, fine_layers: int) -> None:
    """A trunk's rate change must divide the hop, and fine blocks need a finer rate to run at."""
    if hop_length % factor:
        raise ConfigError(f"{section}.{key} ({factor}) must divide hop_length ({hop_length})")
    if fine_layers < 0:
        raise ConfigError(f"{section}.fine_layers must be >= 0, got {fine_layers}")
    if fine_layers and factor == 1:
        raise ConfigError(f"{section}.fine_layers ({fine_layers}) needs {section}.{key} > 1")


def _check_positive(obj: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if value <= 0:
            raise ConfigError(f"{type(obj).__name__}.{name} must be positive, got {value}")


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (recursing into dataclasses)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, where)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: must be one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise :class:`ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - fields)
    if unknown:
        prefix = f"{where}." if where else ""
        valid = ", ".join(sorted(fields))
        raise ConfigError(f"unknown config key {prefix}{unknown[0]} (valid keys for {cls.__name__}: {valid})")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:  # pragma: no cover - all fields have defaults
        raise ConfigError(str(err)) from None


def load_preset(path: str | Path) -> dict[str, Any]:
    """Read a preset YAML file: a mapping with ``model`` and optionally ``train`` sections.

    ``path`` may also be the name of a preset shipped with the package (e.g. ``"debug"``).
    """
    path = resolve_preset(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'model' and 'train' sections")
    unknown = sorted(set(data) - {"model", "train"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key {unknown[0]!r} (valid: model, train)")
    data.setdefault("model", {})
    data.setdefault("train", {})
    return data


def resolve_preset(path: str | Path) -> Path:
    """A YAML path, or the name of a bundled preset (``debug``, ``speech_16k``)."""
    p = Path(path)
    if p.is_file():
        return p
    if p.suffix == "" and p.parent == Path("."):
        bundled = Path(__file__).resolve().parent.parent / "configs" / f"{p.name}.yaml"
        if not bundled.is_file():
            from importlib import resources

            bundled = Path(str(resources.files("codec.configs") / f"{p.name}.yaml"))
        if bundled.is_file():
            return bundled
    raise ConfigError(f"{path}: no such config file or bundled preset")
