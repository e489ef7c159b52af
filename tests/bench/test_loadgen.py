"""The load generator's summary counts only answered requests as recognised audio."""

from __future__ import annotations

from bench.loadgen import summarize


def test_summary_counts_errors_apart() -> None:
    records = [
        {"status": "OK", "audio_s": 10.0, "latency_ms": 20.0, "server_ms": 15.0},
        {"status": "OK", "audio_s": 5.0, "latency_ms": 40.0, "server_ms": float("nan")},
        {"status": "RESOURCE_EXHAUSTED", "audio_s": 7.0, "latency_ms": 1.0},
        {
            "status": "OK",
            "audio_s": 5.0,
            "latency_ms": 30.0,
            "server_ms": 25.0,
            "final_lag_ms": [100.0, 300.0],
            "after_close_ms": 50.0,
        },
    ]
    row = summarize(records, wall_s=2.0)
    assert row["audio_s"] == 20.0 and row["rtfx"] == 10.0 and row["ok"] == 3 and row["requests"] == 4
    assert row["errors"] == {"RESOURCE_EXHAUSTED": 1}
    assert row["latency_ms"]["max"] == 40.0 and row["latency_ms"]["n"] == 3
    assert row["server_ms"]["n"] == 2  # a stream that reported no processing time is left out
    assert row["final_lag_ms"]["max"] == 300.0 and row["after_close_ms"]["p50"] == 50.0


def test_server_settings_take_either_spelling() -> None:
    """``--server-setting``: the file name and the environment name reach the same variable."""
    from bench.server_inproc import _setting_name

    assert _setting_name("LINGTING_MAX_BATCH_S") == "max_batch_s"
    assert _setting_name("device_workers") == "device_workers"
    assert _setting_name(" Lingting_Device_Workers ") == "device_workers"


def test_the_peer_is_timed_by_its_fastest_repeat() -> None:
    """funasr_peer.time_generate: a warm-up, then ``repeats`` timed calls; the fastest wall counts."""
    import time as _time

    from bench.funasr_peer import time_generate

    pauses = iter([0.05, 0.01, 0.03])
    calls: list[str] = []

    def call() -> str:
        calls.append("call")
        _time.sleep(next(pauses))
        return "text"

    wall, result, walls = time_generate(call, lambda: calls.append("warm-up"), repeats=3)
    assert calls == ["warm-up", "call", "call", "call"] and result == "text"
    assert len(walls) == 3 and wall == min(walls) == walls[1]
    assert 0.01 <= wall < 0.03
