"""Helpers for the model parity tests: FunASR's expected results and our features for its audio."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asr_engine.audio import decode_audio
from asr_engine.features import Frontend
from asr_engine.models.base import FrontendConfig


def load_expected(family_dir: Path) -> dict[str, Any]:
    """The family's ``expected/expected.json``."""
    data: dict[str, Any] = json.loads((family_dir / "expected" / "expected.json").read_text(encoding="utf-8"))
    return data


def file_samples(path: Path) -> np.ndarray:
    """16 kHz mono float32 samples of an audio file, as the engine decodes them."""
    return decode_audio(path.read_bytes()).samples


def features(
    config: FrontendConfig, waves: list[np.ndarray], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded model input (B, T, 560) and lengths for several waveforms."""
    frontend = Frontend(config, device)
    return frontend([torch.from_numpy(np.ascontiguousarray(w)) for w in waves])
