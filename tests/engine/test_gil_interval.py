"""The engine sets the process's GIL switch interval when asked to, and leaves it alone otherwise."""

from __future__ import annotations

import asyncio
import dataclasses
import sys

from asr_engine.engine import Engine, EngineConfig
from service.config import load_settings
from service.engine_host import engine_tuning


def _interval_after_start(config: EngineConfig) -> float:
    async def run() -> float:
        engine = Engine.load(device="cpu", config=config)
        await engine.start()
        try:
            return sys.getswitchinterval()
        finally:
            await engine.close()

    return asyncio.run(run())


def test_switch_interval_is_set_at_start_only_when_configured() -> None:
    before = sys.getswitchinterval()
    try:
        base = EngineConfig(vad="none")
        assert _interval_after_start(base) == before
        assert _interval_after_start(dataclasses.replace(base, gil_switch_interval_ms=0.5)) == 0.0005
    finally:
        sys.setswitchinterval(before)


def test_switch_interval_setting_reaches_the_engine_config() -> None:
    settings = load_settings(env={"LINGTING_GIL_SWITCH_INTERVAL_MS": "0.5"})
    assert EngineConfig.tuned(**engine_tuning(settings)).gil_switch_interval_ms == 0.5
    assert EngineConfig.tuned(**engine_tuning(load_settings(env={}))).gil_switch_interval_ms == 0.0
