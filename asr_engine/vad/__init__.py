"""Voice activity detection for the engine: silero (bundled with the silero-vad package) or FunASR's FSMN.

Every detector offers ``segments(samples, max_segment_ms=...)`` -> ``[(start_ms, end_ms), ...]`` for a
whole 16 kHz recording and ``stream()`` for live audio (``feed``/``finish`` -> ``VadEvent``s).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from asr_engine.errors import ModelLoadError
from asr_engine.vad.base import DEFAULT_MAX_SEGMENT_MS, VadEvent, VadStream, VoiceActivityDetector
from asr_engine.vad.fsmn import FsmnVad, FsmnVadStream
from asr_engine.vad.fsmn_options import FsmnRunSettings
from asr_engine.vad.silero import SileroVad, SileroVadStream
from asr_engine.vad.silero_segments import SileroSettings

__all__ = [
    "DEFAULT_MAX_SEGMENT_MS",
    "FsmnRunSettings",
    "FsmnVad",
    "FsmnVadStream",
    "SileroSettings",
    "SileroVad",
    "SileroVadStream",
    "VadEvent",
    "VadStream",
    "VoiceActivityDetector",
    "load_vad",
]

log = logging.getLogger(__name__)


def load_vad(
    kind: str = "silero", model_dir: Path | None = None, device: torch.device | str = "cpu"
) -> VoiceActivityDetector:
    """Load a detector: ``"silero"`` (the silero-vad package's model) or ``"fsmn"`` (a FunASR directory).

    Both run in float32 on ``device``; FSMN uses FunASR's default (dynamic end-silence) settings.
    """
    device = torch.device(device)
    if kind == "silero":
        if model_dir is not None:
            log.warning(
                "silero VAD ignores model_dir %s (it uses the silero-vad package's weights)", model_dir
            )
        return SileroVad.load(device=device)
    if kind == "fsmn":
        if model_dir is None:
            raise ModelLoadError("the fsmn VAD needs a FunASR model directory")
        from asr_engine.models.loader import read_model_dir

        directory = read_model_dir(model_dir)
        if directory.model_type != "FsmnVADStreaming":
            raise ModelLoadError(f"{directory.path}: model type {directory.model_type!r} is not an FSMN-VAD")
        return FsmnVad.from_model_dir(directory, device=device)
    raise ModelLoadError(f"unknown VAD kind {kind!r}; use 'silero' or 'fsmn'")
