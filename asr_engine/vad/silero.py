"""Silero VAD on the engine's device: batched window scores, silero-style segments, live streams.

A recording of N samples is read as ceil(N/512) windows (the last zero-padded), each with the 64
samples before it as context, exactly as silero's own ``get_speech_timestamps`` feeds its model. Windows
are scored in blocks of ``block_windows`` (bounded memory for hours of audio) with the LSTM state carried
between blocks; ``speech_probs_batch`` scores several recordings side by side in one LSTM call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from asr_engine.vad.base import DEFAULT_MAX_SEGMENT_MS, VadEvent, as_mono
from asr_engine.vad.silero_model import CONTEXT_SAMPLES, WINDOW_SAMPLES, SileroNet, load_silero_net
from asr_engine.vad.silero_segments import SileroSettings, segments_from_probs

__all__ = ["SileroVad", "SileroVadStream"]

log = logging.getLogger(__name__)

_SAMPLES_PER_MS = 16


class SileroVad:
    """The silero detector: shared by all requests; per-call state lives in the call or in a stream."""

    kind = "silero"

    def __init__(
        self,
        net: SileroNet,
        *,
        device: torch.device,
        settings: SileroSettings | None = None,
        block_windows: int = 8192,
    ) -> None:
        self.net = net
        self.device = device
        self.settings = settings or SileroSettings()
        self.settings.validate()
        self.block_windows = block_windows

    @classmethod
    def load(
        cls, *, device: torch.device, source: str = "jit", settings: SileroSettings | None = None
    ) -> SileroVad:
        """The package's bundled model on ``device`` (float32: the network is tiny)."""
        return cls(load_silero_net(source=source, device=device), device=device, settings=settings)

    # ------------------------------------------------------------------ scores
    @torch.inference_mode()
    def speech_probs_batch(self, recordings: Sequence[np.ndarray | torch.Tensor]) -> list[np.ndarray]:
        """Speech probability of every 512-sample window of each recording (float32 arrays)."""
        audio = [as_mono(r) for r in recordings]
        counts = [-(-a.size // WINDOW_SAMPLES) for a in audio]
        padded = []
        for a, n in zip(audio, counts, strict=True):
            buf = np.zeros(CONTEXT_SAMPLES + n * WINDOW_SAMPLES, dtype=np.float32)
            buf[CONTEXT_SAMPLES : CONTEXT_SAMPLES + a.size] = a
            padded.append(buf)
        out = [np.zeros(n, dtype=np.float32) for n in counts]
        if not audio or max(counts, default=0) == 0:
            return out
        state = self.net.initial_state(len(audio), device=self.device, dtype=torch.float32)
        for first in range(0, max(counts), self.block_windows):
            stop = first + self.block_windows
            feats = torch.zeros(len(audio), self.block_windows, 128, device=self.device)
            live = 0
            for b, buf in enumerate(padded):
                k = max(0, min(stop, counts[b]) - first)
                if k == 0:
                    continue
                seg = torch.from_numpy(
                    buf[first * WINDOW_SAMPLES : (first + k) * WINDOW_SAMPLES + CONTEXT_SAMPLES]
                ).to(self.device)
                windows = seg.unfold(0, WINDOW_SAMPLES + CONTEXT_SAMPLES, WINDOW_SAMPLES)
                feats[b, :k] = self.net.encode(windows)
                live = max(live, k)
            probs, state = self.net.decode(feats[:, :live], state)
            probs_cpu = probs.float().cpu().numpy()
            for b in range(len(audio)):
                k = max(0, min(stop, counts[b]) - first)
                out[b][first : first + k] = probs_cpu[b, :k]
        return out

    def speech_probs(self, samples: np.ndarray | torch.Tensor) -> np.ndarray:
        return self.speech_probs_batch([samples])[0]

    # ------------------------------------------------------------------ segments
    def segments(
        self, samples: np.ndarray | torch.Tensor, *, max_segment_ms: int = DEFAULT_MAX_SEGMENT_MS
    ) -> list[tuple[int, int]]:
        """Speech segments ``(start_ms, end_ms)``, none longer than ``max_segment_ms``."""
        return self.segments_batch([samples], max_segment_ms=max_segment_ms)[0]

    def segments_batch(
        self, recordings: Sequence[np.ndarray | torch.Tensor], *, max_segment_ms: int = DEFAULT_MAX_SEGMENT_MS
    ) -> list[list[tuple[int, int]]]:
        """``segments`` for several recordings, scored together."""
        audio = [as_mono(r) for r in recordings]
        probs = self.speech_probs_batch(audio)
        return [
            segments_from_probs(p, a.size, self.settings, max_segment_ms=max_segment_ms)
            for p, a in zip(probs, audio, strict=True)
        ]

    def stream(self, *, max_segment_ms: int = DEFAULT_MAX_SEGMENT_MS) -> SileroVadStream:
        return SileroVadStream(self, max_segment_ms=max_segment_ms)


class SileroVadStream:
    """Live silero VAD: scores each complete window as it arrives and reports segment starts and ends.

    A start is reported once the speech has lasted ``min_speech_ms`` (back-dated, with the pad); an end
    once the silence has lasted ``min_silence_ms``. An open segment reaching ``max_segment_ms`` is closed
    at its least speech-like point in its second half and a new one opened there.
    """

    def __init__(self, vad: SileroVad, *, max_segment_ms: int) -> None:
        self._vad = vad
        self._s = vad.settings
        self._max = max(1, (max_segment_ms - 1) * _SAMPLES_PER_MS)
        self._pending = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._state: tuple[torch.Tensor, torch.Tensor] | None = None
        self._windows = 0  # windows scored so far
        self._in_speech = False
        self._announced = False
        self._start = 0  # start of the current run (samples)
        self._seg_start = 0  # reported start of the open segment (samples, padded)
        self._low_since: int | None = None
        self._last_end = 0
        self._probs: list[float] = []  # probabilities of the open segment's windows
        self._probs_from = 0  # window index of _probs[0]
        self._finished = False

    @torch.inference_mode()
    def _score(self, samples: np.ndarray) -> np.ndarray:
        n = samples.size // WINDOW_SAMPLES
        buf = np.concatenate([self._context, samples[: n * WINDOW_SAMPLES]])
        self._context = buf[-CONTEXT_SAMPLES:].copy()
        seg = torch.from_numpy(buf).to(self._vad.device)
        windows = seg.unfold(0, WINDOW_SAMPLES + CONTEXT_SAMPLES, WINDOW_SAMPLES)
        probs, self._state = self._vad.net.decode(self._vad.net.encode(windows)[None], self._state)
        return probs[0].float().cpu().numpy()

    def feed(self, samples: np.ndarray) -> list[VadEvent]:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        data = np.concatenate([self._pending, as_mono(samples)])
        usable = data.size - data.size % WINDOW_SAMPLES
        self._pending = data[usable:].copy()
        if usable == 0:
            return []
        return _merge(self._walk(self._score(data[:usable])))

    def finish(self) -> list[VadEvent]:
        """Score the last partial window (zero-padded), close an open segment at the end of the audio."""
        if self._finished:
            return []
        self._finished = True
        total = self._windows * WINDOW_SAMPLES + self._pending.size
        events: list[VadEvent] = []
        if self._pending.size:
            tail = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
            tail[: self._pending.size] = self._pending
            events = self._walk(self._score(tail))
        events.extend(self._close_at_end(total))
        return _merge(events)

    # ------------------------------------------------------------------ the walk
    def _walk(self, probs: np.ndarray) -> list[VadEvent]:
        s = self._s
        events: list[VadEvent] = []
        min_silence = s.min_silence_ms * _SAMPLES_PER_MS
        for p in probs.tolist():
            i = self._windows
            self._windows += 1
            pos = i * WINDOW_SAMPLES
            if self._in_speech:
                self._probs.append(p)
            if not self._in_speech:
                if p >= s.threshold:
                    self._in_speech, self._start, self._low_since = True, pos, None
                    self._probs, self._probs_from = [p], i
                continue
            if p >= s.threshold:
                self._low_since = None
            elif p < s.exit_threshold:
                if self._low_since is None:
                    self._low_since = pos
                if pos + WINDOW_SAMPLES - self._low_since >= min_silence:
                    events.extend(self._close(self._low_since, cap=pos + WINDOW_SAMPLES))
                    continue
            events.extend(self._maybe_announce(pos + WINDOW_SAMPLES))
            events.extend(self._maybe_cut(pos + WINDOW_SAMPLES))
        return events

    def _maybe_announce(self, now: int) -> list[VadEvent]:
        if self._announced or now - self._start < self._s.min_speech_ms * _SAMPLES_PER_MS:
            return []
        self._announced = True
        pad = self._s.speech_pad_ms * _SAMPLES_PER_MS
        self._seg_start = max(self._last_end, self._start - pad, 0)
        return [VadEvent(self._seg_start // _SAMPLES_PER_MS, -1)]

    def _maybe_cut(self, now: int) -> list[VadEvent]:
        if not self._announced or now - self._seg_start < self._max:
            return []
        half = max(self._seg_start + self._max // 2, self._probs_from * WINDOW_SAMPLES)
        first = max(0, half // WINDOW_SAMPLES - self._probs_from)
        tail = np.asarray(self._probs[first:], dtype=np.float64)
        j = first + int(np.argmin(tail)) if tail.size else len(self._probs) - 1
        cut = min(
            max((self._probs_from + j) * WINDOW_SAMPLES + WINDOW_SAMPLES // 2, self._seg_start + 1), now
        )
        events = [VadEvent(-1, -(-cut // _SAMPLES_PER_MS)), VadEvent(cut // _SAMPLES_PER_MS, -1)]
        self._last_end = cut
        self._seg_start = self._start = cut
        self._probs = self._probs[j:]
        self._probs_from += j
        return events

    def _close(self, end: int, *, cap: int) -> list[VadEvent]:
        announced = self._announced
        self._in_speech = self._announced = False
        self._low_since = None
        self._probs = []
        if not announced:  # shorter than min_speech_ms: dropped
            return []
        stop = min(end + self._s.speech_pad_ms * _SAMPLES_PER_MS, cap)
        self._last_end = stop
        return [VadEvent(-1, -(-stop // _SAMPLES_PER_MS))]

    def _close_at_end(self, total: int) -> list[VadEvent]:
        if not self._in_speech:
            return []
        events = self._maybe_announce(total)
        end = self._low_since if self._low_since is not None else total
        return events + self._close(end, cap=total)


def _merge(events: list[VadEvent]) -> list[VadEvent]:
    """Join an opening and the closing that directly follows it into one ``(start, end)`` event."""
    out: list[VadEvent] = []
    for ev in events:
        if out and out[-1].opens and ev.start_ms < 0 and ev.closes:
            out[-1] = VadEvent(out[-1].start_ms, ev.end_ms)
        else:
            out.append(ev)
    return out
