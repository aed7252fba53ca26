"""codec: a multi-codebook neural audio codec (RVQ) for speech language models.

>>> from codec import Codec
>>> codec = Codec.from_pretrained()                 # the bundled default model
>>> codes = codec.encode(wav, sample_rate=16000)    # Codes: codes [B, K, F] + lengths
>>> wav = codec.decode(codes)                       # [B, C, T], trimmed to the true lengths
"""

from codec.api import Codec
from codec.config import CodecConfig
from codec.pipeline.audiofile import load_audio, save_audio
from codec.tokens import Codes

__version__ = "0.1.0"

__all__ = ["Codec", "CodecConfig", "Codes", "__version__", "load_audio", "save_audio"]
