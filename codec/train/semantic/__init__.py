"""Semantic distillation of the first codebook (SpeechTokenizer / Mimi style), training only.

The first level of the residual VQ is trained to carry what a self-supervised speech model
(the *teacher*: HuBERT, WavLM, wav2vec 2.0 or any frame-feature model) encodes, so that an
LM reading the first codebook sees content first.  A learned projection maps that level's
quantized output to the teacher's features at one layer, time-aligned to the codec's frames;
the projection lives in the training module only and is never exported.

- :mod:`.config`: the ``train.semantic`` section (off while ``teacher`` is null);
- :mod:`.teacher`: teachers by name (torchaudio bundles), file (TorchScript), import path or callable;
- :mod:`.align`: resampling teacher frames to the codec's frame rate, the projection and its loss;
- :mod:`.store`: teacher features precomputed once per file and read back for training crops.

Nothing here is imported by the inference core or by :mod:`codec.train.config` beyond the
config dataclass.
"""
