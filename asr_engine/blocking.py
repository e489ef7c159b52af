"""A blocking face over the engine for scripts: no asyncio code on the caller's side.

The engine is asyncio-native (its batcher is a task on an event loop). ``BlockingEngine`` gives it a
private loop on a daemon thread, starts the batch worker there and forwards every call with
``asyncio.run_coroutine_threadsafe``. Calls from several threads therefore meet in that one loop and
are batched together exactly as concurrent ``await engine.transcribe`` calls are, each getting its own
result. Waiting for a result from the loop's own thread could never finish, so it raises instead.

    with BlockingEngine.load(device="cpu") as engine:
        print(engine.transcribe(Path("call.wav").read_bytes()).text)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from asr_engine.engine import Engine, EngineConfig
from asr_engine.types import AudioFormat, TranscribeOptions, Transcript

__all__ = ["BlockingEngine"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class BlockingEngine:
    """Owns an ``Engine`` and the event loop thread it runs on; ``close()`` (or ``with``) stops both.

    Thread-safe: any number of threads may call ``transcribe`` or ``submit`` at once. The engine must
    not have been started on another loop (its batcher belongs to the loop that started it).
    """

    def __init__(self, engine: Engine, *, start_timeout_s: float | None = None) -> None:
        self._engine = engine
        self._loop = asyncio.new_event_loop()
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run_loop, name="asr-blocking-loop", daemon=True)
        self._thread.start()
        try:
            self._wait(self._schedule(engine.start()), start_timeout_s)
        except BaseException:
            self._stop_loop()
            raise

    @classmethod
    def load(
        cls,
        model_dir: str | Path | None = None,
        *,
        device: str = "auto",
        dtype: str | None = None,
        vad_model_dir: str | Path | None = None,
        punc_model_dir: str | Path | None = None,
        config: EngineConfig | None = None,
    ) -> BlockingEngine:
        """``Engine.load`` (same arguments), then start it on a private loop; blocking."""
        engine = Engine.load(
            model_dir,
            device=device,
            dtype=dtype,
            vad_model_dir=vad_model_dir,
            punc_model_dir=punc_model_dir,
            config=config,
        )
        return cls(engine)

    @property
    def engine(self) -> Engine:
        """The wrapped engine (its coroutines belong to this object's loop thread)."""
        return self._engine

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(
        self,
        audio: bytes | np.ndarray,
        options: TranscribeOptions = TranscribeOptions(),
        *,
        audio_format: AudioFormat = AudioFormat(),
        max_duration_ms: int | None = None,
    ) -> concurrent.futures.Future[Transcript]:
        """Start one transcription and return at once; ``.result()`` gives the transcript or raises."""
        return self._schedule(
            self._engine.transcribe(
                audio, options, audio_format=audio_format, max_duration_ms=max_duration_ms
            )
        )

    def transcribe(
        self,
        audio: bytes | np.ndarray,
        options: TranscribeOptions = TranscribeOptions(),
        *,
        audio_format: AudioFormat = AudioFormat(),
        max_duration_ms: int | None = None,
        timeout_s: float | None = None,
    ) -> Transcript:
        """``await engine.transcribe(...)`` for code without an event loop; raises what it raises.

        ``timeout_s`` gives up waiting (``TimeoutError``) and cancels the request.
        """
        self._refuse_own_loop()
        future = self.submit(audio, options, audio_format=audio_format, max_duration_ms=max_duration_ms)
        return self._wait(future, timeout_s)

    def run(self, coro: Coroutine[Any, Any, T], *, timeout_s: float | None = None) -> T:
        """Run any coroutine of the engine on its loop and wait: a stream's ``feed``/``finish``, say.

        ``session = blocking.engine.open_stream(...)`` then ``blocking.run(session.feed(chunk))``.
        """
        self._refuse_own_loop(coro)
        return self._wait(self._schedule(coro), timeout_s)

    def close(self) -> None:
        """Close the engine (pending requests fail with ``OverloadedError``) and stop the loop thread."""
        self._refuse_own_loop()
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._wait(asyncio.run_coroutine_threadsafe(self._engine.close(), self._loop), None)
        finally:
            self._stop_loop()

    def __enter__(self) -> BlockingEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if threading.current_thread() is not self._thread:
            self._thread.join()
            self._loop.close()

    def _schedule(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self._closed:
            coro.close()  # never awaited: say so quietly instead of a "never awaited" warning
            raise RuntimeError("BlockingEngine is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _refuse_own_loop(self, coro: Coroutine[Any, Any, Any] | None = None) -> None:
        if threading.current_thread() is self._thread:
            if coro is not None:
                coro.close()  # never to be awaited
            raise RuntimeError(
                "BlockingEngine called from its own event loop, where waiting would never end; "
                "in a coroutine use `await blocking.engine.transcribe(...)`, or `submit(...)` for a future"
            )

    @staticmethod
    def _wait(future: concurrent.futures.Future[T], timeout_s: float | None) -> T:
        try:
            return future.result(timeout_s)
        except BaseException:
            # A timeout or Ctrl-C while waiting: the request is not wanted any more.
            future.cancel()
            raise
