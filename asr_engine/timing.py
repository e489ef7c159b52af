"""Where a device thread's time goes, per stage of a batch: totals and log2 histograms for the stop log.

Why: under load on an H100 a segment waited ~37 ms in the queue while the device thread's batches took
12.9 ms on average and each cut found only ~11 items waiting. Averages hide that; the spread of each
stage (is one stage occasionally very long?) tells what holds the queue up.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence

__all__ = ["Laps", "Log2Histogram", "StageClock"]


class Log2Histogram:
    """Counts of durations in buckets below 1, 2, 4, ... ``2 ** (buckets - 2)`` ms and one above."""

    def __init__(self, buckets: int = 10) -> None:
        self.counts = [0] * buckets

    def add(self, ms: float) -> None:
        index = 0
        edge = 1.0
        while index < len(self.counts) - 1 and ms >= edge:
            index += 1
            edge *= 2
        self.counts[index] += 1

    def summary(self) -> str:
        """``<1:n <2:n ... >=256:n`` with the empty buckets left out."""
        parts = []
        for index, count in enumerate(self.counts):
            if not count:
                continue
            if index < len(self.counts) - 1:
                parts.append(f"<{1 << index}:{count}")
            else:
                parts.append(f">={1 << (index - 1)}:{count}")
        return " ".join(parts) or "-"


class StageClock:
    """Seconds per named stage, summed over batches, with a histogram each; safe across device threads."""

    def __init__(self, stages: Sequence[str]) -> None:
        self._lock = threading.Lock()
        self._totals = dict.fromkeys(stages, 0.0)
        self._histograms = {stage: Log2Histogram() for stage in stages}
        self.batches = 0

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._totals[stage] += seconds
            self._histograms[stage].add(seconds * 1000.0)

    def batch_done(self) -> None:
        with self._lock:
            self.batches += 1

    @contextlib.contextmanager
    def batch(self) -> Iterator[Laps]:
        """One batch's stages, timed as laps; the batch counts when the block ends without an error."""
        yield Laps(self)
        self.batch_done()

    def mean_ms(self, stage: str) -> float:
        return self._totals[stage] * 1000.0 / self.batches if self.batches else 0.0

    def summary(self) -> str:
        """``stage=mean ms [histogram]`` per stage, one line."""
        with self._lock:
            return " ".join(
                f"{stage}={self.mean_ms(stage):.1f}ms[{self._histograms[stage].summary()}]"
                for stage in self._totals
            )


class Laps:
    """Stage times of one batch: each call books the time since the previous one (or the start)."""

    def __init__(self, clock: StageClock) -> None:
        self._clock = clock
        self._mark = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self._clock.add(stage, now - self._mark)
        self._mark = now

    def restart(self) -> None:
        """Book the time since the previous lap to no stage (work that is not the batch's own)."""
        self._mark = time.perf_counter()
