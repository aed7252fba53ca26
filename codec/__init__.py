"""codec: a multi-codebook neural audio codec (RVQ) for speech language models.

>>> from codec import Codec
>>> codec = Codec.from_pretrained()                 # the bundled default model
>>> codes = codec.encode(wav, sample_rate=16000)    # Codes: codes [B, K, F] + lengths
>>> wav = codec.decode(codes)                       # [B, C, T], trimmed to the true lengths

The exports are loaded on first use (:mod:`codec.lazy`): importing a submodule such as
``codec.cli`` runs this file, and the command line's ``--help`` or a usage error must not
wait for PyTorch to load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codec.lazy import exports

if TYPE_CHECKING:
    from codec.api import Codec
    from codec.config import CodecConfig
    from codec.pipeline.audiofile import load_audio, save_audio
    from codec.tokens import Codes

__version__ = "0.1.0"

__all__ = ["Codec", "CodecConfig", "Codes", "__version__", "load_audio", "save_audio"]

# export -> the module that defines it
_EXPORTS = {
    "Codec": "codec.api",
    "CodecConfig": "codec.config",
    "Codes": "codec.tokens.codes",
    "load_audio": "codec.pipeline.audiofile",
    "save_audio": "codec.pipeline.audiofile",
}
__getattr__, __dir__ = exports(__name__, _EXPORTS)
