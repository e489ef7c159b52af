"""The bundled default model: loads offline, transcribes its own sample clips, honours hotwords."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from asr_engine.engine import BUNDLED_DIR, Engine, EngineConfig, default_model_dir
from asr_engine.types import Hotword, TranscribeOptions

MODEL_DIR = BUNDLED_DIR / "lingting-mini"
SAMPLES = json.loads((MODEL_DIR / "samples" / "samples.json").read_text(encoding="utf-8"))
PLAIN = [s for s in SAMPLES if not s.get("hotwords")]
HOTWORD = [s for s in SAMPLES if s.get("hotwords")]
RAW = TranscribeOptions(itn=False, punctuation=False, vad=False)
ITN = TranscribeOptions(itn=True, punctuation=False, vad=False)


@pytest.fixture(scope="module")
def offline() -> Any:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args}")

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket, "create_connection", refuse)
    yield
    mp.undo()


@pytest.fixture(scope="module")
async def engine(offline: Any):  # type: ignore[no-untyped-def]
    eng = Engine.load(device="cpu", config=EngineConfig())
    await eng.start()
    yield eng
    await eng.close()


def test_bundled_directory_is_the_default_and_small() -> None:
    assert default_model_dir() == MODEL_DIR
    total = sum(p.stat().st_size for p in MODEL_DIR.rglob("*") if p.is_file())
    assert total <= 30 * 1024 * 1024
    for name in ("config.yaml", "configuration.json", "am.mvn", "model.safetensors", "MODEL_CARD.md"):
        assert (MODEL_DIR / name).is_file(), name
    assert not (MODEL_DIR / "model.pt").exists()


async def test_loads_offline_as_sensevoice(engine: Engine) -> None:
    (info,) = engine.models
    assert info.family == "sensevoice"
    assert info.name == "lingting-mini"
    assert info.hotword_mode == "context_graph"


@pytest.mark.parametrize("sample", PLAIN, ids=[s["file"] for s in PLAIN])
async def test_sample_spoken_form(engine: Engine, sample: dict) -> None:
    audio = (MODEL_DIR / "samples" / sample["file"]).read_bytes()
    result = await engine.transcribe(audio, RAW)
    assert result.text == sample["text"]


@pytest.mark.parametrize("sample", PLAIN, ids=[s["file"] for s in PLAIN])
async def test_sample_with_itn(engine: Engine, sample: dict) -> None:
    audio = (MODEL_DIR / "samples" / sample["file"]).read_bytes()
    result = await engine.transcribe(audio, ITN)
    assert result.text == sample["text_itn"]
    assert result.text != sample["text"]  # every sample carries something ITN rewrites


@pytest.mark.parametrize("sample", HOTWORD, ids=[s["file"] for s in HOTWORD])
async def test_rare_name_needs_the_hotword(engine: Engine, sample: dict) -> None:
    audio = (MODEL_DIR / "samples" / sample["file"]).read_bytes()
    name = sample["hotwords"][0]
    plain = await engine.transcribe(audio, RAW)
    assert name not in plain.text.split()
    boosted = await engine.transcribe(
        audio,
        TranscribeOptions(
            itn=False, punctuation=False, vad=False, hotwords=(Hotword(phrase=name, boost=sample["boost"]),)
        ),
    )
    assert name in boosted.text.split()
    assert boosted.text == sample["text"]
