"""The batch scheduler: batching across requests, budgets, order, OOM splitting, overload."""

from __future__ import annotations

import asyncio
import threading
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


class GatedRecorder(Recorder):
    """A batch function whose first batch holds its thread until ``gate`` opens; ``started`` is set by the
    second batch's start, from the worker thread, so a test can see it while the event loop is blocked."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.first_started = threading.Event()
        self.started = threading.Event()

    def __call__(self, items: Sequence[np.ndarray]) -> list[float]:
        if not self.first_started.is_set():
            self.first_started.set()
            assert self.gate.wait(10.0)
        else:
            self.started.set()
        return super().__call__(items)


async def _hold_one_then_queue(
    ahead: int, sizes: list[int]
) -> tuple[
    GatedRecorder, BatchScheduler[np.ndarray, float], asyncio.Future[float], list[asyncio.Future[float]]
]:
    """A started scheduler whose first batch (one item of 10 ones) holds its thread, and items of ``sizes``
    (filled with 2s) submitted behind it."""
    recorder = GatedRecorder()
    scheduler: BatchScheduler[np.ndarray, float] = BatchScheduler(
        recorder, SchedulerConfig(max_batch_samples=1000, max_wait_ms=1, batches_ahead=ahead)
    )
    await scheduler.start()
    first = scheduler.submit(np.ones(10, dtype=np.float32), 10)
    while not recorder.first_started.is_set():
        await asyncio.sleep(0.001)
    rest = [scheduler.submit(np.full(n, 2, dtype=np.float32), n) for n in sizes]
    return recorder, scheduler, first, rest


async def _second_batch_starts_without_the_loop(
    ahead: int, second_sizes: list[int]
) -> tuple[bool, list[float]]:
    """Runs one held batch, queues ``second_sizes`` behind it, then opens the gate while the event loop is
    blocked: whether the next batch started in that time (only a batch already in the thread can)."""
    recorder, scheduler, first, rest = await _hold_one_then_queue(ahead, second_sizes)
    try:
        for _ in range(20):  # let the worker see the submits
            await asyncio.sleep(0.001)
        recorder.gate.set()
        started_blocked = recorder.started.wait(0.5)  # blocks the loop on purpose
        results = await asyncio.wait_for(asyncio.gather(first, *rest), 5.0)
        return started_blocked, results
    finally:
        await scheduler.close()


async def test_a_full_batch_goes_ahead_into_the_thread_with_batches_ahead() -> None:
    """With ``batches_ahead=1`` a full batch waiting behind a running one is already in the worker's thread
    and starts when the running one ends, while the event loop is busy; with 0 it waits for the loop."""
    ahead, results = await _second_batch_starts_without_the_loop(1, [500, 500])
    assert ahead and results == [10.0, 1000.0, 1000.0]
    assert not (await _second_batch_starts_without_the_loop(0, [500, 500]))[0]


async def test_a_batch_that_is_not_full_does_not_go_ahead() -> None:
    """Below a full budget the next batch is chosen when the running one ends (it may still grow)."""
    ahead, results = await _second_batch_starts_without_the_loop(1, [100])
    assert not ahead and results == [10.0, 200.0]


async def test_batches_ahead_keeps_run_times_to_the_thread_and_fails_queued_batches_on_close() -> None:
    """A batch queued ahead is timed from its start in the thread, not from its hand-over; closing the
    scheduler fails the batches still queued, and nothing hangs."""
    recorder, scheduler, first, queued = await _hold_one_then_queue(1, [500, 500])
    await asyncio.sleep(0.3)  # the second batch waits in the thread's queue meanwhile
    recorder.gate.set()
    assert await asyncio.wait_for(asyncio.gather(first, *queued), 5.0) == [10.0, 1000.0, 1000.0]
    # The first batch held its thread ~0.3 s; the second ran at once: its waiting is not its run time.
    assert scheduler.stats.batches == 2 and scheduler.stats.busy_s < 0.3 + 0.2
    assert scheduler.stats.max_wait_s >= 0.25  # ... it counts as the items' queue wait instead
    await scheduler.close()

    recorder, scheduler, held, behind = await _hold_one_then_queue(1, [500, 500])
    await asyncio.sleep(0.02)
    # close() waits for the held batch's thread, blocking the loop: the gate opens from another thread.
    threading.Timer(0.1, recorder.gate.set).start()
    await asyncio.wait_for(scheduler.close(), 5.0)
    assert not recorder.started.is_set()  # the batch queued behind was cancelled before it started
    for future in [held, *behind]:
        assert future.done()
        with pytest.raises(OverloadedError, match="shutting down"):
            future.result()
