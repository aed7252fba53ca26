"""Intelligibility for ``codec bench``: the word error rate a speech recogniser sees.

The metric ``wer`` transcribes the reference and the decoded audio with the same Whisper model
(``transformers``) and scores the decoded transcript against the reference's with ``jiwer``,
after lower-casing and removing punctuation: how much of what the recogniser hears in the
original survives the codec, with no transcripts needed.  A file in which it hears no words
gets no score (its reason is listed).  Audio longer than Whisper's 30 s window is transcribed
in 30 s pieces.

The model is ``--asr-model`` (a hub id or a folder; default :data:`DEFAULT_MODEL`), which the
command passes to its metric worker processes in the environment (:data:`ENV`); each process
loads it once, through the same hub access as the codec backends (a model that cannot be had
is one line saying how to get it).
"""

from __future__ import annotations

import hashlib
import os
import re

import numpy as np
import torch

ENV = "CODEC_ASR_MODEL"
DEFAULT_MODEL = "openai/whisper-base.en"
WINDOW_SECONDS = 30  # Whisper's input window
_RATE = 16000  # Whisper's input rate
_LOADED: dict[str, Transcriber] = {}


def normalize(text: str) -> str:
    """Lower case, letters, digits and apostrophes only, single spaces."""
    return " ".join(re.sub(r"[^\w' ]+", " ", text.lower().replace("_", " ")).split())


class Transcriber:
    """A Whisper model and its processor, from a hub id or a folder.

    Args:
        ref: what ``from_pretrained`` takes (``openai/whisper-base.en``, ``./whisper``).
    """

    def __init__(self, ref: str) -> None:
        from codec.backends.hf import quiet_transformers
        from codec.backends.hub import fetch, need

        need("transformers", "the wer metric")
        need("jiwer", "the wer metric")
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        with quiet_transformers():
            self.model = fetch("asr", ref, WhisperForConditionalGeneration.from_pretrained, "--asr-model ")
            self.processor = fetch("asr", ref, WhisperProcessor.from_pretrained, "--asr-model ")
        self.model.eval()
        self._heard: dict[str, str] = {}  # reference transcripts by content (each codec scores the same one)

    @torch.inference_mode()
    def __call__(self, wav: np.ndarray, sample_rate: int) -> str:
        """The normalised transcript of mono ``wav [T]`` at ``sample_rate``."""
        data = np.ascontiguousarray(wav, dtype=np.float32).tobytes()
        key = f"{hashlib.sha256(data).hexdigest()}@{sample_rate}"
        if key not in self._heard:
            if len(self._heard) > 256:
                self._heard.clear()
            self._heard[key] = self._transcribe(wav, sample_rate)
        return self._heard[key]

    def _transcribe(self, wav: np.ndarray, sample_rate: int) -> str:
        from codec.audio import resample

        x = torch.as_tensor(np.asarray(wav, dtype=np.float32))
        x = resample(x[None], sample_rate, _RATE)[0].numpy() if sample_rate != _RATE else x.numpy()
        step = WINDOW_SECONDS * _RATE
        pieces = [x[i : i + step] for i in range(0, max(len(x), 1), step)]
        feats = self.processor(pieces, sampling_rate=_RATE, return_tensors="pt").input_features
        ids = self.model.generate(feats.to(self.model.device, self.model.dtype))
        return normalize(" ".join(self.processor.batch_decode(ids, skip_special_tokens=True)))


def transcriber(ref: str | None = None) -> Transcriber:
    """The process's transcriber for ``ref`` (default: :data:`ENV`, else :data:`DEFAULT_MODEL`)."""
    ref = ref or os.environ.get(ENV) or DEFAULT_MODEL
    if ref not in _LOADED:
        _LOADED[ref] = Transcriber(ref)
    return _LOADED[ref]


def wer(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Word error rate of the decoded audio's transcript against the reference audio's."""
    import jiwer

    asr = transcriber()
    heard = asr(reference, sample_rate)
    if not heard:
        raise ValueError("the ASR model hears no words in the reference")
    return float(jiwer.wer(heard, asr(estimate, sample_rate) or "<nothing>"))
