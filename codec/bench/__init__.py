"""``codec bench``: put codecs side by side on your own audio, with one set of metric code.

- :mod:`codec.bench.adapters`: the codec SPEC grammar and one interface over every codec:
  every model of :mod:`codec.backends` (ours, EnCodec, DAC, Mimi, SNAC, SpeechTokenizer, ...)
  through its tokenizer API, and :mod:`~codec.bench.baselines` Lyra v2 and Opus.
- :mod:`codec.bench.scoring`: the metrics; :mod:`codec.bench.quality`: the cached, pooled run;
  :mod:`codec.bench.summary`, :mod:`~codec.bench.plots`, :mod:`~codec.bench.report`: the
  output folder; :mod:`codec.bench.speed`: real-time factors, latency and memory.
- :mod:`codec.bench.cli`: ``codec bench quality`` and ``codec bench speed``.

Nothing here is imported by the inference core; the optional packages (pesq, pystoi,
matplotlib, scipy, ai-edge-litert, transformers) are the ``bench`` extra.
"""
