"""The dynamic batcher: speech segments from every in-flight request and stream, decoded in shared batches.

Every segment waits in one queue. A free worker takes the oldest waiting segment, gathers more for at most
``max_wait_ms`` (or until the frame budget is full), sorts what it has by length and cuts it into batches
whose padded size (``batch items x longest item``) stays under ``max_batch_samples``; the cut batches wait in
a shared list, oldest first, and every free worker takes the next one. Each worker runs its batches in its
own thread, so the event loop keeps accepting audio while the device works. One worker (the default) runs
one batch at a time; N workers run up to N at once, which lets one thread launch a batch's kernels while
another waits on the device (the GIL is released while blocking in CUDA). A CUDA out-of-memory error
splits the batch in two and retries each half on the same worker; a batch of one that still fails fails
only its own request. Nothing that enters the queue is dropped: every future gets a result or an exception.

With ``batches_ahead`` a worker hands its thread the next batch while one still runs, but only a full one
(a cut batch waiting, or a full budget queued): the thread then starts it the moment the previous ends,
without waiting for the event loop to see that end and hand the next one over.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from asr_engine.errors import OverloadedError
from asr_engine.timing import Log2Histogram

__all__ = ["BatchScheduler", "SchedulerConfig", "SchedulerStats"]

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True, kw_only=True)
class SchedulerConfig:
    """Batching limits. Sizes are in 16 kHz samples of audio, the unit every segment arrives in."""

    max_batch_samples: int = 16000 * 600  # 10 minutes of padded audio per batch
    max_batch_items: int = 256
    max_wait_ms: float = 2.0
    max_queued_samples: int = 16000 * 3600 * 4  # four hours of audio waiting, then OverloadedError
    # Full batches a worker may queue on its thread behind the running one (0: the next batch is chosen
    # when the previous has ended). Why: under load the device thread idled 17.5 % between batches,
    # waiting for the event loop to take its results and hand the next batch over (an H100 py-spy,
    # bench/results/2026-11-22-h100-s6-spy). Only full batches go ahead, so batching at lower load, where
    # a batch grows while the previous runs, is unchanged.
    batches_ahead: int = 0

    @classmethod
    def for_seconds(cls, max_batch_s: float, max_wait_ms: float, batches_ahead: int = 0) -> SchedulerConfig:
        """The defaults with the batch budget given in seconds of padded audio and the gathering wait."""
        return cls(
            max_batch_samples=int(max_batch_s * 16000), max_wait_ms=max_wait_ms, batches_ahead=batches_ahead
        )


@dataclass
class SchedulerStats:
    """Counters for logs and benchmarks."""

    batches: int = 0
    items: int = 0
    padded_samples: int = 0
    real_samples: int = 0
    oom_splits: int = 0
    busy_s: float = 0.0  # summed over workers: with N workers it may exceed the wall time
    waited_s: float = 0.0  # summed over items: queue entry to the start of their batch
    max_wait_s: float = 0.0
    cuts: int = 0  # times the queue was taken and cut into batches
    cut_items: int = 0  # items taken at those cuts, summed
    run_ms: Log2Histogram = field(default_factory=Log2Histogram)  # each batch's time in its worker
    # Batches each worker completed (index = worker); a list, so not a plain counter to subtract.
    worker_batches: list[int] = field(default_factory=list)

    def summary(self, wall_s: float) -> str:
        """One log line: how full the batches were and how busy the workers, over ``wall_s`` seconds.

        Why: whether a throughput bound lies in batching (few items, much padding) or in the device
        (workers busy all the time) shows here first, before any profiler.
        """
        per_batch = self.items / self.batches if self.batches else 0.0
        fill = self.real_samples / self.padded_samples if self.padded_samples else 0.0
        workers = max(1, len(self.worker_batches))
        busy = self.busy_s / (wall_s * workers) if wall_s > 0 else 0.0
        return (
            f"batches={self.batches} items={self.items} items_per_batch={per_batch:.1f} "
            f"padding_fill={fill:.1%} audio_s={self.real_samples / 16000:.0f} "
            f"worker_busy={busy:.1%} oom_splits={self.oom_splits} "
            f"queue_wait_ms_mean={self.mean_wait_ms():.1f} queue_wait_ms_max={self.max_wait_s * 1000:.0f} "
            f"items_per_cut={self.cut_items / self.cuts if self.cuts else 0.0:.1f} "
            f"run_ms_mean={self.busy_s * 1000 / self.batches if self.batches else 0.0:.1f} "
            f"run_ms=[{self.run_ms.summary()}]"
        )

    def mean_wait_ms(self) -> float:
        """How long an item waited in the queue for its batch, on average (ms).

        Why: with a closed-loop load, a request waits either here (the device is the bound and batches
        grow) or somewhere before the engine; the mean tells which.
        """
        return self.waited_s * 1000 / self.items if self.items else 0.0


@dataclass
class _Pending(Generic[Item, Result]):
    item: Item
    size: int
    future: asyncio.Future[Result]
    enqueued: float = field(default_factory=time.perf_counter)


class BatchScheduler(Generic[Item, Result]):
    """Batches items of a known ``size`` and runs ``run_batch`` on them in ``workers`` dedicated threads.

    ``run_batch(items) -> results`` must return one result per item, in order, and must give each item the
    result it would get alone. Each worker calls it from its own thread only; with ``workers > 1`` calls
    from different workers overlap, so shared state must be safe for that. ``worker_setup(index)`` runs
    once in each worker's thread before its first batch (the engine gives each its own CUDA stream there).
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[Item]], list[Result]],
        config: SchedulerConfig,
        *,
        is_oom: Callable[[BaseException], bool] = lambda exc: False,
        name: str = "asr",
        workers: int = 1,
        worker_setup: Callable[[int], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self._run_batch = run_batch
        self._config = config
        self._is_oom = is_oom
        self._name = name
        self._queue: deque[_Pending[Item, Result]] = deque()
        self._queued_samples = 0
        self._ready: deque[list[_Pending[Item, Result]]] = deque()  # cut, waiting for a free worker
        self._wakeup: asyncio.Event | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._executors = [
            ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix=f"{name}-device" if workers == 1 else f"{name}-device{index}",
                initializer=functools.partial(worker_setup, index) if worker_setup else None,
            )
            for index in range(workers)
        ]
        self.stats = SchedulerStats(worker_batches=[0] * workers)

    @property
    def workers(self) -> int:
        return len(self._executors)

    async def start(self) -> None:
        if not self._workers:
            self._wakeup = asyncio.Event()
            loop = asyncio.get_running_loop()
            self._workers = [
                loop.create_task(self._work(index), name=f"{self._name}-batcher{index}")
                for index in range(self.workers)
            ]

    async def close(self) -> None:
        """Stop every worker (a batch already on a device thread finishes), fail what still waits."""
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        waiting = [*self._queue, *(p for batch in self._ready for p in batch)]
        _fail(waiting, OverloadedError("engine is shutting down", retry_after_s=1.0))
        self._queue.clear()
        self._ready.clear()
        for executor in self._executors:
            executor.shutdown(wait=True)

    @property
    def queued_samples(self) -> int:
        return self._queued_samples

    def submit(self, item: Item, size: int) -> asyncio.Future[Result]:
        """Queue one item; the returned future resolves to its result."""
        if not self._workers or self._wakeup is None:
            raise RuntimeError("scheduler not started")
        if self._queued_samples + size > self._config.max_queued_samples and self._queue:
            raise OverloadedError(
                f"{self._queued_samples / 16000:.0f} s of audio already waiting", retry_after_s=1.0
            )
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(item, max(1, size), future))
        self._queued_samples += max(1, size)
        self._wakeup.set()
        return future

    async def _work(self, worker: int) -> None:
        """One worker: the next cut batch, or a new cut of the queue when none is waiting.

        All workers run on the event loop's thread, so the queue and the cut list need no lock; the only
        awaits are the gathering wait and the batch itself, after which the state is re-checked. With
        ``batches_ahead`` the worker's batches run as tasks (at most ``1 + batches_ahead``), which the
        worker's one thread takes in order; cancelling the worker cancels them, failing their items.
        """
        loop = asyncio.get_running_loop()
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                batch = await (self._next_full_batch(running) if running else self._next_batch())
                if not batch:
                    continue
                if not self._config.batches_ahead:
                    await self._run(loop, worker, batch)
                    continue
                task = loop.create_task(self._run(loop, worker, batch))
                running.add(task)
                task.add_done_callback(functools.partial(self._batch_ended, running))
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _next_batch(self) -> list[_Pending[Item, Result]]:
        """For an idle worker: the next cut batch, else a cut of the queue after the gathering wait."""
        assert self._wakeup is not None
        if not self._ready:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                return []
            await self._gather_more()
            if not self._ready and self._queue:  # another worker may have cut meanwhile
                self._ready.extend(self._cut(self._take()))
            if not self._ready:
                return []
        return self._pop_live()

    async def _next_full_batch(self, running: set[asyncio.Task[None]]) -> list[_Pending[Item, Result]]:
        """For a worker with batches in its thread: a full batch to queue behind them, if there is room.

        Otherwise waits for the next change (a submit or a batch's end both set the wake-up) and returns
        nothing, so that the caller looks again.
        """
        assert self._wakeup is not None
        if len(running) > self._config.batches_ahead or not (self._ready or self._budget_full()):
            self._wakeup.clear()
            await self._wakeup.wait()
            return []
        if not self._ready:
            self._ready.extend(self._cut(self._take()))
        return self._pop_live()

    def _pop_live(self) -> list[_Pending[Item, Result]]:
        """The oldest cut batch without the items whose callers gave up (empty if none is left)."""
        return [p for p in self._ready.popleft() if not p.future.cancelled()]

    def _budget_full(self) -> bool:
        return (
            self._queued_samples >= self._config.max_batch_samples
            or len(self._queue) >= self._config.max_batch_items
        )

    def _batch_ended(self, running: set[asyncio.Task[None]], task: asyncio.Task[None]) -> None:
        running.discard(task)
        if self._wakeup is not None:
            self._wakeup.set()  # the worker that ran it may take the next batch now

    async def _gather_more(self) -> None:
        """Wait up to max_wait_ms for company, unless the budget is already full.

        Sleeps on the wake-up event (set by every ``submit``) rather than polling, so a waiting worker
        costs the event loop nothing; it re-checks the budget on each arrival.
        """
        assert self._wakeup is not None
        if not self._queue:
            return
        deadline = self._queue[0].enqueued + self._config.max_wait_ms / 1000.0
        while not self._budget_full():
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    def _take(self) -> list[_Pending[Item, Result]]:
        """Take everything that fits into a few batches' worth of budget, oldest first."""
        budget = self._config.max_batch_samples * 4
        taken: list[_Pending[Item, Result]] = []
        total = 0
        while self._queue and (not taken or total + self._queue[0].size <= budget):
            pending = self._queue.popleft()
            taken.append(pending)
            total += pending.size
        self._queued_samples -= total
        self.stats.cuts += 1
        self.stats.cut_items += len(taken)
        return taken

    def _cut(self, taken: list[_Pending[Item, Result]]) -> list[list[_Pending[Item, Result]]]:
        """Length-sorted batches whose padded size stays within the budget."""
        ordered = sorted(taken, key=lambda p: p.size, reverse=True)
        batches: list[list[_Pending[Item, Result]]] = []
        current: list[_Pending[Item, Result]] = []
        for pending in ordered:
            longest = current[0].size if current else pending.size
            if current and (
                longest * (len(current) + 1) > self._config.max_batch_samples
                or len(current) >= self._config.max_batch_items
            ):
                batches.append(current)
                current = []
            current.append(pending)
        if current:
            batches.append(current)
        return batches

    def _timed_run(self, items: list[Item]) -> tuple[list[Result], float, float]:
        """In the worker's thread: the batch's results, when the thread started it and how long it ran.

        Timed here, not around the await: a batch queued ahead waits in the thread's queue first.
        """
        started = time.perf_counter()
        results = self._run_batch(items)
        return results, started, time.perf_counter() - started

    async def _run(
        self, loop: asyncio.AbstractEventLoop, worker: int, batch: list[_Pending[Item, Result]]
    ) -> None:
        items = [p.item for p in batch]
        try:
            results, started, ran = await loop.run_in_executor(
                self._executors[worker], self._timed_run, items
            )
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):  # close(): the batch's callers must not wait forever
                _fail(batch, OverloadedError("engine is shutting down", retry_after_s=1.0))
                raise
            if self._is_oom(exc) and len(batch) > 1:
                self.stats.oom_splits += 1
                half = len(batch) // 2
                log.warning("out of memory on a batch of %d; splitting", len(batch))
                await self._run(loop, worker, batch[:half])
                await self._run(loop, worker, batch[half:])
                return
            log.exception("batch of %d failed", len(batch))
            _fail(batch, exc)
            return
        waits = [started - p.enqueued for p in batch]
        self.stats.busy_s += ran
        self.stats.run_ms.add(ran * 1000.0)
        self.stats.batches += 1
        self.stats.worker_batches[worker] += 1
        self.stats.items += len(batch)
        self.stats.waited_s += sum(waits)
        self.stats.max_wait_s = max(self.stats.max_wait_s, *waits)
        self.stats.padded_samples += batch[0].size * len(batch)
        self.stats.real_samples += sum(p.size for p in batch)
        for pending, result in zip(batch, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)


def _fail(batch: Sequence[_Pending[Item, Result]], exc: BaseException) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(exc)
