"""Owns the speech engine for the server: loads it in the background and reports readiness.

The server answers health checks (NOT_SERVING) while the model loads; recognition calls made before
it is ready get UNAVAILABLE. ``asr_engine.engine`` (and so torch) is imported only when loading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import grpc

from asr_engine.types import AudioFormat, ModelInfo, TranscribeOptions, Transcript
from service.config import Settings
from service.errors import ApiError

__all__ = ["EngineHost", "EngineLike", "StreamLike", "engine_tuning", "load_engine", "load_frontend_engine"]

log = logging.getLogger(__name__)


class StreamLike(Protocol):
    async def feed(self, chunk: bytes) -> list[Any]: ...

    async def finish(self) -> tuple[list[Any], Transcript]: ...


class EngineLike(Protocol):
    """What the service needs of ``asr_engine.engine.Engine``."""

    @property
    def models(self) -> tuple[ModelInfo, ...]: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def transcribe(
        self,
        audio: bytes,
        options: TranscribeOptions,
        *,
        audio_format: AudioFormat = ...,
        max_duration_ms: int | None = None,
    ) -> Transcript: ...

    def open_stream(
        self,
        options: TranscribeOptions,
        *,
        audio_format: AudioFormat,
        interim_results: bool = True,
        max_duration_ms: int | None = None,
    ) -> StreamLike: ...


def load_engine(
    model_dir: Path | None,
    *,
    device: str,
    dtype: str | None,
    vad_model_dir: Path | None,
    punc_model_dir: Path | None,
    **tuning: Any,
) -> EngineLike:
    """Blocking load of the real engine (imports torch); ``tuning`` as ``engine_tuning`` gives it."""
    from asr_engine.engine import Engine, EngineConfig

    engine: EngineLike = Engine.load(
        model_dir,
        device=device,
        dtype=dtype,
        vad_model_dir=vad_model_dir,
        punc_model_dir=punc_model_dir,
        config=EngineConfig.tuned(**tuning),
    )
    return engine


def engine_tuning(settings: Settings) -> dict[str, Any]:
    """The settings that shape the engine's batching and device work, as the loaders' keywords.

    One place for both the single-process server and the multi-process engine process.
    """
    return {
        "cuda_graphs": settings.cuda_graphs,
        "graph_max_batch": settings.cuda_graph_max_batch,
        "graph_extra_batch": settings.cuda_graph_extra_batch,
        "graph_split": settings.cuda_graph_split,
        "graph_token_step": settings.cuda_graph_token_step,
        "graph_fused": settings.cuda_graph_fused,
        "graph_token_share": settings.cuda_graph_token_share,
        "graph_cost_aware_chunks": settings.cuda_graph_cost_aware_chunks,
        "pipeline": settings.device_pipeline,
        "pipeline_depth": settings.device_pipeline_depth,
        "expandable_segments": settings.cuda_expandable_segments,
        "gil_switch_interval_ms": settings.gil_switch_interval_ms,
        "fused_kernels": settings.fused_kernels,
        "fused_add_norm": settings.fused_add_norm,
        "device_workers": settings.device_workers,
        "max_batch_s": settings.max_batch_s,
        "batch_wait_ms": settings.batch_wait_ms,
        "batches_ahead": settings.batches_ahead,
    }


def load_frontend_engine(
    socket_path: Path,
    arena_path: Path | None,
    arena_bytes: int,
    *,
    name: str,
    vad_model_dir: Path | None,
    punc_model_dir: Path | None,
    torch_threads: int,
    on_lost: Callable[[], None],
) -> EngineLike:
    """Blocking: a front-end process's engine, whose model runs in the engine process at ``socket_path``.

    VAD and punctuation load here, on the CPU; ``start`` waits until the engine process is warm.
    ``on_lost`` is called when the engine process goes away.
    """
    from asr_engine.remote.frontend import load_remote_engine

    engine: EngineLike = load_remote_engine(
        socket_path,
        arena_path,
        arena_bytes,
        name=name,
        vad_model_dir=vad_model_dir,
        punc_model_dir=punc_model_dir,
        torch_threads=torch_threads,
        on_lost=on_lost,
    )
    return engine


class EngineHost:
    def __init__(self, engine: EngineLike | None = None, *, owned: bool = False) -> None:
        self._engine = engine
        self._owned = owned
        self._ready = asyncio.Event()
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, loader: Callable[[], EngineLike] | None, on_ready: Callable[[], Awaitable[None]]) -> None:
        """Load (in a thread, when ``loader`` is given) and warm up in the background; then ``on_ready``."""
        self._task = asyncio.create_task(self._run(loader, on_ready), name="lingting-engine-load")

    async def _run(
        self, loader: Callable[[], EngineLike] | None, on_ready: Callable[[], Awaitable[None]]
    ) -> None:
        try:
            if self._engine is None:
                if loader is None:
                    raise RuntimeError("no engine and no loader")
                self._engine = await asyncio.to_thread(loader)
                self._owned = True
            await self._engine.start()
        except Exception as exc:
            self._failure = exc
            log.error("the speech engine failed to load: %s", exc, exc_info=exc)
            return
        self._ready.set()
        log.info("speech engine ready: %s", ", ".join(m.name for m in self._engine.models))
        await on_ready()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def failure(self) -> BaseException | None:
        return self._failure

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def require(self) -> EngineLike:
        """The ready engine, or UNAVAILABLE while it loads (or after it failed to)."""
        if self._engine is not None and self._ready.is_set():
            return self._engine
        if self._failure is not None:
            raise ApiError(
                grpc.StatusCode.UNAVAILABLE,
                "the speech model failed to load; see the server log",
                reason="MODEL_UNAVAILABLE",
            )
        raise ApiError(
            grpc.StatusCode.UNAVAILABLE,
            "the speech model is still loading; retry shortly",
            reason="MODEL_LOADING",
            retry_after_s=2.0,
        )

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._engine is not None and self._owned:
            await self._engine.close()
