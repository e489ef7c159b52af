"""Streaming sessions: live PCM with VAD endpointing and interim results, or a chunked file upload.

Live mode (``AudioFormat(encoding="linear16")``): audio (resampled to 16 kHz by a ``StreamResampler``
that carries the filter's state across chunks, so chunking changes nothing) is appended to an open tail. Every
``interim_interval_ms`` of new audio the VAD looks at the tail; a speech segment followed by enough silence
(or one that reached the maximum segment length) is final and goes through the engine's shared batcher;
the still-open segment is re-decoded for an interim result. At ``finish`` everything left is final.

Upload mode (any other encoding): chunks are collected and the whole container is decoded at ``finish``,
so files larger than one unary message can be sent as a stream.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from asr_engine.audio import pcm16le_to_float32
from asr_engine.errors import AudioDecodeError, AudioTooLongError, InvalidOptionsError
from asr_engine.models.base import Hypothesis
from asr_engine.resample import StreamResampler
from asr_engine.types import AudioFormat, Segment, TranscribeOptions, Transcript

if TYPE_CHECKING:
    from asr_engine.engine import Engine

__all__ = ["StreamEvent", "StreamingSession"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
ENDPOINT_SILENCE_MS = 500


@dataclass(frozen=True)
class StreamEvent:
    """``kind`` is "interim" (may still change) or "final" (will not change)."""

    kind: str
    segment: Segment


class StreamingSession:
    """One client stream. Not shared between tasks; all calls come from the stream's own handler."""

    def __init__(
        self,
        engine: Engine,
        options: TranscribeOptions,
        *,
        audio_format: AudioFormat,
        interim_results: bool,
        max_duration_ms: int | None,
    ) -> None:
        self._engine = engine
        self._options = options
        self._format = audio_format
        self._interim = interim_results
        self._max_duration_ms = max_duration_ms
        self._live = audio_format.encoding == "linear16"
        self._started = time.perf_counter()
        self._finished = False
        # upload mode
        self._chunks: list[bytes] = []
        self._uploaded = 0
        # live mode
        if self._live:
            if not audio_format.sample_rate_hz or audio_format.sample_rate_hz <= 0:
                raise InvalidOptionsError("sample_rate_hertz", "LINEAR16 audio needs a sample rate")
            if not audio_format.channels or audio_format.channels <= 0:
                raise InvalidOptionsError("audio_channel_count", "LINEAR16 audio needs a channel count")
        self._remainder = b""
        rate = int(audio_format.sample_rate_hz or SAMPLE_RATE) if self._live else SAMPLE_RATE
        self._rate = rate
        self._resampler = StreamResampler(rate, SAMPLE_RATE) if rate != SAMPLE_RATE else None
        self._received = 0  # input samples (per channel) at the client's rate
        self._tail = np.zeros(0, dtype=np.float32)  # 16 kHz audio not yet finalised
        self._tail_start = 0  # sample index of the tail's first sample in the whole stream
        self._since_check = 0
        self._total = 0
        self._finals: list[Segment] = []

    @property
    def live(self) -> bool:
        return self._live

    async def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Add audio; returns the events this chunk produced (possibly none)."""
        if self._finished:
            raise InvalidOptionsError("audio_content", "the stream is already finished")
        if not chunk:
            return []
        if not self._live:
            self._chunks.append(chunk)
            self._uploaded += len(chunk)
            return []
        samples = self._pcm_to_16k(chunk)
        received_ms = self._received * 1000 // self._rate
        if self._max_duration_ms is not None and received_ms > self._max_duration_ms:
            raise AudioTooLongError(received_ms, self._max_duration_ms)
        if samples.size == 0:
            return []
        self._append(samples)
        if self._since_check * 1000 // SAMPLE_RATE < self._engine.config.interim_interval_ms:
            return []
        self._since_check = 0
        return await self._advance(final=False)

    async def finish(self) -> tuple[list[StreamEvent], Transcript]:
        """Close the stream: returns the last events and the whole transcript."""
        if self._finished:
            raise InvalidOptionsError("audio_content", "the stream is already finished")
        self._finished = True
        if not self._live:
            if not self._chunks:
                raise AudioDecodeError("the stream carried no audio")
            transcript = await self._engine.transcribe(
                b"".join(self._chunks),
                self._options,
                audio_format=self._format,
                max_duration_ms=self._max_duration_ms,
            )
            self._chunks.clear()
            return [StreamEvent("final", s) for s in transcript.segments], transcript
        if self._resampler is not None:
            self._append(self._resampler.flush())  # the filter's last outputs, over trailing zeros
        if self._total == 0:
            raise AudioDecodeError("the stream carried no audio")
        events = await self._advance(final=True)
        transcript = self._engine.assemble(self._finals, self._total, self._options, self._started, ())
        return events, transcript

    # ------------------------------------------------------------------ live internals
    def _append(self, samples: np.ndarray) -> None:
        self._total += samples.size
        self._tail = np.concatenate([self._tail, samples])
        self._since_check += samples.size

    def _pcm_to_16k(self, chunk: bytes) -> np.ndarray:
        channels = int(self._format.channels or 1)
        frame = 2 * channels
        data = self._remainder + chunk
        usable = len(data) - len(data) % frame
        self._remainder = data[usable:]
        if usable == 0:
            return np.zeros(0, dtype=np.float32)
        samples = pcm16le_to_float32(data[:usable], channels)
        self._received += samples.size
        if self._resampler is not None:
            samples = self._resampler.process(samples)
        return np.ascontiguousarray(samples, dtype=np.float32)

    def _spans(self, final: bool) -> list[tuple[int, int]]:
        """Speech spans of the tail (samples, relative to the tail)."""
        max_ms = self._engine.config.max_segment_ms
        vad = self._engine.vad
        if vad is None or self._options.vad is False:
            # Without VAD the stream is cut only at the maximum segment length; the rest stays open.
            step = max_ms * 16
            return [(i, min(i + step, self._tail.size)) for i in range(0, self._tail.size, step)]
        spans_ms = vad.segments(self._tail, max_segment_ms=max_ms)
        spans = [(s * 16, min(e * 16, self._tail.size)) for s, e in spans_ms]
        return [(s, e) for s, e in spans if e > s]

    async def _advance(self, final: bool) -> list[StreamEvent]:
        spans = self._spans(final)
        events: list[StreamEvent] = []
        endpoint = ENDPOINT_SILENCE_MS * 16
        max_len = self._engine.config.max_segment_ms * 16
        closed: list[tuple[int, int]] = []
        open_span: tuple[int, int] | None = None
        for start, end in spans:
            if final or self._tail.size - end >= endpoint or end - start >= max_len:
                closed.append((start, end))
            else:
                open_span = (start, end)
                break
        if closed:
            hyps = [await self._engine.recognise_segment(self._tail[s:e], self._options) for s, e in closed]
            for hyp, (s, e) in zip(hyps, closed, strict=True):
                segment = self._segment(hyp, s, e)
                if segment.text_raw.strip():
                    self._finals.append(segment)
                    events.append(StreamEvent("final", segment))
            cut = closed[-1][1]
            self._tail = self._tail[cut:]
            self._tail_start += cut
        elif not spans and not final:
            # Pure silence: keep only a short margin so the VAD can still find a start.
            keep = min(self._tail.size, SAMPLE_RATE)
            self._tail_start += self._tail.size - keep
            self._tail = self._tail[self._tail.size - keep :]
        if open_span is not None and self._interim and not final:
            s, e = open_span[0] - (closed[-1][1] if closed else 0), self._tail.size
            if e - s >= SAMPLE_RATE // 4:
                hyp = await self._engine.recognise_segment(self._tail[s:e], self._options)
                segment = self._segment(hyp, s, e)
                if segment.text_raw.strip():
                    events.append(StreamEvent("interim", segment))
        return events

    def _segment(self, hyp: Hypothesis, start: int, end: int) -> Segment:
        start_ms = (self._tail_start + start) * 1000 // SAMPLE_RATE
        end_ms = (self._tail_start + end) * 1000 // SAMPLE_RATE
        return self._engine.postprocess_segment(hyp, start_ms, end_ms, self._options)
