"""One FSMN-VAD run over a recording or a live stream, on per-frame silence probabilities.

FunASR feeds its VAD in pieces: 60 s pieces for a file, the caller's chunks when streaming. Before each
piece the dynamic end-silence schedule may change the end-silence and speech/noise thresholds, and after
each piece the finished segments (file) or start/end events (stream) are reported. Its online frontend
holds back the last 2 frames of every non-final piece (they need look-ahead for LFR), so after ``N``
samples exactly ``fbank_frames(N) - 2`` frames are decided. ``FsmnSession`` reproduces that schedule
on top of ``FsmnEndpointer``; the scores themselves do not depend on the pieces.
"""

from __future__ import annotations

import logging

import numpy as np

from asr_engine.vad.fsmn_endpoint import FsmnEndpointer, NoiseTracker, speech_flags
from asr_engine.vad.fsmn_options import DYNAMIC_SPEECH_NOISE_THRES, FsmnRunSettings, FsmnVadOptions

__all__ = ["FsmnSession", "decided_frames", "fbank_frames", "offline_segments"]

log = logging.getLogger(__name__)

FRAME_SHIFT = 160
FRAME_LENGTH = 400
LFR_HELD_BACK = 2  # (lfr_m - 1) // 2 frames of right context for LFR m = 5
OFFLINE_PIECE_MS = 60000


def fbank_frames(n_samples: int) -> int:
    """Kaldi frame count with snip_edges: 25 ms windows every 10 ms."""
    return 0 if n_samples < FRAME_LENGTH else 1 + (n_samples - FRAME_LENGTH) // FRAME_SHIFT


def decided_frames(n_samples: int, *, final: bool) -> int:
    """Frames FunASR's online frontend has released after ``n_samples`` (LFR needs 5 fbank frames first)."""
    total = fbank_frames(n_samples)
    if total <= LFR_HELD_BACK:  # the LFR splice never filled: nothing is ever released
        return 0
    return total if final else total - LFR_HELD_BACK


class FsmnSession:
    """Dynamic schedule, end-point walk and FunASR's output formatting for one recording or stream."""

    def __init__(self, options: FsmnVadOptions, settings: FsmnRunSettings, *, streaming: bool) -> None:
        settings.validate()
        self.options = options
        self.settings = settings
        self.streaming = streaming
        end_ms = settings.max_end_silence_ms
        if end_ms is None:
            end_ms = options.max_end_silence_time
        max_seg = settings.max_single_segment_ms or options.max_single_segment_time
        self.endpointer = FsmnEndpointer(
            options, end_silence_ms=end_ms - options.speech_to_sil_time_thres, max_single_segment_ms=max_seg
        )
        thres = settings.speech_noise_thres
        self.speech_noise_thres = options.speech_noise_thres if thres is None else thres
        self.noise = NoiseTracker(options.noise_frame_num_used_for_snr)
        self._accumulated_ms = 0
        self._dynamic_in_speech = False
        self._offset = 0
        self._next_seg = True

    def begin_piece(self, piece_ms: int) -> None:
        """FunASR's dynamic schedule, applied before every piece of ``piece_ms``."""
        if not self.settings.dynamic:
            return
        if self.endpointer.in_speech or self._dynamic_in_speech:
            self._accumulated_ms += piece_ms
            self._dynamic_in_speech = True
        for limit_ms, silence_ms in self.settings.silence_schedule:
            if self._accumulated_ms <= limit_ms:
                self.endpointer.end_silence_ms = max(silence_ms - self.options.speech_to_sil_time_thres, 0)
                self.speech_noise_thres = DYNAMIC_SPEECH_NOISE_THRES
                break

    def run_piece(
        self, sil_prob: np.ndarray, *, final: bool, decibel: np.ndarray | None = None
    ) -> list[tuple[int, int]]:
        """Decide the piece's newly released frames and return what FunASR reports for this piece.

        File mode: finished ``(start_ms, end_ms)`` segments (at the end also an open one). Streaming:
        events ``(start, -1)``, ``(-1, end)`` or ``(start, end)``. A piece without frames reports nothing.
        """
        if len(sil_prob) == 0:
            return []
        flags = speech_flags(
            sil_prob, options=self.options, speech_noise_thres=self.speech_noise_thres, decibel=decibel,
            noise=self.noise,
        )  # fmt: skip
        self.endpointer.advance(flags, final=final)
        out = self._collect(final)
        if out and self.settings.dynamic:
            self._accumulated_ms = 0
            self._dynamic_in_speech = False
        return out

    def _collect(self, final: bool) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        segments = self.endpointer.segments
        for seg in segments[self._offset :]:
            if self.streaming:
                if not seg.has_start or (not self._next_seg and not seg.has_end):
                    continue
                start = seg.start_ms if self._next_seg else -1
                if seg.has_end:
                    out.append((start, seg.end_ms))
                    self._next_seg = True
                    self._offset += 1
                else:
                    out.append((start, -1))
                    self._next_seg = False
            else:
                if not final and not (seg.has_start and seg.has_end):
                    continue
                out.append((seg.start_ms, seg.end_ms))
                self._offset += 1
        return out


def offline_segments(
    sil_prob: np.ndarray,
    n_samples: int,
    options: FsmnVadOptions,
    settings: FsmnRunSettings,
    *,
    decibel: np.ndarray | None = None,
) -> list[tuple[int, int]]:
    """FunASR's ``generate(file)`` result from the silence probability of every frame of the file.

    ``sil_prob`` must hold ``fbank_frames(n_samples)`` values (the whole-file scores). The file is cut
    into 60 s pieces exactly as FunASR does, which decides where the dynamic schedule changes.
    """
    session = FsmnSession(options, settings, streaming=False)
    stride = OFFLINE_PIECE_MS * options.sample_rate // 1000
    pieces = n_samples // stride + 1
    done = 0
    out: list[tuple[int, int]] = []
    for k in range(pieces):
        final = k == pieces - 1
        upto = decided_frames(n_samples if final else (k + 1) * stride, final=final)
        session.begin_piece(OFFLINE_PIECE_MS)
        db = None if decibel is None else decibel[done:upto]
        out.extend(session.run_piece(sil_prob[done:upto], final=final, decibel=db))
        done = max(done, upto)
    return out
