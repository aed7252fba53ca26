"""The I/O pipeline: typed sources -> block encoder/decoder -> typed sinks.

==================  ==========================================================================
module              what
==================  ==========================================================================
``audiofile``       audio file source (blocks, every length/truncation check) and sink
``pcm``             raw PCM source (stdin) and sink (stdout)
``tokenio``         token file / token stream sources and sinks; header and length checks
``coders``          the block encoder and decoder cores (streaming, bit-exact with offline)
``resample``        seamless block resampling with a bounded filter
``run``             ``encode`` / ``decode`` (source -> core -> sink), ``encode_file`` & co.
``folder``          folder mode: one job per file, failures reported, the run goes on
==================  ==========================================================================

Every output goes through :class:`codec.atomic.Output` (locked, temporary until committed).
Imports run one way: ``codec.cli -> codec.commands -> codec.pipeline -> codec.api``; the API
never imports this package.
"""

from codec.pipeline.audiofile import (
    AudioFileSink,
    AudioFileSource,
    AudioInfo,
    audio_info,
    load_audio,
    save_audio,
)
from codec.pipeline.pcm import PcmSink, PcmSource
from codec.pipeline.run import DecodedFile, decode, decode_file, decode_to_file, encode, encode_file
from codec.pipeline.tokenio import CodesSink, TokenFileSink, TokenSource, TokenStreamSink

__all__ = [
    "AudioFileSink",
    "AudioFileSource",
    "AudioInfo",
    "CodesSink",
    "DecodedFile",
    "PcmSink",
    "PcmSource",
    "TokenFileSink",
    "TokenSource",
    "TokenStreamSink",
    "audio_info",
    "decode",
    "decode_file",
    "decode_to_file",
    "encode",
    "encode_file",
    "load_audio",
    "save_audio",
]
