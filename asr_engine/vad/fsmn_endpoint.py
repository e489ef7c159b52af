"""FSMN-VAD end-point detection: per-frame speech decisions and FunASR's segment state machine.

``speech_flags`` turns silence probabilities into speech/non-speech decisions in one vectorised step;
``FsmnEndpointer`` walks those decisions frame by frame (O(T), plain Python) and keeps FunASR's output
buffer of segments, with the same frame bookkeeping as FunASR's ``FsmnVADStreaming`` in multiple-utterance
mode, so segment boundaries match it to the millisecond. Frames are 10 ms; a segment covering frames
``s..e`` is reported as ``[s*10, (e+1)*10]`` ms.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from asr_engine.vad.fsmn_options import FsmnVadOptions

__all__ = ["FsmnEndpointer", "NoiseTracker", "SegmentBuffer", "speech_flags"]

log = logging.getLogger(__name__)

# Range of the per-frame energy: 10*log10(sum(x^2) + 1e-6) over 400 samples in [-1, 1].
_MIN_DECIBEL = -60.0
_MAX_DECIBEL = 10.0 * np.log10(400.0 + 1e-6)

_IDLE, _IN_SPEECH, _ENDED = 1, 2, 3  # FunASR's VadStateMachine values
_SIL2SIL, _SIL2SPEECH, _SPEECH2SIL, _SPEECH2SPEECH = 0, 1, 2, 3


@dataclass
class SegmentBuffer:
    """One entry of FunASR's output buffer: a segment being built or finished (ms)."""

    start_ms: int
    end_ms: int
    has_start: bool = False
    has_end: bool = False


class NoiseTracker:
    """FunASR's running noise level (dB), updated on frames the network calls non-speech.

    Only consulted when ``snr_thres`` can reject a frame; with FunASR's defaults (-100 dB) it never can.
    """

    def __init__(self, frames_used: int) -> None:
        self.frames_used = frames_used
        self.average_db = -100.0

    def snr_pass(self, prob_speech: np.ndarray, decibel: np.ndarray, snr_thres: float) -> np.ndarray:
        passed = np.ones(prob_speech.shape, dtype=bool)
        avg = self.average_db
        n = self.frames_used
        for i in range(prob_speech.size):
            if prob_speech[i]:
                passed[i] = decibel[i] - avg >= snr_thres
            elif avg < -99.9:
                avg = float(decibel[i])
            else:
                avg = (float(decibel[i]) + avg * (n - 1)) / n
        self.average_db = avg
        return passed


def speech_flags(
    sil_prob: np.ndarray,
    *,
    options: FsmnVadOptions,
    speech_noise_thres: float,
    decibel: np.ndarray | None = None,
    noise: NoiseTracker | None = None,
) -> np.ndarray:
    """Per-frame speech decision (bool array) from the silence probability of each frame.

    Speech iff ``(1-p) >= p**speech_2_noise_ratio + speech_noise_thres`` (FunASR evaluates it through
    log/exp in double precision; so do we) and the frame's energy passes ``decibel_thres``/``snr_thres``.
    The energy tests are only evaluated when they can reject a frame, and then need ``decibel``.
    """
    p = np.asarray(sil_prob, dtype=np.float64)
    with np.errstate(divide="ignore"):
        noise_term = np.exp(np.log(p) * options.speech_2_noise_ratio)
        speech_term = np.exp(np.log(1.0 - p))
    by_prob = speech_term >= noise_term + speech_noise_thres
    db_binds = options.decibel_thres > _MIN_DECIBEL
    snr_binds = options.snr_thres > _MIN_DECIBEL - _MAX_DECIBEL
    if not (db_binds or snr_binds):
        return by_prob
    if decibel is None or noise is None:
        raise ValueError("decibel_thres/snr_thres can reject frames here: frame energies are needed")
    decibel = np.asarray(decibel, dtype=np.float64)
    flags = by_prob & (decibel >= options.decibel_thres)
    # The noise level follows every frame the network rejected, whatever the energy test says.
    return flags & noise.snr_pass(by_prob, decibel, options.snr_thres)


