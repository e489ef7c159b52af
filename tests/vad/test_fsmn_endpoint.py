"""FSMN-VAD end-point logic against FunASR's own results, fed with FunASR's stored frame scores.

This isolates the state machine, the 60 s piece schedule and the dynamic end-silence rule from the
network and the frontend (tested elsewhere): every long-file case must match to the millisecond.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import yaml

from asr_engine.vad.fsmn_endpoint import FsmnEndpointer, speech_flags
from asr_engine.vad.fsmn_options import FsmnRunSettings, FsmnVadOptions, parse_fsmn_vad_options
from asr_engine.vad.fsmn_session import FsmnSession, decided_frames, fbank_frames, offline_segments


@pytest.fixture(scope="module")
def vad_dir(parity_dir: Path) -> Path:
    return parity_dir / "fsmn_vad"


@pytest.fixture(scope="module")
def expected(vad_dir: Path) -> dict[str, Any]:
    return json.loads((vad_dir / "expected" / "expected.json").read_text())


@pytest.fixture(scope="module")
def model_conf(vad_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((vad_dir / "model" / "config.yaml").read_text())["model_conf"]


@pytest.fixture(scope="module")
def long_probs(vad_dir: Path) -> tuple[np.ndarray, int]:
    sil = np.load(vad_dir / "expected" / "tensors" / "long_16k_sil_prob.npy")
    return sil, sf.info(str(vad_dir / "audio" / "long_16k.wav")).frames


def _case(expected: dict[str, Any], case_id: str) -> dict[str, Any]:
    return next(c for c in expected["cases"] if c["id"] == case_id)


def test_frame_count_matches_stored_scores(long_probs: tuple[np.ndarray, int]) -> None:
    sil, n_samples = long_probs
    assert fbank_frames(n_samples) == sil.size == 6567
    assert decided_frames(960000, final=False) == 5996  # the README's 60 s boundary


@pytest.mark.parametrize(
    "case_id",
    [
        "long_16k.wav|default",
        "long_16k.wav|fixed_800",
        "long_16k.wav|fixed_500_snt0.8",
        "long_16k.wav|ctor_max_single_segment_5000",
        "long_16k.wav|ctor_max_single_segment_5000+fixed_800",
        "long_16k.wav|generate_max_single_segment_5000 (ignored)",
    ],
)
def test_offline_cases_match_funasr(
    case_id: str, expected: dict[str, Any], model_conf: dict[str, Any], long_probs: tuple[np.ndarray, int]
) -> None:
    case = _case(expected, case_id)
    sil, n_samples = long_probs
    options = parse_fsmn_vad_options(model_conf, **case["automodel_kwargs"])
    kwargs = case["generate_kwargs"]
    settings = FsmnRunSettings(
        max_end_silence_ms=kwargs.get("max_end_silence_time"),
        speech_noise_thres=kwargs.get("speech_noise_thres"),
    )
    got = [list(seg) for seg in offline_segments(sil, n_samples, options, settings)]
    assert got == case["result"][0]["value"]


@pytest.mark.parametrize("chunk_ms", [600, 200])
def test_streaming_events_match_funasr(
    chunk_ms: int, expected: dict[str, Any], model_conf: dict[str, Any], long_probs: tuple[np.ndarray, int]
) -> None:
    """FunASR's streaming loop: one call per chunk_ms of audio, is_final on the last call only."""
    sil, n_samples = long_probs
    session = FsmnSession(parse_fsmn_vad_options(model_conf), FsmnRunSettings(), streaming=True)
    stride = chunk_ms * 16
    calls = -(-n_samples // stride)
    decided = 0
    results = []
    for index in range(calls):
        final = index == calls - 1
        fed = min(n_samples, (index + 1) * stride)
        upto = decided_frames(fed, final=final)
        session.begin_piece(chunk_ms)
        events = session.run_piece(sil[decided:upto], final=final)
        decided = upto
        if events:
            results.append({"chunk_index": index, "value": [list(e) for e in events]})
    assert results == _case(expected, f"long_16k.wav|streaming_{chunk_ms}ms")["result"]


def test_dynamic_schedule_is_what_changes_the_default(
    model_conf: dict[str, Any], long_probs: tuple[np.ndarray, int]
) -> None:
    """Turning the schedule off with the config's own 800 ms reproduces the fixed_800 case."""
    sil, n_samples = long_probs
    options = parse_fsmn_vad_options(model_conf)
    fixed = offline_segments(sil, n_samples, options, FsmnRunSettings(dynamic_silence=False))
    assert len(fixed) == 12
    dynamic = offline_segments(sil, n_samples, options, FsmnRunSettings())
    assert len(dynamic) == 6


def test_all_silence_gives_nothing_and_all_speech_one_segment() -> None:
    options = FsmnVadOptions()
    quiet = FsmnEndpointer(options, end_silence_ms=650, max_single_segment_ms=60000)
    quiet.advance(np.zeros(500, dtype=bool), final=True)
    assert quiet.segments == []
    loud = FsmnEndpointer(options, end_silence_ms=650, max_single_segment_ms=60000)
    loud.advance(np.ones(500, dtype=bool), final=True)
    assert [(s.start_ms, s.end_ms) for s in loud.segments] == [(0, 5000)]


def test_speech_flags_threshold() -> None:
    options = FsmnVadOptions()
    probs = np.array([0.0, 0.19, 0.21, 0.5, 1.0])
    assert speech_flags(probs, options=options, speech_noise_thres=0.6).tolist() == [
        True, True, False, False, False,
    ]  # fmt: skip
