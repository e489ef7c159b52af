"""Typed options and results of the engine's public face.

Options and results are frozen, keyword-only dataclasses: nothing of one request is ever written onto the
shared engine. ``None`` in an option means "the engine's default".
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "AudioFormat",
    "Hotword",
    "ModelInfo",
    "Segment",
    "TranscribeOptions",
    "Transcript",
    "Word",
]


@dataclass(frozen=True, kw_only=True)
class AudioFormat:
    """How to read the audio bytes.

    ``encoding`` is "auto" (detect the container from its header), "linear16" (headerless little-endian
    PCM16, needs ``sample_rate_hz`` and ``channels``), or a container name: "wav", "flac", "mp3", "ogg_opus",
    "m4a", "webm" (a hint; the header still decides).
    """

    encoding: str = "auto"
    sample_rate_hz: int | None = None
    channels: int | None = None


@dataclass(frozen=True, kw_only=True)
class Hotword:
    """A phrase to favour while decoding; ``boost`` is a log-score bonus per token (None = default)."""

    phrase: str
    boost: float | None = None


@dataclass(frozen=True, kw_only=True)
class TranscribeOptions:
    """What one request asks of the engine.

    ``language`` is a short code ("zh", "en", ...) or ``None``/"auto" to let the model decide.
    ``vad`` None means: segment with VAD when the audio is longer than the model's comfortable length.
    """

    language: str | None = None
    itn: bool = True
    punctuation: bool = True
    word_timestamps: bool = False
    hotwords: tuple[Hotword, ...] = ()
    vad: bool | None = None


@dataclass(frozen=True, kw_only=True)
class Word:
    """One output word (a CJK character is a word) with its time span in the audio, in milliseconds."""

    text: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, kw_only=True)
class Segment:
    """One speech segment: ``text`` is final (punctuation, ITN), ``text_raw`` is the model's output."""

    start_ms: int
    end_ms: int
    text: str
    text_raw: str
    words: tuple[Word, ...] = ()
    language: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Transcript:
    """The result of one transcription."""

    text: str
    segments: tuple[Segment, ...]
    duration_ms: int
    processing_ms: float
    language: str = ""
    model: str = ""
    applied_hotwords: tuple[Hotword, ...] = ()
    warnings: tuple[str, ...] = ()
    text_raw: str = ""


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """What a loaded model is and supports (reported by the service's ListModels)."""

    name: str
    family: str
    path: str
    languages: tuple[str, ...]
    hotword_mode: str  # "none", "context_graph" (CTC biasing) or "seaco" (SeACo bias decoder)
    word_timestamps: bool
    punctuation: bool
    itn: bool
    rich_tags: bool
    vad: str  # "silero", "fsmn" or "none"
    device: str
    dtype: str
    sample_rate_hertz: int = 16000
    extra: dict[str, str] = field(default_factory=dict)
