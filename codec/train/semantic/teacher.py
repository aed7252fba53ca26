"""Teachers for semantic distillation: frozen models that turn audio into frame features.

A :class:`Teacher` maps ``wav [B, T]`` at its own ``sample_rate`` to ``features [B, F, D]``.
:func:`load_teacher` builds one from

- a torchaudio pipeline bundle name (``WAVLM_BASE``, ``WAVLM_BASE_PLUS``, ``WAVLM_LARGE``,
  ``HUBERT_BASE``, ``HUBERT_LARGE``, ``WAV2VEC2_BASE``, ...): torchaudio downloads its weights
  on first use (into torch hub's cache) and reuses them afterwards;
- a TorchScript file (``torch.jit.save`` of any of those models, or of any module whose
  ``forward(wav)`` returns frame features);
- an import path ``pkg.module:attr`` naming an ``nn.Module`` instance, a class or factory
  called without arguments, or a callable ``wav -> features``;
- a Python callable or ``nn.Module`` object (from Python code).

Models with an ``extract_features(wav, lengths, num_layers)`` method (torchaudio's wav2vec
2.0 / HuBERT / WavLM, also scripted) give the output of transformer layer ``layer``
(1-based; default the last); other callables may return one tensor or a sequence of per-layer
tensors (``layer`` picks one).  The teacher's frame rate comes from the config, else from the
convolution strides of a wav2vec 2.0-family feature extractor, else from the number of frames
returned per second of input.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torchaudio.functional as AF
from torch import nn

from codec.config import ConfigError
from codec.train.semantic.align import align_frames

FeatureFn = Callable[[torch.Tensor], Any]
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
DEFAULT_SAMPLE_RATE = 16000


class TeacherError(ConfigError):
    """The teacher cannot be loaded or returned something that is not frame features (bad input:
    the configured teacher is wrong, so the command line exits with status 2)."""


class Teacher:
    """A frozen frame-feature model (not an ``nn.Module``: its weights stay out of checkpoints).

    Args:
        fn: ``wav [B, T] -> output``; see the module docstring for the outputs understood.
        sample_rate: the input rate ``fn`` expects.
        source: a stable description of where it came from (part of the precomputed features' key).
        layer: 1-based layer to take; ``None``: the last (or the only) one.
        frame_rate: the teacher's frames per second; ``None``: measured from each output.
        module: the ``nn.Module`` behind ``fn``, if any (moved between devices, kept in eval mode).
    """

    def __init__(
        self,
        fn: FeatureFn,
        sample_rate: int,
        source: str,
        layer: int | None = None,
        frame_rate: float | None = None,
        module: nn.Module | None = None,
    ) -> None:
        self.fn, self.sample_rate, self.source = fn, sample_rate, source
        self.layer, self.frame_rate, self.module = layer, frame_rate, module
        if module is not None:
            module.eval()
            for param in module.parameters():  # (ScriptModules refuse requires_grad_)
                param.requires_grad_(False)
        self._dim: int | None = None

    @property
    def identity(self) -> str:
        """Everything that decides the features: source, layer and input rate."""
        return f"{self.source}|layer={self.layer}|rate={self.sample_rate}"

    @property
    def dim(self) -> int:
        """Feature dimension D (measured once on a second of silence)."""
        if self._dim is None:
            probe = torch.zeros(1, self.sample_rate, device=self.device)
            self._dim = int(self.features(probe).shape[-1])
        return self._dim

    @property
    def device(self) -> torch.device:
        if self.module is not None:
            for tensor in (*self.module.parameters(), *self.module.buffers()):
                return tensor.device
        return torch.device("cpu")

    def to(self, device: torch.device | str) -> Teacher:
        if self.module is not None:
            self.module.to(device)
        return self

    @torch.no_grad()
    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """Args: wav ``[B, T]`` at :attr:`sample_rate`. Returns ``[B, F, D]`` float32."""
        wav = wav.float().to(self.device)
        extract = getattr(self.fn, "extract_features", None)
        if extract is not None:
            try:
                layers, _ = extract(wav, None, self.layer)
            except ValueError as err:  # torchaudio's answer to a layer it does not have
                raise TeacherError(f"teacher {self.source}: {err}") from None
            out = layers[-1]
        else:
            out = _select(self.fn(wav), self.layer)
        if not isinstance(out, torch.Tensor) or out.dim() != 3 or out.shape[0] != wav.shape[0]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise TeacherError(f"teacher {self.source}: expected features [B, F, D], got {shape}")
        return out.float()

    def rate_of(self, features: torch.Tensor, num_samples: int) -> float:
        """Frames per second of ``features`` computed from ``num_samples`` input samples."""
        if self.frame_rate is not None:
            return self.frame_rate
        return features.shape[1] * self.sample_rate / num_samples

    def frame_features(
        self, wav: torch.Tensor, sample_rate: int, frame_rate: float, num_frames: int
    ) -> torch.Tensor:
        """Teacher features on the codec's frame grid.

        Args:
            wav: ``[B, T]`` at ``sample_rate`` (resampled to the teacher's rate here).
            frame_rate, num_frames: the codec's grid (frame ``j`` centred at ``(j + 0.5) / frame_rate``).
        Returns: ``[B, num_frames, D]`` float32 on ``wav``'s device.
        """
        x = wav.float()
        if sample_rate != self.sample_rate:
            x = AF.resample(x, sample_rate, self.sample_rate)
        feats = self.features(x)
        rate = self.rate_of(feats, x.shape[-1])
        return align_frames(feats, rate, frame_rate, num_frames).to(wav.device)


def _select(out: Any, layer: int | None) -> Any:
    """The features in a callable's output: a tensor, ``(tensor, lengths)`` or per-layer tensors."""
    if isinstance(out, torch.Tensor):
        if layer is not None:
            raise TeacherError(f"layer {layer} asked for, but the teacher returns a single tensor")
        return out
    if isinstance(out, Sequence) and out:
        if isinstance(out[0], Sequence):  # (per-layer list, lengths)
            out = out[0]
        elif not all(isinstance(t, torch.Tensor) and t.dim() == 3 for t in out):
            return _select(out[0], layer)  # (features, lengths)
        index = len(out) if layer is None else layer
        if not 1 <= index <= len(out):
            raise TeacherError(f"layer {layer} asked for, but the teacher returns {len(out)} layers")
        return out[index - 1]
    return out


def _conv_stride(module: nn.Module | None) -> int | None:
    """Total stride of a wav2vec 2.0-family convolutional feature extractor, if it is one."""
    inner = getattr(module, "model", module)  # torchaudio wraps some bundles' models
    try:
        layers = inner.feature_extractor.conv_layers  # type: ignore[union-attr]
        return math.prod(int(layer.conv.stride[0]) for layer in layers)
    except Exception:  # any other architecture, or a scripted module hiding the attributes
        return None


def load_teacher(
    spec: str | FeatureFn | nn.Module,
    layer: int | None = None,
    sample_rate: int | None = None,
    frame_rate: float | None = None,
    source: str | None = None,
) -> Teacher:
    """A :class:`Teacher` from a bundle name, TorchScript file, import path or object.

    Args:
        spec: see the module docstring.
        layer, sample_rate, frame_rate: as in :class:`codec.train.semantic.config.SemanticConfig`.
        source: for a Python object: its stable name in the precomputed features' key
            (default: its qualified type or function name).
    Raises:
        TeacherError: unknown name, unreadable file, failed import or download.
    """
    default_rate = sample_rate
    if isinstance(spec, str):
        fn, source, default_rate = _from_string(spec)
        sample_rate = sample_rate or default_rate
    else:
        fn = spec
        source = source or _object_source(fn)
    module = fn if isinstance(fn, nn.Module) else None
    rate = sample_rate or getattr(fn, "sample_rate", None) or DEFAULT_SAMPLE_RATE
    if frame_rate is None and (stride := _conv_stride(module)) is not None:
        frame_rate = rate / stride
    return Teacher(fn, int(rate), source, layer, frame_rate, module)


def _object_source(obj: object) -> str:
    """A stable name for a Python teacher: its type or function name, and for a module a
    digest of its weights (two differently trained models of one class must not share features)."""
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    source = f"object:{getattr(obj, '__module__', '')}.{name}"
    if isinstance(obj, nn.Module):
        digest = hashlib.sha256()
        for key, tensor in obj.state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
        source += f":{digest.hexdigest()[:16]}"
    return source


def _from_string(spec: str) -> tuple[FeatureFn, str, int | None]:
    """``(callable, source, its sample rate or None)`` for a name, file or import path."""
    path = Path(spec).expanduser()
    if path.is_file():
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as err:  # torch raises several types for foreign files
            raise TeacherError(f"{path}: not a TorchScript file ({type(err).__name__})") from None
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        return module, f"torchscript:{digest}", None
    if _IMPORT_PATH.match(spec):
        return _import(spec), f"import:{spec}", None
    import torchaudio.pipelines as pipelines

    bundle = getattr(pipelines, spec.upper(), None)
    if bundle is None or not hasattr(bundle, "get_model") or "Wav2Vec2" not in type(bundle).__name__:
        raise TeacherError(
            f"teacher {spec!r}: not a file, an import path pkg.module:attr, or a torchaudio "
            "wav2vec 2.0 / HuBERT / WavLM bundle name (e.g. WAVLM_BASE, HUBERT_BASE)"
        )
    try:
        model = bundle.get_model()
    except Exception as err:  # network and cache errors come in many types
        raise TeacherError(
            f"teacher {spec}: could not get its weights ({type(err).__name__}: {err}); torchaudio "
            "downloads them once into torch hub's cache, which needs network access"
        ) from None
    return model, f"torchaudio:{spec.upper()}", int(bundle.sample_rate)


def _import(spec: str) -> FeatureFn:
    """Resolve ``pkg.module:attr``; a class or argument-less factory is called to make the teacher."""
    module_name, attr = spec.split(":", 1)
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise TeacherError(f"teacher {spec}: cannot import it ({err})") from None
    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, nn.Module) and _no_args(obj)):
        obj = obj()
    if not callable(obj):
        raise TeacherError(f"teacher {spec}: {type(obj).__name__} is not callable")
    return obj


