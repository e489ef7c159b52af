"""A front-end process's engine: the full ``Engine`` pipeline, with segments recognised by the engine process.

``load_remote_engine`` (blocking) creates the arena and loads what stays in the front-end: the VAD and
the punctuation step, on the CPU. ``RemoteEngine.start`` connects to the engine process, learns which
model it serves, and only then builds the ``Engine`` around a ``RemoteRecogniser``, so option checks,
``ModelInfo`` and transcripts describe the real model. The front-end never touches the GPU: no CUDA
context (and its memory) per front-end.

Punctuation by a CT-Transformer model runs here too, on the CPU: it is called once per segment, not
batched, so on the GPU it would be a stream of small kernel launches holding the engine process's GIL,
the resource this split exists to free; on the CPU it scales with the number of front-ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asr_engine.audio import set_decode_threads
from asr_engine.engine import Engine, EngineConfig, load_text_steps
from asr_engine.remote.arena import SharedArena
from asr_engine.remote.client import RemoteRecogniser
from asr_engine.types import AudioFormat, ModelInfo, TranscribeOptions, Transcript
from asr_engine.vad.base import VoiceActivityDetector

__all__ = ["RemoteEngine", "load_remote_engine"]

log = logging.getLogger(__name__)


def load_remote_engine(
    socket_path: str | Path,
    arena_path: str | Path | None,
    arena_bytes: int,
    *,
    name: str,
    vad_model_dir: str | Path | None = None,
    punc_model_dir: str | Path | None = None,
    torch_threads: int = 1,
    config: EngineConfig | None = None,
    on_lost: Callable[[], None] | None = None,
) -> RemoteEngine:
    """Blocking: the arena, the CPU VAD and punctuation; the connection is made by ``start``."""
    config = config or EngineConfig()
    vad, vad_kind, punctuator = load_text_steps(config, vad_model_dir, punc_model_dir, torch.device("cpu"))
    torch.set_num_threads(max(1, torch_threads))  # many front-ends share the cores: a few threads each
    set_decode_threads(max(2, torch_threads))  # the same share for compressed-audio decoding
    # No path: an anonymous memory file (arena.arena_directory found /dev/shm too small).
    arena = (
        SharedArena.create(Path(arena_path), arena_bytes)
        if arena_path is not None
        else SharedArena.create_anonymous(arena_bytes, name)
    )
    recogniser = RemoteRecogniser(socket_path, arena, name=name, on_lost=on_lost)
    return RemoteEngine(recogniser, vad=vad, vad_kind=vad_kind, punctuator=punctuator, config=config)


class RemoteEngine:
    """What the service needs of an ``Engine`` (transcribe, streams, models), once connected."""

    def __init__(
        self,
        recogniser: RemoteRecogniser,
        *,
        vad: VoiceActivityDetector | None,
        vad_kind: str,
        punctuator: Any,
        config: EngineConfig,
    ) -> None:
        self.recogniser = recogniser
        self._vad = vad
        self._vad_kind = vad_kind
        self._punctuator = punctuator
        self._config = config
        self._engine: Engine | None = None

    async def start(self) -> None:
        """Wait for the engine process (it listens once its model is warm), then build the pipeline."""
        if self._engine is not None:
            return
        await self.recogniser.start()
        info = self.recogniser.model_info
        assert info is not None
        engine = Engine(
            info,
            model_dir=Path(info.path),
            device=torch.device(info.device),  # reported in ModelInfo; nothing is placed on it here
            dtype=_dtype(info),
            vad=self._vad,
            vad_kind=self._vad_kind,
            punctuator=self._punctuator,
            config=self._config,
            recogniser=self.recogniser,
        )
        await engine.start()
        self._engine = engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.close()  # closes the recogniser too
        else:
            await self.recogniser.close()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("the remote engine is not started")
        return self._engine

    @property
    def models(self) -> tuple[ModelInfo, ...]:
        return self.engine.models

    async def transcribe(
        self,
        audio: bytes | np.ndarray,
        options: TranscribeOptions = TranscribeOptions(),
        *,
        audio_format: AudioFormat = AudioFormat(),
        max_duration_ms: int | None = None,
    ) -> Transcript:
        return await self.engine.transcribe(
            audio, options, audio_format=audio_format, max_duration_ms=max_duration_ms
        )

    def open_stream(
        self,
        options: TranscribeOptions = TranscribeOptions(),
        *,
        audio_format: AudioFormat = AudioFormat(),
        interim_results: bool = True,
        max_duration_ms: int | None = None,
    ) -> Any:
        return self.engine.open_stream(
            options,
            audio_format=audio_format,
            interim_results=interim_results,
            max_duration_ms=max_duration_ms,
        )


def _dtype(info: ModelInfo) -> torch.dtype:
    dtype = getattr(torch, info.dtype, None)
    return dtype if isinstance(dtype, torch.dtype) else torch.float32
