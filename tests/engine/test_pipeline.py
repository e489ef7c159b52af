"""Results delivered from a results thread (EngineConfig.pipeline): every item of a batch gets its own
hypothesis, and a caller that gives up does not take the batch's other items down with it."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from asr_engine.engine import _BatchResults, _deliver_now, _Delivery
from asr_engine.models.base import Hypothesis


def _batch(n: int) -> list[Hypothesis]:
    return [Hypothesis(token_ids=(i,), text=str(i)) for i in range(n)]


async def test_items_get_their_own_hypothesis_from_a_batch_built_elsewhere() -> None:
    with ThreadPoolExecutor(1) as pool:
        built = _BatchResults(pool.submit(_batch, 3))
        got = await asyncio.gather(*(_Delivery(built, i).hypothesis() for i in (2, 0, 1)))
    assert [h.text for h in got] == ["2", "0", "1"]
    now = _deliver_now(_batch(2))
    assert [(await d.hypothesis()).text for d in now] == ["0", "1"]


async def test_a_cancelled_caller_leaves_the_other_items_results_alone() -> None:
    gate = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(gate.wait)  # the batch's build stays queued (cancellable) while the caller gives up
        built = pool.submit(_batch, 3)
        shared = _BatchResults(built)
        waiting = [asyncio.ensure_future(_Delivery(shared, i).hypothesis()) for i in range(3)]
        await asyncio.sleep(0.02)
        waiting[0].cancel()
        await asyncio.sleep(0.02)
        gate.set()
        rest = await asyncio.gather(*waiting[1:])
    assert waiting[0].cancelled() and not built.cancelled()
    assert [h.text for h in rest] == ["1", "2"]


async def test_a_failed_build_reaches_every_item() -> None:
    def fail() -> list[Hypothesis]:
        raise RuntimeError("device error")

    with ThreadPoolExecutor(1) as pool:
        built = _BatchResults(pool.submit(fail))
        outcomes = await asyncio.gather(
            *(_Delivery(built, i).hypothesis() for i in range(2)), return_exceptions=True
        )
    assert all(isinstance(o, RuntimeError) for o in outcomes)


async def test_a_batch_wakes_the_event_loop_once_however_many_items_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each waiting item used to wrap the batch's thread future itself: 15 items, 15 thread-safe wake-ups."""
    loop = asyncio.get_running_loop()
    wakeups: list[str] = []
    real = loop.call_soon_threadsafe

    def counted(*args: Any, **kwargs: Any) -> asyncio.Handle:
        wakeups.append(threading.current_thread().name)  # the loop's own thread-safe wake-up, counted
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    gate = threading.Event()
    with ThreadPoolExecutor(1, thread_name_prefix="results") as pool:
        pool.submit(gate.wait)
        shared = _BatchResults(pool.submit(_batch, 15))
        waiting = [asyncio.ensure_future(_Delivery(shared, i).hypothesis()) for i in range(15)]
        await asyncio.sleep(0.02)
        gate.set()
        got = await asyncio.gather(*waiting)
    assert [h.text for h in got] == [str(i) for i in range(15)]
    assert len([name for name in wakeups if name.startswith("results")]) == 1