def _no_args(fn: Callable[..., Any]) -> bool:
    """True for a factory: a callable whose parameters all have defaults."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    required = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return not any(p.default is p.empty and p.kind in required for p in params)


def random_teacher(kind: str = "wavlm", dim: int = 64, num_layers: int = 2, seed: int = 0) -> nn.Module:
    """An untrained torchaudio WavLM or HuBERT, shrunk, for tests and offline smoke runs.

    The architecture of the base models (the same 320-sample convolution stride, so 50 frames
    per second at 16 kHz) with ``dim`` channels and ``num_layers`` transformer layers, its
    weights drawn from a generator seeded by ``seed`` (the global random state is untouched).
    Its features carry no learned meaning: it checks the plumbing, it teaches no semantics.

    Args:
        kind: ``"wavlm"`` or ``"hubert"``.
    """
    from torchaudio.models import wav2vec2_model, wavlm_model

    convs = [(dim, 10, 5)] + [(dim, 3, 2)] * 4 + [(dim, 2, 2)] * 2
    args = dict(
        extractor_mode="group_norm",
        extractor_conv_layer_config=convs,
        extractor_conv_bias=False,
        encoder_embed_dim=dim,
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=16,
        encoder_pos_conv_groups=4,
        encoder_num_layers=num_layers,
        encoder_num_heads=4,
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=2 * dim,
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=False,
        encoder_layer_drop=0.0,
        aux_num_out=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kind == "wavlm":
            model = wavlm_model(**args, encoder_num_buckets=32, encoder_max_distance=100)
        elif kind == "hubert":
            model = wav2vec2_model(**args)
        else:
            raise ValueError(f"random_teacher: kind must be 'wavlm' or 'hubert', got {kind!r}")
    return model.eval()
