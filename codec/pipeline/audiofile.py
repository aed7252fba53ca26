"""Audio files: the audio file source (read in blocks, checked) and sink (written progressively).

This is the one place where audio files are opened (through soundfile/libsndfile), so the
checks live here once:

* a file must exist, be a regular file and not be empty; names need not be UTF-8 (paths go to
  libsndfile as bytes);
* a header's length is never trusted for allocation: a length of "unknown" (a FLAC stream
  with total_samples 0, a WAV from a pipe) or an inflated one is fine, blocks are read until
  the data ends;
* truncation is caught for every container whose header declares a size (WAV, RF64, W64,
  AIFF, AU, ...): libsndfile silently shortens such files to the bytes present, but it notes
  the mismatch in its log (``data : 64000 (should be 31978)``), which :func:`truncation`
  reads; and a file that yields fewer frames than its header promises is truncated too;
* output formats are limited to what libsndfile writes reliably (:data:`WRITE_LIMITS`: an
  Ogg/Vorbis encoder above 192 kHz crashes the process instead of failing);
* native libraries (libmpg123) that print warnings on stderr are kept quiet, so an error
  stays one line.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from codec.atomic import Output, OutputError
from codec.audio import Audio, AudioError

# Extensions soundfile can write; reading accepts anything libsndfile recognises.
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}
# format -> (highest sample rate, most channels) written; measured on libsndfile 1.2 (FLAC's
# and WAV's are libsndfile's own refusals; libvorbis crashes from about 200 kHz and 256 channels).
WRITE_LIMITS = {"WAV": (10_000_000, 1024), "FLAC": (655_350, 8), "OGG": (192_000, 255)}
# libsndfile reports an unknown length as SF_COUNT_MAX; anything this large is not a real length.
_UNKNOWN_FRAMES = 1 << 62
_SF_ERRORS = (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError)


@dataclass(frozen=True)
class AudioInfo:
    """Header of an audio file: ``num_samples`` samples per channel (``None``: not declared)."""

    sample_rate: int
    channels: int
    num_samples: int | None

    @property
    def duration(self) -> float | None:
        return None if self.num_samples is None else self.num_samples / self.sample_rate


def audio_info(path: str | Path) -> AudioInfo:
    """Read and check the header of an audio file (no samples); raises :class:`AudioError`."""
    path = existing_file(path)
    try:
        with quiet_native_stderr():
            info = sf.info(os.fsencode(path))
    except _SF_ERRORS as err:
        raise AudioError(f"{path}: not a readable audio file ({_short(err)})") from None
    problem = truncation(info.extra_info)
    if problem:
        raise AudioError(f"{path}: truncated {info.format} file ({problem})")
    if info.samplerate < 1 or info.channels < 1:
        raise AudioError(f"{path}: invalid header ({info.samplerate} Hz, {info.channels} channels)")
    num_samples = int(info.frames)  # soundfile's "frames" are samples per channel
    if num_samples == 0:
        raise AudioError(f"{path}: empty audio (zero samples)")
    known = num_samples < _UNKNOWN_FRAMES
    return AudioInfo(int(info.samplerate), int(info.channels), num_samples if known else None)


_SHOULD_BE = re.compile(r"^\s*([A-Za-z][\w ]*?)\s*:\s*(\d+) \(should be (\d+)\)", re.M)
_COUNT_MISMATCH = re.compile(r"frame count (\d+) does not match value from '\w+' chunk of (\d+)")
_COMM_MISMATCH = re.compile(r"frame count read from 'COMM' chunk \((\d+)\).*?chunk \((\d+)\)", re.S)
_PLACEHOLDERS = {0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF}  # sizes streaming writers leave unset


def truncation(log: str) -> str | None:
    """The truncation libsndfile noted while opening a file (its log), or ``None``.

    A size field larger than the bytes present (by more than a pad byte) means data is
    missing; placeholder sizes of streaming writers (0, all ones) are not a promise.
    """
    for field, declared, actual in _SHOULD_BE.findall(log):
        declared_n, actual_n = int(declared), int(actual)
        if declared_n not in _PLACEHOLDERS and declared_n > actual_n + 1:
            return f"the header's {field.strip()} size is {declared_n} bytes, the file holds {actual_n}"
    for pattern in (_COUNT_MISMATCH, _COMM_MISMATCH):
        match = pattern.search(log)
        if match:
            a, b = int(match.group(1)), int(match.group(2))
            declared, present = (b, a) if pattern is _COUNT_MISMATCH else (a, b)
            if present < declared:
                return f"the header promises {declared} samples, the file holds {present}"
    return None


class AudioFileSource:
    """An audio file read in blocks ``[C, n]`` float32 of about ``block_seconds``.

    Args:
        path: any file libsndfile reads (WAV, FLAC, OGG, MP3, AIFF, ...), any rate and channels.
        block_seconds: audio per block.
    """

    def __init__(self, path: str | Path, block_seconds: float = 10.0) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.info = audio_info(path)
        self.sample_rate, self.channels = self.info.sample_rate, self.info.channels
        self.block_samples = max(1, round(block_seconds * self.sample_rate))
        self.samples_read = 0

    def blocks(self) -> Iterator[torch.Tensor]:
        """Yields ``[C, n]`` blocks; raises :class:`AudioError` on NaN/Inf, damage or truncation."""
        try:
            with quiet_native_stderr():
                handle = sf.SoundFile(os.fsencode(self.path))
            read = _read if self.info.num_samples is not None else _read_undeclared
            with handle as f:  # quiet only around native calls: the consumer may print between
                while True:
                    with quiet_native_stderr():
                        data = read(f, self.block_samples)
                    if data.shape[0] == 0:
                        break
                    if not np.isfinite(data).all():
                        raise AudioError(f"{self.path}: audio contains NaN or Inf samples")
                    self.samples_read += data.shape[0]
                    yield torch.from_numpy(np.ascontiguousarray(data.T))
        except _SF_ERRORS as err:
            raise AudioError(f"{self.path}: not a readable audio file ({_short(err)})") from None
        declared = self.info.num_samples
        if self.samples_read == 0:
            raise AudioError(f"{self.path}: empty audio (zero samples)")
        if declared is not None and self.samples_read < declared:
            raise AudioError(
                f"{self.path}: truncated (header says {declared} samples, read {self.samples_read})"
            )


def _read(f: sf.SoundFile, frames: int) -> np.ndarray:
    return f.read(frames, dtype="float32", always_2d=True)


def _read_undeclared(f: sf.SoundFile, frames: int) -> np.ndarray:
    """Read ``frames`` from a file whose length is not declared (a FLAC with total_samples 0).

    ``SoundFile.read`` seeks to the end of what it read after every block, and libsndfile
    cannot seek in such a file ("Internal psf_fseek() failed"), so this calls libsndfile's
    ``sf_readf_float`` directly, as soundfile itself does underneath, without the seek.
    """
    out = np.empty((frames, f.channels), dtype=np.float32)
    n = sf._snd.sf_readf_float(f._file, sf._ffi.cast("float *", out.ctypes.data), frames)
    return out[:n]


def load_audio(path: str | Path) -> Audio:
    """Read a whole audio file: :class:`Audio` with ``wav [C, T]`` float32 in [-1, 1]."""
    source = AudioFileSource(path)
    return Audio(torch.cat(list(source.blocks()), dim=-1), source.sample_rate)


def read_segment(path: str | Path, start: int, num_samples: int, info: AudioInfo | None = None) -> Audio:
    """Read ``num_samples`` samples per channel from sample ``start``: ``wav [C, n]`` float32.

    The checks of :func:`load_audio` hold for the part read: a file that ends before the
    samples its header promises is truncated, NaN/Inf samples are refused.  ``n`` is less than
    ``num_samples`` only where the file itself ends.  A file without a declared length (which
    libsndfile cannot seek in) is read from its start.

    Args:
        path: the file.  start: first sample.  num_samples: samples to read.
        info: the file's :func:`audio_info`, when already known.
    """
    info = info or audio_info(path)
    if info.num_samples is None:
        whole = load_audio(path).wav
        return Audio(whole[:, start : start + num_samples].contiguous(), info.sample_rate)
    try:
        with quiet_native_stderr(), sf.SoundFile(os.fsencode(path)) as f:
            f.seek(start)
            data = _read(f, num_samples)
    except _SF_ERRORS as err:
        raise AudioError(f"{path}: not a readable audio file ({_short(err)})") from None
    promised = max(0, min(num_samples, info.num_samples - start))
    if data.shape[0] < promised:
        raise AudioError(
            f"{path}: truncated (header says {info.num_samples} samples, the data ends before "
            f"{start + promised})"
        )
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: audio contains NaN or Inf samples")
    return Audio(torch.from_numpy(np.ascontiguousarray(data.T)), info.sample_rate)


def audio_file_complete(path: str | Path, sample_rate: int, channels: int, num_samples: int) -> bool:
    """Whether ``path`` is a whole, readable audio file of exactly this rate, channel count and
    length (every block read, so damage or truncation in any container shows)."""
    try:
        source = AudioFileSource(path)
        if (source.sample_rate, source.channels) != (sample_rate, channels):
            return False
        for _ in source.blocks():
            pass
    except (AudioError, OSError):
        return False
    return source.samples_read == num_samples


class AudioFileSink:
    """Writes audio ``[C, n]`` progressively to a temporary file; renamed on :meth:`commit`.

    Args:
        path: destination (WAV/FLAC/OGG by extension); 16-bit PCM for WAV/FLAC by default.
        sample_rate: output rate.
        replace: replace an existing file (see :class:`codec.atomic.Output`).
        subtype: a libsndfile subtype (``"FLOAT"``, ``"PCM_24"``, ...).
    Raises :class:`AudioError` for an unsupported format, rate or channel count (before any
    file exists) and :class:`OutputError` naming the file when writing fails (a full disk).
    """

    def __init__(
        self, path: str | Path, sample_rate: int, replace: bool = True, subtype: str | None = None
    ) -> None:
        self.path = Path(path)
        self.format = output_format(self.path)
        self.sample_rate = sample_rate
        check_write_limits(self.path, sample_rate)
        self.subtype = subtype or ("PCM_16" if self.format in ("WAV", "FLAC") else None)
        self.output = Output(self.path, replace=replace, suffix=self.path.suffix)
        self.samples = 0
        self._file: sf.SoundFile | None = None

    def write(self, wav: torch.Tensor) -> None:
        """Args: wav ``[C, n]``; samples are clipped to [-1, 1]."""
        if self._file is None:
            check_write_limits(self.path, self.sample_rate, wav.shape[0])
            tmp = self.output.open()
            with self._errors():
                self._file = sf.SoundFile(
                    os.fsencode(tmp), "w", self.sample_rate, wav.shape[0], self.subtype, format=self.format
                )
        with self._errors():
            self._file.write(wav.detach().cpu().float().clamp(-1.0, 1.0).T.contiguous().numpy())
        self.samples += wav.shape[-1]

    def commit(self) -> Path:
        if self._file is None:
            raise AudioError(f"{self.path}: no audio to write")
        with self._errors():
            self._file.close()
        self._file = None
        return self.output.commit()

    def abort(self) -> None:
        """Remove the temporary file (after an error or a signal); the destination is untouched."""
        if self._file is not None:
            with contextlib.suppress(*_SF_ERRORS, AssertionError):
                self._file.close()
            self._file = None
        self.output.abort()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (*_SF_ERRORS, AssertionError) as err:
            if isinstance(err, OutputError):
                raise
            self.abort()
            reason = _short(err)
            with contextlib.suppress(OSError):
                if os.statvfs(self.path.parent).f_bavail == 0:
                    reason = "no space left on device"
            raise OutputError(5, f"cannot write audio ({reason})", str(self.path)) from None


def save_audio(path: str | Path, wav: torch.Tensor, sample_rate: int, subtype: str | None = None) -> None:
    """Write ``wav [C, T]`` atomically; the format follows the extension (WAV/FLAC/OGG).

    Samples are clipped to [-1, 1]; the default subtype is 16-bit PCM for WAV/FLAC.
    """
    if not isinstance(wav, torch.Tensor) or wav.dim() != 2:
        shape = tuple(wav.shape) if isinstance(wav, torch.Tensor) else type(wav).__name__
        raise AudioError(f"save_audio expects [C, T], got {shape}")
    sink = AudioFileSink(path, sample_rate, replace=True, subtype=subtype)
    try:
        sink.write(wav)
        sink.commit()
    except BaseException:
        sink.abort()
        raise


def output_format(path: Path) -> str:
    """The libsndfile format for an output name; :class:`AudioError` when unsupported."""
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: unsupported output format (use one of {', '.join(sorted(WRITE_FORMATS))})")
    return fmt


def check_write_limits(path: Path, sample_rate: int, channels: int | None = None) -> None:
    """Refuse a rate or channel count the output format cannot hold (before any file is made)."""
    fmt = output_format(path)
    max_rate, max_channels = WRITE_LIMITS[fmt]
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not 1 <= sample_rate <= max_rate:
        raise AudioError(f"{path}: {fmt} cannot hold {sample_rate} Hz audio (1..{max_rate} Hz)")
    if channels is not None and not 1 <= channels <= max_channels:
        raise AudioError(f"{path}: {fmt} cannot hold {channels} channels (at most {max_channels})")


def existing_file(path: str | Path) -> Path:
    """``path`` if it is a non-empty regular file; otherwise :class:`AudioError` saying what it is."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        kind = "broken symbolic link" if path.is_symlink() else "no such file"
        raise AudioError(f"{path}: {kind}") from None
    except OSError as err:
        raise AudioError(f"{path}: cannot read ({err.strerror or err})") from None
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not a file")
    if not path.is_file():
        raise AudioError(f"{path}: not a regular file (a pipe or device; use - for stdin)")
    if st.st_size == 0:
        raise AudioError(f"{path}: empty file")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path}: cannot read (permission denied)")
    return path


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send what native code writes to file descriptor 2 to /dev/null within the block.

    libmpg123 prints warnings about damaged MP3 frames straight to stderr; the problem is
    reported once, by us, as one line.  Python's own ``sys.stderr`` is flushed first.
    """
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()
    fd = 2  # where native code writes, whatever Python's sys.stderr is
    try:
        saved = os.dup(fd)
    except OSError:  # stderr is closed: nothing to keep quiet
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(null)


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]
