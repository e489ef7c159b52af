"""FSMN-VAD end-point settings: the model's ``model_conf`` and FunASR's per-call choices.

``FsmnVadOptions`` is read once from config.yaml. ``FsmnRunSettings`` holds what FunASR lets a caller
change per call (``max_end_silence_time``, ``speech_noise_thres``, the dynamic end-silence schedule) and
the segment-length cap FunASR only takes at construction; the engine fixes them at load time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asr_engine.errors import InvalidOptionsError, ModelLoadError

__all__ = [
    "DEFAULT_SILENCE_SCHEDULE",
    "STREAMING_SILENCE_SCHEDULE",
    "FsmnRunSettings",
    "FsmnVadOptions",
    "parse_fsmn_vad_options",
]

# (accumulated speech limit in ms, end silence in ms): the first row whose limit is >= the accumulated
# speech time wins. FunASR 1.4.16 applies the first table by default; the second exists but is unused.
DEFAULT_SILENCE_SCHEDULE: tuple[tuple[float, int], ...] = (
    (10000, 2000),
    (20000, 1000),
    (30000, 800),
    (40000, 600),
    (50000, 400),
    (60000, 200),
    (float("inf"), 100),
)
STREAMING_SILENCE_SCHEDULE: tuple[tuple[float, int], ...] = (
    (5000, 2000),
    (10000, 1500),
    (15000, 1000),
    (30000, 800),
    (45000, 400),
    (float("inf"), 100),
)
# The speech/noise threshold FunASR switches to whenever the dynamic schedule is active.
DYNAMIC_SPEECH_NOISE_THRES = 0.5


@dataclass(frozen=True, kw_only=True)
class FsmnVadOptions:
    """The E2E-VAD options of ``model_conf`` (names and defaults as FunASR's), times in ms."""

    sample_rate: int = 16000
    detect_mode: int = 1  # 1: many utterances per stream, 0: stop after the first
    max_end_silence_time: int = 800
    max_start_silence_time: int = 3000
    window_size_ms: int = 200
    sil_to_speech_time_thres: int = 150
    speech_to_sil_time_thres: int = 150
    speech_2_noise_ratio: float = 1.0
    do_extend: int = 1
    lookback_time_start_point: int = 200
    lookahead_time_end_point: int = 100
    max_single_segment_time: int = 60000
    snr_thres: float = -100.0
    noise_frame_num_used_for_snr: int = 100
    decibel_thres: float = -100.0
    speech_noise_thres: float = 0.6
    sil_pdf_ids: tuple[int, ...] = (0,)
    frame_in_ms: int = 10
    frame_length_ms: int = 25

    @property
    def window_frames(self) -> int:
        return int(self.window_size_ms / self.frame_in_ms)

    @property
    def start_latency_frames(self) -> int:
        """How far back a detected start is placed: the window plus the look-back when extending."""
        latency = self.window_frames
        if self.do_extend:
            latency += int(self.lookback_time_start_point / self.frame_in_ms)
        return latency


_INT_FIELDS = (
    "sample_rate", "detect_mode", "max_end_silence_time", "max_start_silence_time", "window_size_ms",
    "sil_to_speech_time_thres", "speech_to_sil_time_thres", "do_extend", "lookback_time_start_point",
    "lookahead_time_end_point", "max_single_segment_time", "noise_frame_num_used_for_snr", "frame_in_ms",
    "frame_length_ms",
)  # fmt: skip
_FLOAT_FIELDS = ("speech_2_noise_ratio", "snr_thres", "decibel_thres", "speech_noise_thres")


def parse_fsmn_vad_options(model_conf: dict[str, Any], **overrides: Any) -> FsmnVadOptions:
    """Options from ``model_conf``; ``overrides`` are constructor-time values (FunASR's ``vad_kwargs``)."""
    conf = {**model_conf, **{k: v for k, v in overrides.items() if v is not None}}
    values: dict[str, Any] = {}
    try:
        for name in _INT_FIELDS:
            if name in conf:
                values[name] = int(conf[name])
        for name in _FLOAT_FIELDS:
            if name in conf:
                values[name] = float(conf[name])
        if "sil_pdf_ids" in conf:
            values["sil_pdf_ids"] = tuple(int(i) for i in conf["sil_pdf_ids"])
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"FSMN-VAD model_conf has a malformed value: {exc}") from exc
    options = FsmnVadOptions(**values)
    if options.sample_rate != 16000 or options.frame_in_ms != 10:
        raise ModelLoadError("FSMN-VAD: only 16 kHz models with 10 ms frames are supported")
    if not options.sil_pdf_ids:
        raise ModelLoadError("FSMN-VAD: sil_pdf_ids is empty")
    return options


@dataclass(frozen=True, kw_only=True)
class FsmnRunSettings:
    """Choices FunASR takes per ``generate`` call.

    ``max_end_silence_ms`` set (FunASR's call-time ``max_end_silence_time``) switches the dynamic schedule
    off unless ``dynamic_silence`` says otherwise; ``None`` keeps the model's value with the dynamic
    schedule on, as FunASR 1.4.16 does by default. ``max_single_segment_ms`` replaces the config's
    ``max_single_segment_time`` (FunASR accepts it only at construction).
    """

    max_end_silence_ms: int | None = None
    speech_noise_thres: float | None = None
    dynamic_silence: bool | None = None
    silence_schedule: tuple[tuple[float, int], ...] = DEFAULT_SILENCE_SCHEDULE
    max_single_segment_ms: int | None = None

    @property
    def dynamic(self) -> bool:
        if self.dynamic_silence is not None:
            return self.dynamic_silence
        return self.max_end_silence_ms is None

    def validate(self) -> None:
        if self.max_end_silence_ms is not None and self.max_end_silence_ms < 0:
            raise InvalidOptionsError("max_end_silence_ms", f"must be >= 0, got {self.max_end_silence_ms}")
        if self.max_single_segment_ms is not None and self.max_single_segment_ms <= 0:
            raise InvalidOptionsError(
                "max_single_segment_ms", f"must be > 0, got {self.max_single_segment_ms}"
            )
        if not self.silence_schedule:
            raise InvalidOptionsError("silence_schedule", "must not be empty")
