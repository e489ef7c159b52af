"""What the engine needs from a voice activity detector, whichever model is behind it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

__all__ = [
    "DEFAULT_MAX_SEGMENT_MS",
    "SAMPLE_RATE",
    "VadEvent",
    "VadStream",
    "VoiceActivityDetector",
    "as_mono",
]

SAMPLE_RATE = 16000
DEFAULT_MAX_SEGMENT_MS = 20000


@dataclass(frozen=True)
class VadEvent:
    """A streaming VAD report in FunASR's format, times in ms from the stream start.

    ``(start, -1)``: speech started and is still going; ``(-1, end)``: the open segment ended;
    ``(start, end)``: a whole segment started and ended since the last report.
    """

    start_ms: int
    end_ms: int

    @property
    def opens(self) -> bool:
        return self.start_ms >= 0 and self.end_ms < 0

    @property
    def closes(self) -> bool:
        return self.end_ms >= 0


class VadStream(Protocol):
    """One live audio stream: feed 16 kHz float32 mono chunks of any length, then finish."""

    def feed(self, samples: np.ndarray) -> list[VadEvent]: ...

    def finish(self) -> list[VadEvent]: ...


@runtime_checkable
class VoiceActivityDetector(Protocol):
    """A loaded VAD, shared by all requests; every call keeps its own state."""

    kind: str  # "silero" or "fsmn"

    def segments(
        self, samples: np.ndarray | torch.Tensor, *, max_segment_ms: int = DEFAULT_MAX_SEGMENT_MS
    ) -> list[tuple[int, int]]:
        """Speech segments ``(start_ms, end_ms)`` in time order of a whole 16 kHz mono recording."""
        ...

    def stream(self) -> VadStream: ...


def as_mono(samples: np.ndarray | torch.Tensor) -> np.ndarray:
    """A 1-D float32 numpy view of 16 kHz samples (torch tensors are moved to the CPU)."""
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().to("cpu").numpy()
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim != 1:
        squeezed = array.squeeze()
        if squeezed.ndim > 1:
            raise ValueError(f"expected mono samples, got shape {array.shape}")
        array = squeezed.reshape(-1)
    return np.ascontiguousarray(array)
