"""FSMN-VAD end to end from audio files: every case of FunASR's parity vectors, offline and streaming."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from asr_engine.audio import decode_audio
from asr_engine.errors import ModelLoadError
from asr_engine.models.loader import load_model, read_model_dir
from asr_engine.vad import FsmnRunSettings, FsmnVad, VoiceActivityDetector, load_vad

CPU = torch.device("cpu")
VAD_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "fsmn_vad"


def _cases() -> list[dict[str, Any]]:
    path = VAD_DIR / "expected" / "expected.json"
    return json.loads(path.read_text())["cases"] if path.is_file() else []


_OFFLINE = [c for c in _cases() if "automodel_kwargs" in c]
_STREAMING = [c for c in _cases() if "automodel_kwargs" not in c]


@pytest.fixture(scope="module")
def vad_dir(parity_dir: Path) -> Path:
    return parity_dir / "fsmn_vad"


@pytest.fixture(scope="module")
def audio(vad_dir: Path) -> dict[str, np.ndarray]:
    files = sorted({c["input"].split(" ")[0] for c in _cases()})
    return {name: decode_audio((vad_dir / name).read_bytes()).samples for name in files}


@pytest.fixture(scope="module")
def vads(vad_dir: Path) -> dict[int | None, FsmnVad]:
    directory = read_model_dir(vad_dir / "model")
    return {
        None: FsmnVad.from_model_dir(directory, device=CPU),
        5000: FsmnVad.from_model_dir(directory, device=CPU, max_single_segment_ms=5000),
    }


def test_case_list_is_complete() -> None:
    assert len(_OFFLINE) == 24 and len(_STREAMING) == 2


@pytest.mark.parametrize("case", _OFFLINE, ids=[c["id"] for c in _OFFLINE])
def test_offline_case(
    case: dict[str, Any], vads: dict[int | None, FsmnVad], audio: dict[str, np.ndarray]
) -> None:
    vad = vads[case["automodel_kwargs"].get("max_single_segment_time")]
    kwargs = case["generate_kwargs"]
    settings = FsmnRunSettings(
        max_end_silence_ms=kwargs.get("max_end_silence_time"),
        speech_noise_thres=kwargs.get("speech_noise_thres"),
    )
    got = vad.funasr_segments(audio[case["input"]], settings)
    assert [list(seg) for seg in got] == case["result"][0]["value"]


@pytest.mark.parametrize("case", _STREAMING, ids=[c["id"] for c in _STREAMING])
def test_streaming_case(
    case: dict[str, Any], vads: dict[int | None, FsmnVad], audio: dict[str, np.ndarray]
) -> None:
    """FunASR's documented loop: chunks of chunk_size ms, is_final on the last one only."""
    wave = audio[case["input"].split(" ")[0]]
    chunk_ms = case["generate_kwargs"]["chunk_size"]
    stride = chunk_ms * 16
    stream = vads[None].stream(chunk_ms=chunk_ms)
    calls = -(-wave.size // stride)
    results = []
    for index in range(calls):
        chunk = wave[index * stride : (index + 1) * stride]
        events = stream.finish(chunk) if index == calls - 1 else stream.feed(chunk)
        if events:
            results.append({"chunk_index": index, "value": [[e.start_ms, e.end_ms] for e in events]})
    assert results == case["result"]


def test_frame_scores_match_funasr(
    vads: dict[int | None, FsmnVad], audio: dict[str, np.ndarray], vad_dir: Path
) -> None:
    expected = np.load(vad_dir / "expected" / "tensors" / "long_16k_sil_prob.npy")
    got = vads[None].frame_probs(audio["audio/long_16k.wav"])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_engine_face(vad_dir: Path, audio: dict[str, np.ndarray]) -> None:
    """``load_vad`` and the loader dispatch give the same detector; max_segment_ms is FunASR's cap."""
    vad = load_vad("fsmn", vad_dir / "model", CPU)
    assert isinstance(vad, VoiceActivityDetector) and vad.kind == "fsmn"
    assert isinstance(load_model(vad_dir / "model", device=CPU), FsmnVad)
    wave = audio["audio/long_16k.wav"]
    capped = vad.segments(wave, max_segment_ms=5000)
    assert all(e - s <= 5010 for s, e in capped)  # FunASR cuts after the limit is exceeded by a frame
    assert capped == [tuple(x) for x in _case_value("long_16k.wav|ctor_max_single_segment_5000")]
    assert vad.segments(torch.from_numpy(wave), max_segment_ms=60000) == [
        tuple(x) for x in _case_value("long_16k.wav|default")
    ]


def test_load_vad_rejects_bad_requests(parity_dir: Path) -> None:
    with pytest.raises(ModelLoadError):
        load_vad("fsmn", None, CPU)
    with pytest.raises(ModelLoadError, match="not an FSMN-VAD"):
        load_vad("fsmn", parity_dir / "ct_punc" / "model", CPU)
    with pytest.raises(ModelLoadError, match="unknown VAD kind"):
        load_vad("webrtc", None, CPU)


def _case_value(case_id: str) -> list[list[int]]:
    return next(c for c in _cases() if c["id"] == case_id)["result"][0]["value"]
