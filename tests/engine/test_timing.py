"""Stage timings for the stop log: log2 histograms, per-stage means, and the engine's device-thread clock."""

from __future__ import annotations

import threading
import time

from asr_engine.timing import Log2Histogram, StageClock


def test_log2_histogram_puts_each_duration_below_its_power_of_two() -> None:
    histogram = Log2Histogram(buckets=5)  # <1 <2 <4 <8 >=8 ms
    for ms in (0.0, 0.99, 1.0, 3.9, 4.0, 7.99, 8.0, 500.0):
        histogram.add(ms)
    assert histogram.counts == [2, 1, 1, 2, 2]
    assert histogram.summary() == "<1:2 <2:1 <4:1 <8:2 >=8:2"
    assert Log2Histogram().summary() == "-"


def test_stage_clock_means_per_batch_from_several_threads() -> None:
    clock = StageClock(("features", "sync_wait"))
    assert clock.mean_ms("features") == 0.0

    def one_batch() -> None:
        clock.add("features", 0.002)
        clock.add("sync_wait", 0.010)
        clock.batch_done()

    threads = [threading.Thread(target=one_batch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.batches == 8
    assert abs(clock.mean_ms("features") - 2.0) < 1e-9 and abs(clock.mean_ms("sync_wait") - 10.0) < 1e-9
    assert clock.summary() == "features=2.0ms[<4:8] sync_wait=10.0ms[<16:8]"


def test_a_batch_books_laps_and_counts_only_when_it_ends_without_an_error() -> None:
    clock = StageClock(("features", "launch"))
    with clock.batch() as lap:
        time.sleep(0.002)
        lap("features")
        time.sleep(0.05)
        lap.restart()  # not the batch's own work: booked nowhere
        lap("launch")
    assert clock.batches == 1
    assert clock.mean_ms("features") >= 2.0 and clock.mean_ms("launch") < 40.0
    try:
        with clock.batch() as lap:
            lap("features")
            raise RuntimeError("out of memory")
    except RuntimeError:
        pass
    assert clock.batches == 1  # the failed batch's stage time is kept, the batch is not counted