class FsmnEndpointer:
    """FunASR's window detector and segment state machine over a stream of per-frame decisions.

    ``advance`` consumes the decisions of the next frames; ``segments`` is FunASR's output buffer
    (entries are appended and updated in place). ``end_silence_ms`` is the silence (beyond the
    window detector's own 150 ms) that ends a segment; the dynamic schedule changes it between chunks.
    """

    def __init__(self, options: FsmnVadOptions, *, end_silence_ms: int, max_single_segment_ms: int) -> None:
        self.options = options
        self.end_silence_ms = end_silence_ms
        self.max_segment_frames = max_single_segment_ms / options.frame_in_ms
        self.segments: list[SegmentBuffer] = []
        self.frames_seen = 0
        self.ends_detected = 0
        self._win_size = options.window_frames
        self._on_thres = int(options.sil_to_speech_time_thres / options.frame_in_ms)
        self._off_thres = int(options.speech_to_sil_time_thres / options.frame_in_ms)
        self._latency = options.start_latency_frames
        self._lookahead = int(options.lookahead_time_end_point / options.frame_in_ms)
        self._buf_start = 0  # first frame not yet handed to the output (FunASR's data_buf_start_frame)
        self._reset()

    # ------------------------------------------------------------------ state
    def _reset(self) -> None:
        """FunASR's ResetDetection: back to 'no start detected' with a cleared window."""
        self._window = [0] * self._win_size
        self._win_pos = 0
        self._win_sum = 0
        self._win_speech = False
        self._state = _IDLE
        self._silence_run = 0
        self._latest_speech = 0
        self._latest_silence = -1
        self._start_frame = -1
        self._end_frame = -1

    @property
    def in_speech(self) -> bool:
        """True while a segment is open (FunASR's kVadInStateInSpeechSegment)."""
        return self._state == _IN_SPEECH

    # ------------------------------------------------------------------ output bookkeeping
    def _pop_till(self, frame: int) -> None:
        self._buf_start = max(self._buf_start, frame)

    def _emit_frame(self, frame: int, *, is_start: bool, is_end: bool) -> None:
        """FunASR's PopDataToOutputBuf for one frame: extends (or opens) the current segment."""
        self._pop_till(frame)
        if is_start or not self.segments:
            self.segments.append(SegmentBuffer(start_ms=frame * 10, end_ms=frame * 10))
        seg = self.segments[-1]
        self._buf_start += 1
        seg.end_ms = (frame + 1) * 10
        if is_start:
            seg.has_start = True
        if is_end:
            seg.has_end = True

    def _voice(self, frame: int) -> None:
        self._latest_speech = frame
        self._emit_frame(frame, is_start=False, is_end=False)

    def _voice_range(self, first: int, stop: int) -> None:
        for t in range(first, stop):
            self._voice(t)

    def _voice_start(self, frame: int, *, fake: bool) -> None:
        if self._start_frame == -1:
            self._start_frame = frame
        if not fake and self._state == _IDLE:
            self._emit_frame(self._start_frame, is_start=True, is_end=False)

    def _voice_end(self, frame: int, *, fake: bool) -> None:
        self._voice_range(self._latest_speech + 1, frame)
        if self._end_frame == -1:
            self._end_frame = frame
        if not fake:
            self._emit_frame(self._end_frame, is_start=False, is_end=True)
        self.ends_detected += 1
        self._state = _ENDED

    def _too_long(self, t: int) -> bool:
        return t - self._start_frame + 1 > self.max_segment_frames

    def _continue_or_end(self, t: int, is_last: bool) -> None:
        """The rule shared by every transition while a segment is open."""
        if self._too_long(t):
            self._voice_end(t, fake=False)
        elif not is_last:
            self._voice(t)
        else:
            self._voice_end(t, fake=False)

    # ------------------------------------------------------------------ the walk
    def advance(self, flags: np.ndarray, *, final: bool) -> None:
        """Consume the decisions of the next ``len(flags)`` frames; ``final`` marks the stream's end."""
        opts = self.options
        single_mode = opts.detect_mode == 0
        n = len(flags)
        first = self.frames_seen
        last_index = first + n - 1
        for i, speech in enumerate(flags.tolist()):
            t = first + i
            if single_mode and self._state == _ENDED:
                continue
            is_last = final and t == last_index
            change = self._window_step(1 if speech else 0)
            if change == _SIL2SPEECH:
                self._silence_run = 0
                if self._state == _IDLE:
                    start = max(self._buf_start, t - self._latency)
                    self._voice_start(start, fake=False)
                    self._state = _IN_SPEECH
                    self._voice_range(start + 1, t + 1)
                elif self._state == _IN_SPEECH:
                    self._voice_range(self._latest_speech + 1, t)
                    self._continue_or_end(t, is_last)
            elif change == _SIL2SIL:
                self._silence_step(t, is_last, single_mode)
            else:  # speech->silence and speech->speech behave alike here
                self._silence_run = 0
                if self._state == _IN_SPEECH:
                    self._continue_or_end(t, is_last)
            if self._state == _ENDED and not single_mode:
                self._reset()
        self.frames_seen += n

    def _window_step(self, value: int) -> int:
        old = self._window[self._win_pos]
        self._window[self._win_pos] = value
        self._win_pos = (self._win_pos + 1) % self._win_size
        self._win_sum += value - old
        if not self._win_speech and self._win_sum >= self._on_thres:
            self._win_speech = True
            return _SIL2SPEECH
        if self._win_speech and self._win_sum <= self._off_thres:
            self._win_speech = False
            return _SPEECH2SIL
        return _SPEECH2SPEECH if self._win_speech else _SIL2SIL

    def _silence_step(self, t: int, is_last: bool, single_mode: bool) -> None:
        opts = self.options
        self._silence_run += 1
        if self._state == _IDLE:
            timed_out = single_mode and self._silence_run * opts.frame_in_ms > opts.max_start_silence_time
            if timed_out or (is_last and self.ends_detected == 0):
                if self._latest_silence + 1 < t:  # FunASR marks every pending frame as silence
                    self._latest_silence = t - 1
                    self._pop_till(t - 1)
                self._voice_start(0, fake=True)
                self._voice_end(0, fake=True)
            elif t >= self._latency:
                self._latest_silence = t - self._latency
                self._pop_till(t - self._latency)
        elif self._state == _IN_SPEECH:
            if self._silence_run * opts.frame_in_ms >= self.end_silence_ms:
                lookback = int(self.end_silence_ms / opts.frame_in_ms)
                if opts.do_extend:
                    lookback = max(0, lookback - self._lookahead - 1)
                self._voice_end(t - lookback, fake=False)
            elif self._too_long(t):
                self._voice_end(t, fake=False)
            elif opts.do_extend and not is_last:
                if self._silence_run <= self._lookahead:
                    self._voice(t)
            elif is_last:
                self._voice_end(t, fake=False)
