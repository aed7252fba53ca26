"""Classic and neural baselines that run anywhere: Lyra v2 (TFLite) and Opus (libopus via libsndfile).

Lyra v2: the three models in ``codec/bench/lyra_v2/`` (Apache-2.0), one 20 ms frame (320
samples at 16 kHz) per call, run with ``ai-edge-litert``.  The models keep state between
calls, so each file gets fresh interpreters; two frames of zeros at the end flush the decoder,
whose output is then aligned with the input at lag 0.  Bitrate: quantizers x 4 bits x 50 Hz.

Opus: libsndfile (the library behind ``soundfile``, already a core dependency) writes Ogg
Opus; its compression level in [0, 1] maps linearly onto a target of 256 kbps down to 6 kbps
per channel.  The achieved bitrate is the size of the whole encoded file (Ogg pages and
headers included) over the duration, so it sits a little above the target at low rates.
"""

from __future__ import annotations

import importlib.metadata
import io
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from codec.bench.adapters import Adapter, Payload, Spec, SpecError, fit_length

LYRA_DIR = Path(__file__).resolve().parent / "lyra_v2"
LYRA_RATE, LYRA_FRAME, LYRA_LEVELS, LYRA_BITS = 16000, 320, 46, 4
_LYRA_FLUSH_FRAMES = 2
OPUS_MIN_BPS, OPUS_MAX_BPS = 6000, 256000  # libsndfile's Ogg Opus range for the compression level


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


