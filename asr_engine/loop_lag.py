"""How late an event loop runs its callbacks: a probe that sleeps a fixed interval and records the overshoot.

Why: in the engine process one event loop takes every segment in, hands batches to the device thread and
sends every result back, while the device and results threads hold the GIL for their Python work. When a
request waits long in the engine but batches stay small, a late loop (GIL or callback backlog) and a busy
device tell different stories; this probe's figures say which.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

__all__ = ["LoopLagProbe"]

_BUCKETS_MS = 1000  # 1 ms buckets; later lateness goes in the last one


class LoopLagProbe:
    """Sleeps ``interval_s`` again and again on the running loop and keeps how late each wake-up was."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._histogram = [0] * (_BUCKETS_MS + 1)
        self.samples = 0
        self.total_ms = 0.0
        self.max_ms = 0.0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag-probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def record(self, late_ms: float) -> None:
        """One wake-up ``late_ms`` after it was due (public so the bookkeeping is testable directly)."""
        late_ms = max(0.0, late_ms)
        self.samples += 1
        self.total_ms += late_ms
        self.max_ms = max(self.max_ms, late_ms)
        self._histogram[min(int(late_ms), _BUCKETS_MS)] += 1

    def percentile_ms(self, share: float) -> float:
        """The upper edge of the 1 ms bucket holding the ``share`` quantile (0 when nothing was recorded)."""
        if not self.samples:
            return 0.0
        rank = share * self.samples
        seen = 0
        for bucket, count in enumerate(self._histogram):
            seen += count
            if seen >= rank:
                return float(bucket + 1)
        return float(_BUCKETS_MS + 1)

    def summary(self) -> str:
        mean = self.total_ms / self.samples if self.samples else 0.0
        return (
            f"loop_lag_ms mean={mean:.2f} p99<={self.percentile_ms(0.99):.0f} max={self.max_ms:.0f} "
            f"(n={self.samples})"
        )

    async def _run(self) -> None:
        while True:
            due = time.perf_counter() + self._interval_s
            await asyncio.sleep(self._interval_s)
            self.record((time.perf_counter() - due) * 1000.0)
