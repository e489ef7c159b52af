"""The engine's face: load a model once, then ``await engine.transcribe(audio, options)`` per request.

One ``Engine`` owns one ASR model on one device, a VAD, a punctuation step and the batch scheduler that
every request and stream shares. Request options never touch the shared objects. An engine built with a
``SegmentRecogniser`` instead sends its cut segments elsewhere (``asr_engine.remote``: a model in another
process) and keeps only decoding, VAD, post-processing and assembly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asr_engine import postprocess
from asr_engine.audio import decode_audio, decode_audio_async
from asr_engine.cuda_graphs import GraphSettings, make_graphs
from asr_engine.cuda_memory import prefer_expandable_segments, reserved_by_pool
from asr_engine.cuda_streams import role_stream
from asr_engine.errors import InvalidOptionsError, ModelLoadError
from asr_engine.features import Frontend
from asr_engine.host_memory import HostRegistry
from asr_engine.models.base import AsrModel, DecodeRequest, Hypothesis
from asr_engine.models.loader import load_model
from asr_engine.recogniser import ModelFacts, SegmentRecogniser
from asr_engine.scheduler import BatchScheduler, SchedulerConfig
from asr_engine.timing import StageClock
from asr_engine.types import AudioFormat, ModelInfo, Segment, TranscribeOptions, Transcript
from asr_engine.vad.base import VoiceActivityDetector

__all__ = [
    "BUNDLED_DIR",
    "Engine",
    "EngineConfig",
    "default_model_dir",
    "load_text_steps",
    "resolve_device",
]

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
SAMPLE_RATE = 16000


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    """Load-time settings of an engine (request-time choices live in ``TranscribeOptions``)."""

    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    vad: str = "silero"  # "silero", "fsmn" (needs vad_model_dir) or "none"
    max_segment_ms: int = 20_000
    # Audio up to this long is decoded as one segment unless the request asks for VAD.
    single_segment_max_ms: int = 30_000
    # Without VAD, audio up to this long is one segment (FunASR's no-VAD behaviour); longer is windowed.
    unsegmented_max_ms: int = 120_000
    interim_interval_ms: int = 600
    # Padded feature length is rounded up to this many frames (16 LFR frames = 0.96 s) so shapes repeat.
    shape_bucket_frames: int = 16
    postprocess_threads: int = max(2, min(8, os.cpu_count() or 2))
    # cuDNN builds an execution plan per input shape; with shape buckets the plans are reused, and on an
    # H100 it then beat PyTorch's own kernels both idle and at batch 64 (bench/results/*-perf2).
    cudnn: bool = True
    # Replay batches from CUDA graphs over (batch, time) shape buckets (Paraformer on CUDA only; a no-op
    # elsewhere). Removes the per-kernel launch cost that bounds idle latency (H100: 36 -> 8.5 ms p50,
    # bench/results/2026-11-21-h100-model2); see cuda_graphs.py.
    cuda_graphs: bool = True
    graphs: GraphSettings = field(default_factory=GraphSettings)
    # Batch workers for the one device, all fed by the one scheduler queue. With N > 1 each worker is its
    # own thread and, on CUDA, its own stream, so one launches a batch's kernels while another waits on a
    # host sync (token counts, results); CUDA graphs are shared under a lock (cuda_graphs.py). On a CPU the
    # workers are plain threads. Costs up to N batches' activations of GPU memory at once.
    device_workers: int = 1
    # Fused Triton kernels where they apply (the SAN-M FSMN block, CUDA half precision, triton installed);
    # a process-wide switch (models/fsmn_triton.py), set when an engine is made. On an H100 a fused graph
    # forward (batch 16, bf16) took 6.9 instead of 9.9 ms: the native block's transposed copies, generic
    # depthwise kernel and strided adds were ~38 % of it (bench/results/2026-11-22-h100-s5-fused). Without
    # triton, on a CPU or in float32 the native ops run whatever this says.
    fused_kernels: bool = True
    # The fused residual-add + LayerNorm Triton kernel (models/norm_triton.py; same conditions as above), a
    # process-wide switch set when an engine is made. Through gRPC on an H100 it gave +0.7, +2.2-5.1 and
    # +9.1 % in three calls (bench/results/2026-11-22-h100-s6-kernels, -s7-levels, -s7-memory); its half-
    # precision norms round once in float32, so a near-tie token may differ from the native bf16 ops'.
    fused_add_norm: bool = True
    # On CUDA, overlap a device worker's host work with the GPU: features and the audio upload run on a
    # stream of the worker's own, and a batch decoded through fused CUDA graphs is handed to a results
    # thread (wait for its copies, build the hypotheses) while the worker takes the next batch; at most
    # ``pipeline_depth`` batches per worker are in flight. Why: with one worker the GPU idled during
    # features, upload and hypotheses (24 % of the device thread under load,
    # bench/results/2026-11-22-h200-steady). False: each batch finishes on its device thread before the
    # next starts (the behaviour before).
    pipeline: bool = True
    # Batches a pipelined worker may have queued on the device before it waits for the oldest. Fewer lets
    # the queue grow while the GPU works, so batches come larger and sort into better-filled graph chunks
    # (the scheduler's fill was 73 % at ~10-14 items per batch on an H100, bench/PERF_NOTES.md session 5);
    # more overlaps more host work. For A/B runs: 2 is what every measurement so far ran with.
    pipeline_depth: int = 2
    # On CUDA, ask the caching allocator for expandable segments unless PYTORCH_CUDA_ALLOC_CONF is set;
    # applied only if the engine is the first CUDA user in its process. Less memory under load (3.5 vs 5.1 GB
    # on an H200; 3.6 vs 3.9 GB on an H100 in session 5), opt-in until a gRPC run of today's code confirms
    # them (the capture failure once seen with them most likely came from shared streams; cuda_memory.py).
    expandable_segments: bool = False
    # Python's GIL switch interval for the whole process, in ms, set when the engine starts (0: leave
    # Python's 5 ms). Why: under load the device thread's feature ops waited mostly for the GIL (native
    # frames of the H200 profile, bench/results/2026-11-22-h200-mem2) while the results thread built
    # hypotheses in pure Python; each torch op gives the GIL up and may wait up to the interval to get it
    # back. A shorter interval bounds that wait at some switching cost. Unmeasured on a GPU yet: off.
    gil_switch_interval_ms: float = 0.0

    @classmethod
    def tuned(
        cls,
        *,
        max_batch_s: float = SchedulerConfig.max_batch_samples / SAMPLE_RATE,
        batch_wait_ms: float = SchedulerConfig.max_wait_ms,
        graph_max_batch: int = max(GraphSettings.batch_buckets),
        graph_extra_batch: int = 0,
        graph_split: bool = GraphSettings.split_large_batches,
        graph_token_step: int = GraphSettings.token_step,
        graph_fused: bool = GraphSettings.fused,
        graph_token_share: float = GraphSettings.token_share,
        graph_cost_aware_chunks: bool = GraphSettings.cost_aware_chunks,
        batches_ahead: int = SchedulerConfig.batches_ahead,
        **fields: Any,
    ) -> EngineConfig:
        """From flat settings (the service's): batcher limits in seconds and ms, the largest graphed batch
        (buckets are the powers of two up to it, plus ``graph_extra_batch`` when not 0), whether larger
        ones replay in chunks, the decoder graphs' token step, fused or two-graph replays, the fused
        graphs' token cap per frame and whether they cut batches by measured replay cost, other fields by
        name."""
        powers = {1 << i for i in range(max(1, graph_max_batch).bit_length())}
        buckets = tuple(sorted(powers | ({graph_extra_batch} if graph_extra_batch > 0 else set())))
        graphs = GraphSettings(
            batch_buckets=buckets,
            split_large_batches=graph_split,
            token_step=graph_token_step,
            fused=graph_fused,
            token_share=graph_token_share,
            cost_aware_chunks=graph_cost_aware_chunks,
        )
        scheduler = SchedulerConfig.for_seconds(max_batch_s, batch_wait_ms, batches_ahead)
        return cls(scheduler=scheduler, graphs=graphs, **fields)


def resolve_device(device: str) -> torch.device:
    """Map "auto" | "cpu" | "cuda" | "cuda:N" to a device, falling back to the CPU when CUDA is absent."""
    if device in ("", "auto"):
        if torch.cuda.is_available():
            log.info("device auto -> cuda (%s)", torch.cuda.get_device_name(0))
            return torch.device("cuda")
        log.info("device auto -> cpu (no CUDA device visible to torch %s)", torch.__version__)
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise InvalidOptionsError("device", f"unknown device {device!r}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        log.warning("CUDA requested but not available; falling back to the CPU")
        return torch.device("cpu")
    return resolved


def _resolve_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    names = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if dtype is None or dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in names:
        raise InvalidOptionsError("dtype", f"unknown dtype {dtype!r}; use one of {sorted(names)}")
    return names[dtype]


def load_text_steps(
    config: EngineConfig,
    vad_model_dir: str | Path | None,
    punc_model_dir: str | Path | None,
    device: torch.device,
) -> tuple[VoiceActivityDetector | None, str, postprocess.Punctuation]:
    """The VAD (None when off), its kind, and the punctuation step: what a front-end needs besides a model."""
    vad_kind = "none" if config.vad == "none" else ("fsmn" if vad_model_dir is not None else config.vad)
    vad = None
    if vad_kind != "none":
        from asr_engine.vad import load_vad

        vad = load_vad(vad_kind, Path(vad_model_dir) if vad_model_dir else None, device)
    punctuator = postprocess.load_punctuator(Path(punc_model_dir) if punc_model_dir else None, device)
    return vad, vad_kind, punctuator


def default_model_dir() -> Path:
    """The bundled model directory shipped inside the package."""
    if BUNDLED_DIR.is_dir():
        for candidate in sorted(BUNDLED_DIR.iterdir()):
            if (candidate / "config.yaml").is_file():
                return candidate
    raise ModelLoadError(f"no bundled model found under {BUNDLED_DIR}; pass a model directory")


@dataclass(frozen=True)
class _SegmentJob:
    samples: np.ndarray
    request: DecodeRequest


class _BatchResults:
    """A batch's hypotheses, which a results thread may still be building, awaited by all its segments.

    Why one object per batch: each segment used to wrap the batch's thread future for itself, so a
    finished batch of 15 segments woke the event loop 15 times from the results thread (a self-pipe
    write each: 9 % of that thread on an H100 under load, bench/results/2026-11-22-h100-s6-spy). Now the
    first segment to wait wraps it once and the others share that wrapper: one wake-up per batch.
    Only the event loop's thread calls ``results``, so the shared wrapper needs no lock.
    """

    def __init__(self, built: Future[list[Hypothesis]]) -> None:
        self._built = built
        self._waiter: asyncio.Future[list[Hypothesis]] | None = None

    @classmethod
    def ready(cls, hypotheses: Sequence[Hypothesis]) -> _BatchResults:
        done: Future[list[Hypothesis]] = Future()
        done.set_result(list(hypotheses))
        return cls(done)

    async def results(self) -> list[Hypothesis]:
        if self._built.done():
            return self._built.result()
        if self._waiter is None:
            self._waiter = asyncio.wrap_future(self._built)
        # Shielded: a caller that gives up must not cancel the batch's other segments' results.
        return await asyncio.shield(self._waiter)


@dataclass(frozen=True)
class _Delivery:
    """One item's place in its batch's results."""

    batch: _BatchResults
    index: int

    async def hypothesis(self) -> Hypothesis:
        return (await self.batch.results())[self.index]


def _deliver_now(hypotheses: Sequence[Hypothesis]) -> list[_Delivery]:
    done = _BatchResults.ready(hypotheses)
    return [_Delivery(done, i) for i in range(len(hypotheses))]


class Engine:
    """Speech recognition on one device, shared by all concurrent requests and streams."""

    def __init__(
        self,
        model: ModelFacts,
        *,
        model_dir: Path,
        device: torch.device,
        dtype: torch.dtype,
        vad: VoiceActivityDetector | None,
        vad_kind: str,
        punctuator: Any,
        config: EngineConfig,
        recogniser: SegmentRecogniser | None = None,
    ) -> None:
        """``model`` is the loaded ``AsrModel``; with a ``recogniser`` it may be the facts of a remote one."""
        if recogniser is None and not isinstance(model, AsrModel):
            raise TypeError("an engine without a recogniser needs a loaded AsrModel")
        self._model = model
        self._asr = model if isinstance(model, AsrModel) else None  # None: the model runs elsewhere
        self._model_dir = model_dir
        self._device = device
        self._dtype = dtype
        self._vad = vad
        self._vad_kind = vad_kind
        self._punctuator = punctuator
        self._config = config
        self._frontend = Frontend(self._asr.frontend, device) if self._asr is not None else None
        self._host_memory = HostRegistry()  # buffers batches upload from without staging (page_lock)
        if device.type == "cuda":  # before any graph records the FSMN and norm paths
            from asr_engine.models import fsmn_triton, norm_triton

            fsmn_triton.set_fused_fsmn(config.fused_kernels)
            norm_triton.set_fused_add_norm(config.fused_add_norm)
        self._graphs = (
            make_graphs(self._asr, device, config.graphs)
            if config.cuda_graphs and self._asr is not None
            else None
        )
        self._worker_state = threading.local()  # each device thread's CUDA stream (None: the default one)
        self._scheduler: BatchScheduler[_SegmentJob, _Delivery] = BatchScheduler(
            self._run_batch,
            config.scheduler,
            is_oom=_is_oom,
            name="asr",
            workers=config.device_workers,
            worker_setup=self._setup_worker,
        )
        self._recogniser: SegmentRecogniser = recogniser or _BatcherRecogniser(self._scheduler)
        self._post_pool = ThreadPoolExecutor(config.postprocess_threads, thread_name_prefix="asr-post")
        # Pipelined batches' results (engine.pipeline): one thread per device worker waits for the copies.
        self._results_pool = ThreadPoolExecutor(config.device_workers, thread_name_prefix="asr-results")
        # Device threads' wall time per batch stage, for the stop log (device_summary).
        self.stage_clock = StageClock(("features", "launch", "sync_wait"))
        self._started = False

    # ------------------------------------------------------------------ loading
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
    ) -> Engine:
        """Load a FunASR-format model directory (None = the bundled model); blocking."""
        config = config or EngineConfig()
        resolved_device = resolve_device(device)
        if resolved_device.type == "cuda" and config.expandable_segments:
            prefer_expandable_segments()
        torch_dtype = _resolve_dtype(dtype, resolved_device)
        path = Path(model_dir) if model_dir is not None else default_model_dir()
        started = time.perf_counter()
        model = load_model(path, device=resolved_device, dtype=torch_dtype)
        if not isinstance(model, AsrModel):
            raise ModelLoadError(f"{path} holds a {type(model).__name__}, not a speech recognition model")
        vad, vad_kind, punctuator = load_text_steps(config, vad_model_dir, punc_model_dir, resolved_device)
        log.info(
            "model loaded path=%s family=%s device=%s dtype=%s vad=%s load_s=%.2f",
            path,
            model.family,
            resolved_device,
            torch_dtype,
            vad_kind,
            time.perf_counter() - started,
        )
        return cls(
            model,
            model_dir=path,
            device=resolved_device,
            dtype=torch_dtype,
            vad=vad,
            vad_kind=vad_kind,
            punctuator=punctuator,
            config=config,
        )

    async def start(self) -> None:
        """Start the batch worker and warm the model up (or connect to the remote recogniser)."""
        if self._started:
            return
        if self._config.gil_switch_interval_ms > 0:
            sys.setswitchinterval(self._config.gil_switch_interval_ms / 1000)
            log.info("GIL switch interval %.2f ms", self._config.gil_switch_interval_ms)
        await self._recogniser.start()
        self._started = True

    async def close(self) -> None:
        await self._recogniser.close()
        self._post_pool.shutdown(wait=False)
        self._results_pool.shutdown(wait=False)
        if self._started and self._asr is not None:
            log.info("engine stopped; device: %s", self.device_summary())
        self._started = False
        if self._host_memory.registered:
            torch.cuda.synchronize(self._device)  # no upload from a registered buffer is still running
            self._host_memory.close()

    def page_lock(self, buffer: np.ndarray) -> bool:
        """Register a long-lived host buffer that segments will lie in (a front-end's shared arena) with
        CUDA, so batches upload from it directly (``host_memory``); False on a CPU or where CUDA refuses.
        The buffer must outlive the engine; it stays registered until ``close``."""
        if self._device.type != "cuda":
            return False
        return self._host_memory.register(buffer)

    def device_summary(self) -> str:
        """Peak CUDA memory and the CUDA graphs' counters, one line (logged at stop).

        Why: the memory target (4 GB) was missed with no record of where the memory went: graph captures,
        their static buffers and pool, or eager batches' activations.
        """
        parts = []
        if self._device.type == "cuda":
            parts.append(
                f"cuda max_allocated_mib={torch.cuda.max_memory_allocated(self._device) / 2**20:.0f} "
                f"max_reserved_mib={torch.cuda.max_memory_reserved(self._device) / 2**20:.0f} "
                f"reserved_now {reserved_by_pool(self._device)}"
            )
        if self._graphs is not None:
            parts.append(f"graphs {self._graphs.stats.summary()}")
        if self.stage_clock.batches:
            parts.append(f"device thread per batch {self.stage_clock.summary()}")
        return "; ".join(parts) or str(self._device)

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def vad(self) -> VoiceActivityDetector | None:
        """The loaded VAD (None when VAD is off); streams use it for endpointing."""
        return self._vad

    @property
    def config(self) -> EngineConfig:
        return self._config

    @property
    def scheduler(self) -> BatchScheduler[_SegmentJob, _Delivery]:
        return self._scheduler

    @property
    def models(self) -> tuple[ModelInfo, ...]:
        model = self._model
        return (
            ModelInfo(
                name=self._model_dir.name,
                family=model.family,
                path=str(self._model_dir),
                languages=tuple(model.languages),
                hotword_mode=model.hotword_mode,
                word_timestamps=True,
                punctuation=True,
                itn=True,
                rich_tags=model.rich_tags,
                vad=self._vad_kind,
                device=str(self._device),
                dtype=str(self._dtype).removeprefix("torch."),
                extra={"punctuation": self._punctuator.kind},
            ),
        )

    # ------------------------------------------------------------------ requests
    async def transcribe(
        self,
        audio: bytes | np.ndarray,
        options: TranscribeOptions = TranscribeOptions(),
        *,
        audio_format: AudioFormat = AudioFormat(),
        max_duration_ms: int | None = None,
    ) -> Transcript:
        """Decode, segment, recognise and post-process one recording."""
        started = time.perf_counter()
        self._check_options(options)
        if isinstance(audio, np.ndarray):
            samples = np.ascontiguousarray(audio, dtype=np.float32)
        elif _is_small_16k_wav(audio):
            # Nothing to decode but a header and a sample conversion: cheaper here than a thread hop.
            samples = decode_audio(audio, audio_format, max_duration_ms=max_duration_ms).samples
        else:
            decoded = await decode_audio_async(audio, audio_format, max_duration_ms=max_duration_ms)
            samples = decoded.samples
        return await self.transcribe_samples(samples, options, started=started)

    async def transcribe_samples(
        self,
        samples: np.ndarray,
        options: TranscribeOptions,
        *,
        started: float | None = None,
        warnings: tuple[str, ...] = (),
        offset_ms: int = 0,
    ) -> Transcript:
        """Recognise 16 kHz mono float32 samples (already decoded)."""
        started = time.perf_counter() if started is None else started
        if not self._started:
            await self.start()
        spans = await self._segment(samples, options)
        hypotheses = await self._recognise(samples, spans, options)
        segments = await self._postprocess(hypotheses, spans, options, offset_ms=offset_ms)
        return self.assemble(segments, samples.size, options, started, warnings)

    def open_stream(
        self,
        options: TranscribeOptions = TranscribeOptions(),
        *,
        audio_format: AudioFormat = AudioFormat(),
        interim_results: bool = True,
        max_duration_ms: int | None = None,
    ) -> Any:
        """A live or upload stream: feed chunks, get interim and final segments."""
        from asr_engine.streaming import StreamingSession

        self._check_options(options)
        return StreamingSession(
            self,
            options,
            audio_format=audio_format,
            interim_results=interim_results,
            max_duration_ms=max_duration_ms,
        )

    # ------------------------------------------------------------------ internals
    def _check_options(self, options: TranscribeOptions) -> None:
        language = options.language
        if (
            language not in (None, "", "auto")
            and self._model.languages
            and (language not in self._model.languages)
        ):
            raise InvalidOptionsError(
                "language", f"{language!r} is not supported by this model; use one of {self._model.languages}"
            )
        for hotword in options.hotwords:
            if not hotword.phrase.strip():
                raise InvalidOptionsError("hotwords", "a hotword phrase is empty")
        if options.hotwords and self._model.hotword_mode == "none":
            log.debug("model %s ignores hotwords", self._model.family)

    def decode_request(self, options: TranscribeOptions) -> DecodeRequest:
        language = None if options.language in (None, "", "auto") else options.language
        return DecodeRequest(
            language=language,
            itn=False,
            timestamps=options.word_timestamps,
            hotwords=options.hotwords,
        )

    async def _segment(self, samples: np.ndarray, options: TranscribeOptions) -> list[tuple[int, int]]:
        """Speech spans in samples; the whole recording when VAD is off or the audio is short."""
        duration_ms = samples.size * 1000 // SAMPLE_RATE
        use_vad = options.vad
        if use_vad is None:
            use_vad = duration_ms > self._config.single_segment_max_ms
        vad = self._vad
        if samples.size == 0:
            return []
        if not use_vad or vad is None:
            if duration_ms <= self._config.unsegmented_max_ms:
                return [(0, samples.size)]
            # Too long for one segment and no VAD: fixed windows keep memory bounded.
            step = self._config.max_segment_ms * 16
            return [(i, min(i + step, samples.size)) for i in range(0, samples.size, step)]
        spans_ms = await asyncio.get_running_loop().run_in_executor(
            self._post_pool, lambda: vad.segments(samples, max_segment_ms=self._config.max_segment_ms)
        )
        spans = []
        for start_ms, end_ms in spans_ms:
            start, end = start_ms * 16, min(end_ms * 16, samples.size)
            if end > start:
                spans.append((start, end))
        return spans

    async def _recognise(
        self, samples: np.ndarray, spans: Sequence[tuple[int, int]], options: TranscribeOptions
    ) -> list[Hypothesis]:
        request = self.decode_request(options)
        futures = [self._recogniser.recognise(samples[start:end], request) for start, end in spans]
        return list(await asyncio.gather(*futures))

    async def recognise_segment(self, samples: np.ndarray, options: TranscribeOptions) -> Hypothesis:
        """One already-cut segment through the shared batcher (used by streams)."""
        if not self._started:
            await self.start()
        return await self._recogniser.recognise(samples, self.decode_request(options))

    def submit(self, samples: np.ndarray, request: DecodeRequest) -> Awaitable[Hypothesis]:
        """One cut segment with its decoding choices made (the engine process serves front-ends so)."""
        return self._recogniser.recognise(samples, request)

    async def _postprocess(
        self,
        hypotheses: Sequence[Hypothesis],
        spans: Sequence[tuple[int, int]],
        options: TranscribeOptions,
        *,
        offset_ms: int = 0,
    ) -> list[Segment]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._post_pool,
            lambda: [
                postprocess.make_segment(
                    hyp,
                    start * 1000 // SAMPLE_RATE + offset_ms,
                    end * 1000 // SAMPLE_RATE + offset_ms,
                    options,
                    self._punctuator,
                )
                for hyp, (start, end) in zip(hypotheses, spans, strict=True)
            ],
        )

    def postprocess_segment(
        self, hypothesis: Hypothesis, start_ms: int, end_ms: int, options: TranscribeOptions
    ) -> Segment:
        return postprocess.make_segment(hypothesis, start_ms, end_ms, options, self._punctuator)

    def assemble(
        self,
        segments: Sequence[Segment],
        n_samples: int,
        options: TranscribeOptions,
        started: float,
        warnings: tuple[str, ...],
    ) -> Transcript:
        """The whole recording's transcript from its finished segments (also used by streams)."""
        kept = [s for s in segments if s.text or s.text_raw]
        languages = [s.language for s in kept if s.language]
        return Transcript(
            text=postprocess.join_texts([s.text for s in kept]),
            text_raw=postprocess.join_texts([s.text_raw for s in kept]),
            segments=tuple(kept),
            duration_ms=n_samples * 1000 // SAMPLE_RATE,
            processing_ms=(time.perf_counter() - started) * 1000.0,
            language=max(set(languages), key=languages.count) if languages else (options.language or ""),
            model=self._model_dir.name,
            applied_hotwords=options.hotwords if self._model.hotword_mode != "none" else (),
            warnings=warnings
            + (
                ("this model does not support hotwords",)
                if options.hotwords and self._model.hotword_mode == "none"
                else ()
            ),
        )

    def _setup_worker(self, index: int) -> None:
        """Runs once in each device thread. With several workers, CUDA ones get a stream each; pipelined
        CUDA workers (``EngineConfig.pipeline``) also get one for features.

        A worker's whole batch (input copy, features, model, decoding, the results' copy to the host) runs
        on its stream, so its tensors are made and freed there and the caching allocator never hands one
        worker's live memory to another. Features made on the feature stream are marked as used on the
        model's stream (``record_stream``) before the model reads them, for the same reason. Shared device
        tensors are made before any worker runs or under a host sync (weights, feature tables: ``.to()``
        from the host waits for its copy), and are only read; the one exception, the CUDA graphs' static
        buffers, is ordered by their lock (cuda_graphs.py). One worker keeps the thread's default stream
        for the model and the per-batch cuDNN switch of before.
        """
        state = self._worker_state
        state.stream = None
        state.prep = None
        state.in_flight = deque()
        if self._device.type == "cuda" and (self._config.pipeline or self._config.device_workers > 1):
            torch.cuda.synchronize(self._device)  # the load's work on the default stream is done
            if self._config.pipeline:
                state.prep = role_stream(self._device, f"features-{index}")
        if self._config.device_workers == 1:
            return
        # cudnn.flags() sets process-wide flags and restores them on exit: entered per batch from several
        # threads, one batch's exit would switch them under another. Every worker sets the same value once.
        torch.backends.cudnn.enabled = self._config.cudnn
        if self._device.type == "cuda":
            state.stream = role_stream(self._device, f"worker-{index}")
        log.info("device worker %d ready on %s", index, self._device)

    def _run_batch(self, jobs: Sequence[_SegmentJob]) -> list[_Delivery]:
        """Runs in a device thread: features for the whole batch, then the model, on the worker's stream.

        Pipelined, a batch queued through fused graphs returns before its results exist: a results thread
        waits for them and builds the hypotheses. Each stage's wall time goes to ``self.stage_clock``.
        """
        assert self._frontend is not None and self._asr is not None
        state = self._worker_state
        stream: torch.cuda.Stream | None = getattr(state, "stream", None)
        with contextlib.ExitStack() as scope:
            lap = scope.enter_context(self.stage_clock.batch())
            scope.enter_context(torch.inference_mode())
            if stream is not None:
                scope.enter_context(torch.cuda.stream(stream))
            if self._config.device_workers == 1:
                scope.enter_context(torch.backends.cudnn.flags(enabled=self._config.cudnn))
            feats, lengths, host_lengths = self._features(jobs, getattr(state, "prep", None))
            lap("features")
            requests = [job.request for job in jobs]
            if self._graphs is None:
                delivered = _deliver_now(self._asr.decode_batch(feats, lengths, requests))
                lap("launch")
                return delivered
            self._graphs.warm_up()  # the first batch (start's warm-up) captures; others wait
            lap.restart()  # the start-up's captures are not a launch's cost
            pending = self._graphs.launch(feats, lengths, requests, host_lengths)
            lap("launch")
            if getattr(state, "prep", None) is None or pending.done is None:
                delivered = _deliver_now(pending.result())
                lap("sync_wait")
                return delivered
            in_flight: deque[torch.cuda.Event] = state.in_flight
            in_flight.append(pending.done)
            while len(in_flight) > self._config.pipeline_depth:  # bounds queued work and its memory
                in_flight.popleft().synchronize()
            lap("sync_wait")
            built = _BatchResults(self._results_pool.submit(pending.result))
            return [_Delivery(built, i) for i in range(len(jobs))]

    def _features(
        self, jobs: Sequence[_SegmentJob], prep: torch.cuda.Stream | None
    ) -> tuple[torch.Tensor, torch.Tensor, list[int] | None]:
        """Padded features in the model dtype, their lengths, and the lengths on the host when cheap.

        With a feature stream (``prep``) the upload and features run there, so whatever waits for them
        waits for this batch's features only, not for the previous batch's model work on the worker's
        stream, which keeps running meanwhile. The lengths come from the host's own arithmetic.
        """
        assert self._frontend is not None
        with torch.cuda.stream(prep):  # no-op without a feature stream
            feats, lengths = self._frontend.joined(*self._waves_on_device(jobs))
            feats = _pad_time(feats, self._config.shape_bucket_frames).to(self._dtype)
        if prep is None:
            return feats, lengths, None
        run = torch.cuda.current_stream(self._device)
        host_lengths = self._frontend.output_lengths([job.samples.size for job in jobs])  # no device read
        run.wait_stream(prep)
        feats.record_stream(run)
        lengths.record_stream(run)
        return feats, lengths, host_lengths

    def _waves_on_device(self, jobs: Sequence[_SegmentJob]) -> tuple[torch.Tensor, list[int]]:
        """The batch's waveforms end to end on the device, and their sizes: one transfer for the batch.

        On a CPU a single segment is used as it lies. On CUDA, segments that lie in page-locked buffers
        (``page_lock``: the front-ends' arenas) are copied to the device from where they are, without
        waiting; others are joined into this worker's pinned buffer and sent in one copy without waiting
        (a copy from pageable memory costs a second host copy and blocks the thread until the device has
        finished all earlier work: 14 % of the device thread, bench/results/2026-11-22-h200-diag).
        """
        sizes = [job.samples.size for job in jobs]
        if self._device.type != "cuda":
            if len(jobs) == 1:
                return torch.from_numpy(jobs[0].samples).to(self._device), sizes
            return torch.from_numpy(np.concatenate([job.samples for job in jobs])).to(self._device), sizes
        if all(self._host_memory.covers(job.samples) for job in jobs):
            flat = torch.empty(sum(sizes), dtype=torch.float32, device=self._device)
            # One call queues every segment's copy: a ``copy_`` each let go of the GIL and waited to get it
            # back per segment (~150 us each under load, 26 % of the device thread, s6-spy).
            torch._foreach_copy_(
                list(flat.split(sizes)), [torch.from_numpy(job.samples) for job in jobs], non_blocking=True
            )
            return flat, sizes
        staging = self._pinned_staging(sum(sizes))
        # torch.cat, not np.concatenate: it lets go of the GIL while it copies (~40 MB for a full batch),
        # so the results thread builds hypotheses meanwhile.
        torch.cat([torch.from_numpy(job.samples) for job in jobs], out=staging)
        flat = staging.to(self._device, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record(torch.cuda.current_stream(self._device))
        self._worker_state.staged = copied
        return flat, sizes

    def _pinned_staging(self, n_samples: int) -> torch.Tensor:
        """This worker's page-locked float32 buffer, ``n_samples`` long, once its previous copy has left.

        Grown to the next power of two when too small (a batch is bounded by the scheduler's budget).
        """
        state = self._worker_state
        previous: torch.cuda.Event | None = getattr(state, "staged", None)
        if previous is not None:
            previous.synchronize()  # normally long done: the previous batch read its results back
        buffer: torch.Tensor | None = getattr(state, "pinned", None)
        if buffer is None or buffer.numel() < n_samples:
            buffer = torch.empty(
                1 << max(20, (n_samples - 1).bit_length()), dtype=torch.float32, pin_memory=True
            )
            state.pinned = buffer
        return buffer[:n_samples]


class _BatcherRecogniser:
    """The engine's own path: its batch scheduler, model and device."""

    def __init__(self, scheduler: BatchScheduler[_SegmentJob, _Delivery]) -> None:
        self._scheduler = scheduler

    async def start(self) -> None:
        """Start the batch worker and warm the model up with one short silent segment."""
        await self._scheduler.start()
        warm = np.zeros(SAMPLE_RATE, dtype=np.float32)
        await self.recognise(warm, DecodeRequest())

    async def close(self) -> None:
        await self._scheduler.close()

    def recognise(self, samples: np.ndarray, request: DecodeRequest) -> Awaitable[Hypothesis]:
        """Queued now (an overload is raised here, not when awaited); the result once its batch's is built."""
        queued = self._scheduler.submit(_SegmentJob(samples, request), samples.size)
        return asyncio.ensure_future(_delivered(queued))  # a task: runs even if never awaited


async def _delivered(queued: Awaitable[_Delivery]) -> Hypothesis:
    return await (await queued).hypothesis()


_INLINE_WAV_MAX_BYTES = 1 << 20  # ~32 s of 16 kHz 16-bit mono


def _is_small_16k_wav(data: bytes) -> bool:
    """A short canonical RIFF/WAVE file already at 16 kHz: decoding it needs no resampling."""
    return (
        len(data) <= _INLINE_WAV_MAX_BYTES
        and data[:4] == b"RIFF"
        and data[8:16] == b"WAVEfmt "
        and int.from_bytes(data[24:28], "little") == SAMPLE_RATE
    )


def _pad_time(feats: torch.Tensor, bucket: int) -> torch.Tensor:
    """Zero-pad the time axis to a multiple of ``bucket`` frames.

    Every new tensor shape costs the GPU a fresh kernel/plan selection (over 100 ms per new utterance
    length on an H100, bench/results); rounding shapes up lets utterances of similar length share them.
    Models mask by ``feat_lengths``, so results do not change (the batching-invariance tests hold this).
    """
    if bucket <= 1 or feats.shape[1] % bucket == 0:
        return feats
    return torch.nn.functional.pad(feats, (0, 0, 0, bucket - feats.shape[1] % bucket))


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()