class LyraAdapter(Adapter):
    """Lyra v2 at 16, 30 or 46 quantizers (3.2, 6.0, 9.2 kbps; any count 1-46 works)."""

    kind = "lyra"
    label = "Lyra v2"
    sample_rate = LYRA_RATE
    codebook_size = 2**LYRA_BITS
    streaming = True
    threads = 1  # TFLite's own CPU threads (the speed bench sets them like torch's)

    def __init__(self, num_quantizers: int, folder: Path = LYRA_DIR) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise SpecError("lyra needs the ai-edge-litert package: pip install 'codec[bench]'") from None
        missing = [n for n in self._files() if not (folder / n).is_file()]
        if missing:
            raise SpecError(f"lyra: {folder} lacks {', '.join(missing)}")
        self._interpreter, self.folder, self.k = Interpreter, folder, num_quantizers
        self.kbps = num_quantizers * LYRA_BITS * LYRA_RATE / LYRA_FRAME / 1000

    @staticmethod
    def _files() -> tuple[str, str, str]:
        return ("soundstream_encoder.tflite", "quantizer.tflite", "lyragan.tflite")

    def identity(self) -> str:
        return f"lyra-v2-1.3.2|k={self.k}|litert={_version('ai-edge-litert')}"

    def _runner(self, name: str, signature: str):
        interpreter = self._interpreter(model_path=str(self.folder / name), num_threads=self.threads)
        return interpreter.get_signature_runner(signature)

    def _frames(self, wav: np.ndarray) -> np.ndarray:
        n = -(-wav.shape[-1] // LYRA_FRAME) + _LYRA_FLUSH_FRAMES
        x = np.zeros(n * LYRA_FRAME, dtype=np.float32)
        x[: wav.shape[-1]] = wav
        return x.reshape(n, 1, LYRA_FRAME)

    def encode(self, wav: np.ndarray) -> Payload:
        encoder = self._runner("soundstream_encoder.tflite", "serving_default")
        quantize = self._runner("quantizer.tflite", "encode")
        k = np.array(self.k, dtype=np.int32)
        codes = [
            quantize(input_frames=encoder(input_audio=frame)["output_0"], num_quantizers=k)["output_0"]
            for frame in self._frames(wav)
        ]
        c = np.concatenate(codes, axis=1)[: self.k, :, 0].astype(np.int64)  # [K, F]
        sent = -(-wav.shape[-1] // LYRA_FRAME)  # the flush frames only exist offline
        return Payload(c, sent * self.k * LYRA_BITS, wav.shape[-1], c[:, :sent])

    def decode(self, payload: Payload) -> np.ndarray:
        dequantize = self._runner("quantizer.tflite", "decode")
        decoder = self._runner("lyragan.tflite", "serving_default")
        out = []
        for f in range(payload.data.shape[1]):
            idx = np.full((LYRA_LEVELS, 1, 1), -1, dtype=np.int32)
            idx[: self.k, 0, 0] = payload.data[:, f]
            features = dequantize(encoding_indices=idx)["output_0"]
            out.append(decoder(input_audio=features)["output_0"].reshape(-1))
        return fit_length(np.concatenate(out), payload.num_samples)

    def stream_frames(self, wav: np.ndarray) -> tuple[float, list[float], list[float]]:
        encoder = self._runner("soundstream_encoder.tflite", "serving_default")
        quantize = self._runner("quantizer.tflite", "encode")
        dequantize = self._runner("quantizer.tflite", "decode")
        decoder = self._runner("lyragan.tflite", "serving_default")
        k = np.array(self.k, dtype=np.int32)
        enc, dec = [], []
        for frame in self._frames(wav)[:-_LYRA_FLUSH_FRAMES]:
            t0 = time.perf_counter()
            idx = quantize(input_frames=encoder(input_audio=frame)["output_0"], num_quantizers=k)["output_0"]
            t1 = time.perf_counter()
            decoder(input_audio=dequantize(encoding_indices=idx)["output_0"])
            enc.append(t1 - t0)
            dec.append(time.perf_counter() - t1)
        return LYRA_FRAME / LYRA_RATE, enc, dec


class OpusAdapter(Adapter):
    """Ogg Opus at a target bitrate through libsndfile; bits = the encoded file's size."""

    kind = "opus"
    label = "Opus"

    def __init__(self, kbps: float, sample_rate: int = 16000) -> None:
        if "OPUS" not in sf.available_subtypes("OGG"):
            raise SpecError(f"opus: this libsndfile ({sf.__libsndfile_version__}) cannot write Ogg Opus")
        self.kbps, self.sample_rate = kbps, sample_rate
        target = min(max(kbps * 1000, OPUS_MIN_BPS), OPUS_MAX_BPS)
        self.level = 1.0 - (target - OPUS_MIN_BPS) / (OPUS_MAX_BPS - OPUS_MIN_BPS)

    def identity(self) -> str:
        return f"opus|level={self.level:.6f}|rate={self.sample_rate}|libsndfile={sf.__libsndfile_version__}"

    def encode(self, wav: np.ndarray) -> Payload:
        buf = io.BytesIO()
        sf.write(buf, wav, self.sample_rate, format="OGG", subtype="OPUS", compression_level=self.level)
        data = buf.getvalue()
        return Payload(data, len(data) * 8, wav.shape[-1])

    def decode(self, payload: Payload) -> np.ndarray:
        out, _ = sf.read(io.BytesIO(payload.data), dtype="float32", always_2d=True)
        return fit_length(out[:, 0], payload.num_samples)


def build_lyra(spec: Spec) -> list[Adapter]:
    """Lyra adapters; each kbps must be a whole number of 4-bit quantizers at 50 Hz (0.2 kbps steps)."""
    folder = Path(spec.model) if spec.model else LYRA_DIR
    out: list[Adapter] = []
    for r in spec.kbps:
        k = round(r * 1000 / (LYRA_BITS * LYRA_RATE / LYRA_FRAME))
        if not 1 <= k <= LYRA_LEVELS or abs(k * 0.2 - r) > 1e-6:
            raise SpecError(f"lyra: {r:g} kbps is not a multiple of 0.2 kbps up to 9.2 (e.g. 3.2, 6, 9.2)")
        out.append(LyraAdapter(k, folder))
    return out


def build_opus(spec: Spec) -> list[Adapter]:
    """Opus adapters; ``opus:RATE@...`` codes at another input rate (8000/12000/16000/24000/48000)."""
    rate = 16000
    if spec.model:
        try:
            rate = int(spec.model)
        except ValueError:
            raise SpecError(f"opus:{spec.model}: expected an input rate in Hz, e.g. opus:48000") from None
        if rate not in (8000, 12000, 16000, 24000, 48000):
            raise SpecError(f"opus:{rate}: Opus takes 8000, 12000, 16000, 24000 or 48000 Hz")
    return [OpusAdapter(r, rate) for r in spec.kbps]
