"""The event-loop lag probe: its bookkeeping, and that it sees a loop held up by blocking work."""

from __future__ import annotations

import asyncio
import time

from asr_engine.loop_lag import LoopLagProbe


def test_record_keeps_mean_max_and_bucketed_percentiles() -> None:
    probe = LoopLagProbe()
    assert probe.percentile_ms(0.99) == 0.0 and "n=0" in probe.summary()
    for late in [0.2] * 98 + [7.5, 40.0]:
        probe.record(late)
    probe.record(-0.1)  # an early wake-up counts as on time
    assert probe.samples == 101 and probe.max_ms == 40.0
    assert probe.percentile_ms(0.5) == 1.0  # the 0-1 ms bucket
    assert probe.percentile_ms(0.99) == 8.0  # the 7-8 ms bucket holds the 99th of 101
    assert probe.percentile_ms(1.0) == 41.0
    assert "max=40" in probe.summary() and "n=101" in probe.summary()


async def test_a_blocked_loop_shows_as_lag_and_an_idle_one_does_not() -> None:
    idle = LoopLagProbe(interval_s=0.002)
    idle.start()
    await asyncio.sleep(0.1)
    await idle.stop()
    assert idle.samples > 10 and idle.max_ms < 30.0

    blocked = LoopLagProbe(interval_s=0.002)
    blocked.start()
    await asyncio.sleep(0.01)
    time.sleep(0.08)  # a callback that holds the loop for 80 ms
    await asyncio.sleep(0.01)
    await blocked.stop()
    assert blocked.max_ms >= 60.0
