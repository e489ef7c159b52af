"""Silero-style segmentation of per-window speech probabilities (512-sample windows at 16 kHz).

Hysteresis: speech starts at a window with probability >= ``threshold``; once in speech, a window below
``neg_threshold`` marks a possible end, confirmed when the low stretch lasts ``min_silence_ms`` (a window
>= ``threshold`` cancels it; windows in between neither cancel nor confirm). Segments shorter than
``min_speech_ms`` are dropped, the rest padded by ``speech_pad_ms`` on both sides (a gap too small for two
pads is split in the middle). A segment longer than the limit is cut inside its longest low-probability
stretch (or at its least speech-like window when it has none), recursively.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr_engine.errors import InvalidOptionsError
from asr_engine.vad.silero_model import WINDOW_SAMPLES

__all__ = ["SileroSettings", "pad_segments", "segments_from_probs", "speech_runs", "split_long"]

_SAMPLES_PER_MS = 16


@dataclass(frozen=True, kw_only=True)
class SileroSettings:
    """Segmentation settings (silero's defaults); ``neg_threshold`` None means ``threshold - 0.15``."""

    threshold: float = 0.5
    neg_threshold: float | None = None
    min_speech_ms: int = 250
    min_silence_ms: int = 100
    speech_pad_ms: int = 30

    @property
    def exit_threshold(self) -> float:
        if self.neg_threshold is not None:
            return self.neg_threshold
        return max(self.threshold - 0.15, 0.01)

    def validate(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise InvalidOptionsError("threshold", f"must be in (0, 1), got {self.threshold}")
        if not 0.0 < self.exit_threshold <= self.threshold:
            raise InvalidOptionsError(
                "neg_threshold", f"must be in (0, threshold], got {self.exit_threshold}"
            )
        for name in ("min_speech_ms", "min_silence_ms", "speech_pad_ms"):
            if getattr(self, name) < 0:
                raise InvalidOptionsError(name, f"must be >= 0, got {getattr(self, name)}")


def speech_runs(probs: np.ndarray, n_samples: int, settings: SileroSettings) -> list[tuple[int, int]]:
    """Raw speech runs ``(start, end)`` in samples, before the minimum-length filter and padding."""
    threshold, exit_threshold = settings.threshold, settings.exit_threshold
    min_silence = settings.min_silence_ms * _SAMPLES_PER_MS
    runs: list[tuple[int, int]] = []
    in_speech = False
    start = 0
    low_since: int | None = None
    for i, p in enumerate(np.asarray(probs, dtype=np.float64).tolist()):
        pos = i * WINDOW_SAMPLES
        if not in_speech:
            if p >= threshold:
                in_speech, start, low_since = True, pos, None
            continue
        if p >= threshold:
            low_since = None
        elif p < exit_threshold:
            if low_since is None:
                low_since = pos
            if pos + WINDOW_SAMPLES - low_since >= min_silence:
                runs.append((start, low_since))
                in_speech, low_since = False, None
    if in_speech:
        runs.append((start, n_samples))
    return [(s, min(e, n_samples)) for s, e in runs if min(e, n_samples) > s]


def pad_segments(runs: list[tuple[int, int]], n_samples: int, settings: SileroSettings) -> list[list[int]]:
    """Drop runs shorter than ``min_speech_ms`` and pad the rest without letting neighbours overlap."""
    min_speech = settings.min_speech_ms * _SAMPLES_PER_MS
    pad = settings.speech_pad_ms * _SAMPLES_PER_MS
    kept = [[s, e] for s, e in runs if e - s >= min_speech]
    for i, seg in enumerate(kept):
        if i == 0:
            seg[0] = max(0, seg[0] - pad)
        if i + 1 < len(kept):
            gap = kept[i + 1][0] - seg[1]
            if gap < 2 * pad:
                seg[1] += gap // 2
                kept[i + 1][0] -= gap - gap // 2
            else:
                seg[1] += pad
                kept[i + 1][0] -= pad
        else:
            seg[1] = min(n_samples, seg[1] + pad)
    return kept


def _cut_point(probs: np.ndarray, start: int, end: int, exit_threshold: float) -> int:
    """Cut point of ``[start, end)``: middle of its longest low stretch, else its least speech-like window."""
    margin = min(_SAMPLES_PER_MS * 1000, (end - start) // 4)
    first = -(-(start + margin) // WINDOW_SAMPLES)
    stop = min((end - margin) // WINDOW_SAMPLES, len(probs))
    if stop <= first:
        return (start + end) // 2
    window = probs[first:stop]
    low = window < exit_threshold
    best_len, best_at, run_len = 0, -1, 0
    for j, is_low in enumerate(low.tolist()):
        run_len = run_len + 1 if is_low else 0
        if run_len > best_len:
            best_len, best_at = run_len, j - run_len + 1
    if best_len > 0:
        centre = (first + best_at) * WINDOW_SAMPLES + best_len * WINDOW_SAMPLES // 2
    else:
        centre = (first + int(np.argmin(window))) * WINDOW_SAMPLES + WINDOW_SAMPLES // 2
    return min(max(centre, start + 1), end - 1)


def split_long(
    segment: tuple[int, int], probs: np.ndarray, max_samples: int, exit_threshold: float
) -> list[tuple[int, int]]:
    """Cut a segment into pieces no longer than ``max_samples``."""
    pending = [segment]
    done: list[tuple[int, int]] = []
    while pending:
        start, end = pending.pop()
        if end - start <= max_samples:
            done.append((start, end))
            continue
        cut = _cut_point(probs, start, end, exit_threshold)
        pending.extend([(cut, end), (start, cut)])
    return done


def segments_from_probs(
    probs: np.ndarray, n_samples: int, settings: SileroSettings, *, max_segment_ms: int
) -> list[tuple[int, int]]:
    """Speech segments in ms (start floored, end rounded up to the ms) from per-window probabilities."""
    probs = np.asarray(probs, dtype=np.float64)
    padded = pad_segments(speech_runs(probs, n_samples, settings), n_samples, settings)
    # One ms of slack: piece ends are rounded up to whole ms.
    max_samples = max(1, (max_segment_ms - 1) * _SAMPLES_PER_MS)
    out: list[tuple[int, int]] = []
    for start, end in padded:
        for s, e in split_long((start, end), probs, max_samples, settings.exit_threshold):
            out.append((s // _SAMPLES_PER_MS, -(-e // _SAMPLES_PER_MS)))
    return out
