"""The batch scheduler: batching across requests, budgets, order, OOM splitting, overload."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from asr_engine.errors import OverloadedError
from asr_engine.scheduler import BatchScheduler, SchedulerConfig


class Recorder:
    """A real batch function: sums each item, remembering the batch shapes it saw."""

    def __init__(self, oom_above: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.oom_above = oom_above

    def __call__(self, items: Sequence[np.ndarray]) -> list[float]:
        if self.oom_above is not None and len(items) > self.oom_above:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.batches.append([len(x) for x in items])
        return [float(x.sum()) for x in items]


async def test_concurrent_requests_share_batches_and_get_their_own_results() -> None:
    recorder = Recorder()
    scheduler: BatchScheduler[np.ndarray, float] = BatchScheduler(
        recorder, SchedulerConfig(max_batch_samples=10_000, max_wait_ms=20)
    )
    await scheduler.start()
    try:
        items = [np.full(n, i, dtype=np.float32) for i, n in enumerate([100, 900, 50, 400, 10])]
        results = await asyncio.gather(*(scheduler.submit(x, len(x)) for x in items))
        assert results == [float(x.sum()) for x in items]
        assert len(recorder.batches) == 1
        assert recorder.batches[0] == sorted(recorder.batches[0], reverse=True)
    finally:
        await scheduler.close()


async def test_padded_budget_is_respected() -> None:
    recorder = Recorder()
    scheduler: BatchScheduler[np.ndarray, float] = BatchScheduler(
        recorder, SchedulerConfig(max_batch_samples=1000, max_wait_ms=20)
    )
    await scheduler.start()
    try:
        items = [np.ones(n, dtype=np.float32) for n in [600, 500, 400, 300, 200, 100, 100]]
        await asyncio.gather(*(scheduler.submit(x, len(x)) for x in items))
        for batch in recorder.batches:
            assert max(batch) * len(batch) <= 1000 or len(batch) == 1
        assert sum(len(b) for b in recorder.batches) == len(items)
    finally:
        await scheduler.close()


async def test_out_of_memory_splits_and_nothing_is_lost() -> None:
    recorder = Recorder(oom_above=2)
    scheduler: BatchScheduler[np.ndarray, float] = BatchScheduler(
        recorder,
        SchedulerConfig(max_batch_samples=100_000, max_wait_ms=20),
        is_oom=lambda exc: "out of memory" in str(exc),
    )
    await scheduler.start()
    try:
        items = [np.full(10 + i, i, dtype=np.float32) for i in range(8)]
        results = await asyncio.gather(*(scheduler.submit(x, len(x)) for x in items))
        assert results == [float(x.sum()) for x in items]
        assert scheduler.stats.oom_splits >= 1
        assert all(len(b) <= 2 for b in recorder.batches)
    finally:
        await scheduler.close()


async def test_failure_reaches_only_its_batch_and_worker_survives() -> None:
    def run(items: Sequence[np.ndarray]) -> list[float]:
        if any(x.size == 13 for x in items):
            raise ValueError("bad item")
        return [float(x.size) for x in items]

    scheduler: BatchScheduler[np.ndarray, float] = BatchScheduler(run, SchedulerConfig(max_wait_ms=1))
    await scheduler.start()
    try:
        with pytest.raises(ValueError):
            await scheduler.submit(np.zeros(13, dtype=np.float32), 13)
        assert await scheduler.submit(np.zeros(7, dtype=np.float32), 7) == 7.0
    finally:
        await scheduler.close()


async def test_overload_is_reported_not_queued_forever() -> None:
    def run(items: Sequence[np.ndarray]) -> list[float]:
        return [0.0 for _ in items]

    scheduler: BatchScheduler[np.ndarray, float] = BatchScheduler(
        run, SchedulerConfig(max_queued_samples=100, max_wait_ms=50)
    )
    await scheduler.start()
    try:
        first = scheduler.submit(np.zeros(80, dtype=np.float32), 80)
        with pytest.raises(OverloadedError) as info:
            scheduler.submit(np.zeros(80, dtype=np.float32), 80)
        assert info.value.retry_after_s > 0
        assert await first == 0.0
    finally:
        await scheduler.close()


async def test_stats_summary_reports_batch_fill_from_the_batches_run() -> None:
    recorder = Recorder()
    scheduler: BatchScheduler[np.ndarray, float] = BatchScheduler(
        recorder, SchedulerConfig(max_batch_samples=100_000, max_wait_ms=20)
    )
    await scheduler.start()
    try:
        items = [np.ones(n, dtype=np.float32) for n in [1600, 800]]
        await asyncio.gather(*(scheduler.submit(x, len(x)) for x in items))
    finally:
        await scheduler.close()
    line = scheduler.stats.summary(wall_s=1.0)
    # one batch of two, padded to 1,600 samples each: 2,400 real of 3,200 padded
    assert "batches=1 items=2 items_per_batch=2.0" in line
    assert "padding_fill=75.0%" in line
    # Both items waited for the 20 ms gathering window (the budget was far from full) before their batch.
    assert 15.0 <= scheduler.stats.mean_wait_ms() <= scheduler.stats.max_wait_s * 1000
    assert f"queue_wait_ms_mean={scheduler.stats.mean_wait_ms():.1f}" in line
    # One cut took both items; the batch's time in the worker is its run time.
    assert scheduler.stats.cuts == 1 and "items_per_cut=2.0" in line
    assert f"run_ms_mean={scheduler.stats.busy_s * 1000:.1f}" in line
