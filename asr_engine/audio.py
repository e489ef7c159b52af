"""Audio bytes in, 16 kHz mono float32 out: the same samples FunASR would feed its frontend.

WAV (PCM 8/16/24/32-bit, float 32/64, WAVE_FORMAT_EXTENSIBLE) is parsed here with numpy; every other
container (FLAC, MP3, AAC/M4A, Ogg Vorbis/Opus, WebM/Matroska, AIFF, odd WAV codecs) goes through PyAV.
Integer samples become ``value / 2**(bits-1)`` in float32, as soundfile's float32 read gives them; several
channels are averaged, then the result is resampled to 16 kHz with torchaudio's default sinc filter.

Untrusted input rules: the container is decided by the header bytes, never by the caller's label (a
contradicting label is only logged); sizes come from the bytes actually present, never from a header's
claims; a WAV whose data chunk is shorter than declared is decoded as far as whole sample frames go (it is
an error only when not one frame is there); every failure is an ``AudioDecodeError`` (or a subclass).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from asr_engine.errors import (
    AudioDecodeError,
    AudioTooLongError,
    EngineError,
    InvalidOptionsError,
    UnsupportedEncodingError,
)
from asr_engine.resample import resample
from asr_engine.types import AudioFormat

__all__ = [
    "SAMPLE_RATE",
    "DecodedAudio",
    "decode_audio",
    "decode_audio_async",
    "detect_container",
    "pcm16le_to_float32",
    "set_decode_threads",
]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
MIN_SOURCE_RATE = 1000  # below this, resampling would inflate a small input enormously
MAX_SOURCE_RATE = 768000
MAX_CHANNELS = 64

# Which detected containers each caller label stands for ("linear16" and "auto" are handled apart).
_LABELS: dict[str, frozenset[str]] = {
    "wav": frozenset({"wav"}),
    "flac": frozenset({"flac"}),
    "mp3": frozenset({"mp3"}),
    "ogg": frozenset({"ogg"}),
    "ogg_opus": frozenset({"ogg"}),
    "ogg_vorbis": frozenset({"ogg"}),
    "opus": frozenset({"ogg", "webm"}),
    "m4a": frozenset({"mp4"}),
    "mp4": frozenset({"mp4"}),
    "aac": frozenset({"mp4", "aac"}),
    "webm": frozenset({"webm"}),
    "webm_opus": frozenset({"webm"}),
    "aiff": frozenset({"aiff"}),
}


@dataclass(frozen=True, kw_only=True)
class DecodedAudio:
    """Decoded audio: ``samples`` is float32 mono at 16 kHz in [-1, 1]; the rest describes the source."""

    samples: np.ndarray
    source_sample_rate_hz: int
    source_channels: int
    container: str
    duration_ms: int


def detect_container(data: bytes, *, strong_only: bool = False) -> str | None:
    """Name the container from its first bytes, or None.

    ``strong_only`` skips the bare MPEG/ADTS frame-sync test (two bytes), which raw PCM matches by
    chance (0xFF 0xFF is the int16 sample -1); used when the caller says the bytes are headerless PCM.
    """
    head = bytes(data[:12])
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if len(head) >= 12 and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:3] == b"ID3":
        return "mp3"
    if not strong_only and len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "aac" if (head[1] >> 1) & 0x3 == 0 else "mp3"  # layer bits 00 = ADTS
    return None


def pcm16le_to_float32(data: bytes, channels: int) -> np.ndarray:
    """Headerless little-endian PCM16 -> mono float32 (value / 32768, channels averaged).

    ``len(data)`` must be a whole number of sample frames (``2 * channels`` bytes): a streaming caller
    keeps the incomplete tail of a chunk and prepends it to the next one. Otherwise AudioDecodeError.
    """
    if channels < 1:
        raise InvalidOptionsError("audio_channel_count", f"must be at least 1, got {channels}")
    frame = 2 * channels
    if len(data) % frame:
        raise AudioDecodeError(
            f"{len(data)} bytes of PCM16 is not a whole number of {channels}-channel frames"
        )
    ints = np.frombuffer(data, dtype="<i2")
    return _mono(ints.reshape(-1, channels).astype(np.float32) * np.float32(1.0 / 32768.0))


def _mono(frames: np.ndarray) -> np.ndarray:
    """(n, channels) float32 -> (n,) float32, mean over channels (a fresh, writable array)."""
    if frames.shape[1] == 1:
        return np.array(frames[:, 0], dtype=np.float32)
    return frames.mean(axis=1, dtype=np.float32)


def _duration_ms(n_samples: int, rate: int) -> int:
    return n_samples * 1000 // rate


def _check_limit(duration_ms: int, limit_ms: int | None) -> None:
    if limit_ms is not None and duration_ms > limit_ms:
        raise AudioTooLongError(duration_ms, limit_ms)


def _check_rate(rate: int, where: str) -> None:
    if not MIN_SOURCE_RATE <= rate <= MAX_SOURCE_RATE:
        raise AudioDecodeError(
            f"{where}: sample rate {rate} Hz is outside {MIN_SOURCE_RATE}..{MAX_SOURCE_RATE}"
        )


def _check_channels(channels: int, where: str) -> None:
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioDecodeError(f"{where}: {channels} channels (1..{MAX_CHANNELS} supported)")


# ---------------------------------------------------------------------------------------------- WAV
@dataclass(frozen=True)
class _WavLayout:
    tag: int  # 1 = integer PCM, 3 = IEEE float (after resolving WAVE_FORMAT_EXTENSIBLE)
    channels: int
    rate: int
    bits: int
    data_offset: int
    data_bytes: int  # whole frames actually present


def _read_wav_layout(data: bytes) -> _WavLayout | None:
    """Locate fmt and data; None when the codec is one the numpy path does not read (PyAV does)."""
    if data[:4] != b"RIFF":
        return None  # RF64: leave the 64-bit sizes to ffmpeg
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise AudioDecodeError("WAV fmt chunk is truncated")
            fmt = data[body : body + min(size, 40)]
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioDecodeError("WAV data chunk comes before its fmt chunk")
            return _layout(fmt, body, size, len(data))
        pos = body + size + (size & 1)
    raise AudioDecodeError("WAV has no data chunk" if fmt is not None else "WAV has no fmt chunk")


def _layout(fmt: bytes, body: int, declared: int, total: int) -> _WavLayout | None:
    tag, channels, rate = (
        int.from_bytes(fmt[0:2], "little"),
        int.from_bytes(fmt[2:4], "little"),
        int.from_bytes(fmt[4:8], "little"),
    )
    bits = int.from_bytes(fmt[14:16], "little")
    if tag == 0xFFFE:
        if len(fmt) < 26:
            raise AudioDecodeError("WAVE_FORMAT_EXTENSIBLE fmt chunk is truncated")
        tag = int.from_bytes(fmt[24:26], "little")  # first two bytes of the sub-format GUID
    _check_channels(channels, "WAV")
    _check_rate(rate, "WAV")
    if (tag, bits) not in {(1, 8), (1, 16), (1, 24), (1, 32), (3, 32), (3, 64)}:
        return None
    frame = channels * bits // 8
    available = total - body
    if declared in (0, 0xFFFFFFFF):  # streaming writers leave the size open
        declared = available
    if declared > available:
        logger.warning(
            "WAV data chunk declares %d bytes, only %d present; decoding those", declared, available
        )
    usable = min(declared, available)
    usable -= usable % frame
    if usable <= 0:
        raise AudioDecodeError("WAV data chunk holds no complete sample frame")
    return _WavLayout(tag, channels, rate, bits, body, usable)


def _wav_frames(data: bytes, lay: _WavLayout) -> np.ndarray:
    """(n, channels) float32 with soundfile's scaling."""
    raw = np.frombuffer(data, dtype=np.uint8, count=lay.data_bytes, offset=lay.data_offset)
    if lay.tag == 3:
        values = raw.view("<f4" if lay.bits == 32 else "<f8").astype(np.float32)
        if not np.isfinite(values).all():
            raise AudioDecodeError("WAV float samples contain NaN or infinity")
    elif lay.bits == 8:
        values = (raw.astype(np.float32) - 128.0) * np.float32(1.0 / 128.0)
    elif lay.bits == 16:
        values = raw.view("<i2").astype(np.float32) * np.float32(2.0**-15)
    elif lay.bits == 24:
        wide = np.zeros((raw.size // 3, 4), dtype=np.uint8)
        wide[:, 1:] = raw.reshape(-1, 3)  # int24 in the top bytes of an int32
        values = wide.view("<i4").reshape(-1).astype(np.float32) * np.float32(2.0**-31)
    else:
        values = raw.view("<i4").astype(np.float32) * np.float32(2.0**-31)
    return values.reshape(-1, lay.channels)


# ---------------------------------------------------------------------------------------------- PyAV
_INT_SCALE = {"s16": 2.0**-15, "s32": 2.0**-31, "s64": 2.0**-63}


def _frames_to_mono(raw: list[np.ndarray], fmt: str, planar: bool, channels: int) -> np.ndarray:
    """PyAV frames' ``to_ndarray()`` arrays of one format -> mono float32, integers scaled like soundfile.

    Converted once for the whole recording: per frame (1,152 samples of MP3) the numpy calls cost more
    than the conversion itself.
    """
    if planar:
        arr = np.concatenate([a.reshape(channels, -1) for a in raw], axis=1).T
    else:
        arr = np.concatenate([a.reshape(-1) for a in raw]).reshape(-1, channels)
    name = fmt.rstrip("p")
    if name == "u8":
        values = (arr.astype(np.float32) - 128.0) * np.float32(1.0 / 128.0)
    elif name in _INT_SCALE:
        values = arr.astype(np.float32) * np.float32(_INT_SCALE[name])
    else:
        values = arr.astype(np.float32, copy=False)
    return _mono(values)


def _decode_av(data: bytes, container: str, limit_ms: int | None) -> tuple[np.ndarray, int, int]:
    """(mono float32, source rate, source channels) of the first audio stream, decoded by ffmpeg."""
    import av  # a heavy import; only paid when a compressed container arrives

    raw: list[np.ndarray] = []
    fmt, planar = "", False
    total, rate, channels = 0, 0, 0
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as box:
            stream = next((s for s in box.streams if s.type == "audio"), None)
            if stream is None:
                raise AudioDecodeError(f"the {container} container has no audio stream")
            header_ms = int(box.duration * 1000 // av.time_base) if box.duration else 0
            for frame in box.decode(stream):
                if not isinstance(frame, av.AudioFrame):
                    continue
                if rate == 0:
                    rate, channels = int(frame.sample_rate), len(frame.layout.channels)
                    fmt, planar = frame.format.name, frame.format.is_planar
                    _check_rate(rate, container)
                    _check_channels(channels, container)
                elif frame.sample_rate != rate:
                    raise AudioDecodeError(
                        f"{container}: sample rate changes from {rate} to {frame.sample_rate} Hz"
                    )
                elif frame.format.name != fmt or len(frame.layout.channels) != channels:
                    raise AudioDecodeError(
                        f"{container}: the sample format or channel count changes mid-stream"
                    )
                raw.append(frame.to_ndarray())
                total += frame.samples
                if limit_ms is not None and _duration_ms(total, rate) > limit_ms:
                    raise AudioTooLongError(max(_duration_ms(total, rate), header_ms), limit_ms)
    except EngineError:
        raise
    except Exception as exc:  # ffmpeg reports hostile input through many exception types
        raise AudioDecodeError(f"cannot decode {container} audio: {exc}") from exc
    if total == 0:
        raise AudioDecodeError(f"the {container} audio decodes to no samples")
    return _frames_to_mono(raw, fmt, planar, channels), rate, channels


# ---------------------------------------------------------------------------------------------- API
def _decode_linear16(data: bytes, fmt: AudioFormat, limit_ms: int | None) -> tuple[np.ndarray, int, int]:
    rate, channels = fmt.sample_rate_hz, fmt.channels
    if rate is None or rate <= 0:
        raise InvalidOptionsError("sample_rate_hertz", "LINEAR16 audio needs a positive sample rate")
    if channels is None or channels <= 0:
        raise InvalidOptionsError("audio_channel_count", "LINEAR16 audio needs a positive channel count")
    if not MIN_SOURCE_RATE <= rate <= MAX_SOURCE_RATE:
        raise InvalidOptionsError(
            "sample_rate_hertz", f"{rate} Hz is outside {MIN_SOURCE_RATE}..{MAX_SOURCE_RATE}"
        )
    if channels > MAX_CHANNELS:
        raise InvalidOptionsError("audio_channel_count", f"{channels} channels (1..{MAX_CHANNELS} supported)")
    frame = 2 * channels
    usable = len(data) - len(data) % frame
    if usable == 0:
        raise AudioDecodeError(f"LINEAR16 audio of {len(data)} bytes holds no complete sample frame")
    if usable != len(data):
        logger.warning(
            "LINEAR16 audio ends with %d bytes of an incomplete frame; ignored", len(data) - usable
        )
    _check_limit(_duration_ms(usable // frame, rate), limit_ms)
    return pcm16le_to_float32(data[:usable], channels), rate, channels


def _decode_container(data: bytes, container: str, limit_ms: int | None) -> tuple[np.ndarray, int, int]:
    if container == "wav":
        layout = _read_wav_layout(data)
        if layout is not None:
            _check_limit(
                _duration_ms(layout.data_bytes // (layout.channels * layout.bits // 8), layout.rate), limit_ms
            )
            return _mono(_wav_frames(data, layout)), layout.rate, layout.channels
    return _decode_av(data, container, limit_ms)


def decode_audio(
    data: bytes, fmt: AudioFormat = AudioFormat(), *, max_duration_ms: int | None = None
) -> DecodedAudio:
    """Decode a whole recording to 16 kHz mono float32.

    Raises AudioDecodeError (empty/corrupt/truncated), UnsupportedEncodingError (unknown container or
    label), InvalidOptionsError (LINEAR16 without rate/channels), AudioTooLongError (over
    ``max_duration_ms``, checked before the full decode where the header allows and always after).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidOptionsError("audio_content", f"expected bytes, got {type(data).__name__}")
    data = bytes(data) if not isinstance(data, bytes) else data
    if not data:
        raise AudioDecodeError("the audio is empty (0 bytes)")
    encoding = (fmt.encoding or "auto").lower()
    if encoding not in _LABELS and encoding not in ("auto", "linear16"):
        raise InvalidOptionsError("encoding", f"unknown audio encoding {fmt.encoding!r}")
    container = detect_container(data, strong_only=encoding == "linear16")
    if container is None:
        if encoding == "linear16":
            samples, rate, channels = _decode_linear16(data, fmt, max_duration_ms)
            return _finish(samples, rate, channels, "pcm", max_duration_ms)
        raise UnsupportedEncodingError(
            f"unrecognised audio container (first bytes {data[:12].hex(' ')}"
            + (f", labelled {fmt.encoding!r})" if encoding != "auto" else ")")
        )
    if encoding != "auto" and container not in _LABELS.get(encoding, frozenset()):
        logger.info(
            "audio labelled %r has a %s header; decoding it as %s", fmt.encoding, container, container
        )
    samples, rate, channels = _decode_container(data, container, max_duration_ms)
    return _finish(samples, rate, channels, container, max_duration_ms)


def _finish(
    samples: np.ndarray, rate: int, channels: int, container: str, limit_ms: int | None
) -> DecodedAudio:
    _check_limit(_duration_ms(samples.size, rate), limit_ms)
    if rate != SAMPLE_RATE:
        samples = resample(samples, rate, SAMPLE_RATE)
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    duration_ms = _duration_ms(samples.size, SAMPLE_RATE)
    _check_limit(duration_ms, limit_ms)
    return DecodedAudio(
        samples=samples,
        source_sample_rate_hz=rate,
        source_channels=channels,
        container=container,
        duration_ms=duration_ms,
    )


_default_pool: ThreadPoolExecutor | None = None
_pool_workers: int | None = None  # None: one thread per CPU
_pool_lock = threading.Lock()


def set_decode_threads(workers: int) -> None:
    """Size the shared decode pool (before its first use; a pool already made is replaced for new work).

    Why: one process of many (``lingting serve --frontends N``) gets about ``cpus / N`` cores, and the
    compressed-audio path holds the GIL between ffmpeg calls (one Python step per ~1,152-sample MP3 frame),
    so a pool of one thread per CPU in every process only adds GIL hand-offs: on a 2-core machine 16 threads
    decoded 44.1 kHz MP3 27 % slower than 2 (680x vs 928x realtime).
    """
    global _default_pool, _pool_workers
    if workers < 1:
        raise ValueError(f"decode threads must be at least 1, got {workers}")
    with _pool_lock:
        _pool_workers = workers
        old, _default_pool = _default_pool, None
    if old is not None:
        old.shutdown(wait=False)


def _pool() -> ThreadPoolExecutor:
    """The shared decode pool (``set_decode_threads``, else one thread per CPU), made on first use."""
    global _default_pool
    with _pool_lock:
        if _default_pool is None:
            workers = _pool_workers or max(2, os.cpu_count() or 2)
            _default_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="audio-decode")
        return _default_pool


async def decode_audio_async(
    data: bytes,
    fmt: AudioFormat = AudioFormat(),
    *,
    max_duration_ms: int | None = None,
    executor: Executor | None = None,
) -> DecodedAudio:
    """``decode_audio`` in a worker thread (ffmpeg, numpy and torch release the GIL), off the event loop."""
    loop = asyncio.get_running_loop()
    job: Callable[[], DecodedAudio] = lambda: decode_audio(data, fmt, max_duration_ms=max_duration_ms)  # noqa: E731
    return await loop.run_in_executor(executor or _pool(), job)
