"""CUDA graphs for Paraformer over padded shape buckets: one replay instead of ~1,300 kernel launches.

Eager PyTorch spends ~70-90 ms of CPU time launching a Paraformer-large forward on an H100 whatever the
batch size (bench/PERF_NOTES.md); a graph replay launches the whole recorded sequence at once. A graph
holds fixed shapes, so a batch is padded up to a batch bucket (extra items have length 0 and are dropped)
and a time bucket, and the model runs in two graphs with one host read between them:

* acoustic, per (batch bucket, time bucket): encoder, predictor, CIF into fixed-size outputs
  (``ParaformerModel.acoustic_static``, no host sync inside);
* decoder, per (batch bucket, time bucket, token bucket): decoder and argmax over the acoustic graph's
  outputs (``ParaformerModel.argmax_ids``).

Between them the token counts come to the host (the token bucket depends on them), as in eager mode.
A batch above the largest batch bucket replays as chunks of that bucket, longest items first. Anything
longer than the time buckets, past the graph budget or on a CPU runs eagerly.

Correct by construction: inputs are copied into static buffers, whatever leaves a replay is copied out
before the next replay, all graphs share one memory pool and keep their static tensors alive (so no graph's
temporaries alias another's outputs), and one thread at a time captures or replays. The engine's device
workers (``EngineConfig.device_workers``) share one runner: a lock admits one worker from copying a batch in
to reading its results out, and the worker that takes the lock makes its CUDA stream wait for an event the
previous holder recorded on its own stream as it let go, so the static buffers see their uses in lock order
on the device too. One shared set (not one per worker, not graphs for one worker only) keeps a batch's
path, and so its token ids, independent of the worker that runs it, and holds the graph memory once;
replays are short, and a large batch takes the lock once per chunk, so workers interleave. For a
batch whose size is a bucket, a replay runs the same kernels on
the same shapes as eager mode, so its token ids are identical; padding a batch to a bucket changes the
matrix shapes, which can move low bits in half precision (as any change of batch size does).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from asr_engine.models.base import DecodeRequest, Hypothesis
from asr_engine.models.paraformer import AcousticOutput, ParaformerModel, token_bucket

__all__ = [
    "GraphSettings",
    "GraphStats",
    "ParaformerGraphs",
    "batch_bucket",
    "chunk_spans",
    "graph_token_bucket",
    "make_graphs",
    "time_bucket",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class GraphSettings:
    """Which shapes get graphs. Defaults cover idle and lightly loaded serving of segments up to ~30 s."""

    batch_buckets: tuple[int, ...] = (1, 2, 4, 8, 16)
    frame_bucket: int = 16  # the engine's shape_bucket_frames
    max_frames: int = 512  # LFR frames (60 ms each): ~30 s, the longest single segment
    max_graphs: int = 1024  # acoustic + decoder graphs together
    # Static tensors kept alive by the graphs (inputs and outputs; the shared pool's temporaries excluded).
    max_static_mib: int = 1024
    # Captured at start for batch 1: time buckets in this range (frames), with token buckets up to
    # ``warm_token_share`` of the frames (Paraformer-large emits ~0.25 tokens per 60 ms frame).
    # Every single-segment length (up to ~30 s): lengths left to a lazy capture cost that request ~100 ms
    # (the H100's idle p99 was 139 ms with 3-11.5 s warmed and 2-20 s requests); ~420 graphs, ~20 s at start.
    warm_frames: tuple[int, int] = (16, 512)
    warm_token_share: float = 0.375
    # A batch above the largest bucket replays as consecutive chunks of that bucket (longest items first,
    # each chunk padded only to its own longest item) instead of running eagerly. Why: eager dispatch of a
    # Paraformer-large forward costs the device thread ~50-100 ms of CPU whatever the batch size, and under
    # load that, not the GPU, bounded throughput (H200 under c=256: device thread busy 98 %, GPU SM 10-30 %,
    # bench/results/2026-11-22-h200-diag); a batch-16 replay already runs near the model's large-batch speed.
    split_large_batches: bool = True
    # The decoder graphs' token axis is rounded up to a multiple of this (eager mode rounds to 8). Every
    # (batch, time, token) bucket met is one more capture (~50-100 ms of the device thread, the first time);
    # under varied load decoder captures still took 18 % of the device thread after a minute
    # (bench/results/2026-11-22-h200-steady). A coarser step means fewer decoder graphs at some padded
    # decoder work (the decoder is a small share of Paraformer's forward). A multiple of 8.
    token_step: int = 8


@dataclass
class GraphStats:
    """Counters for benchmarks and logs (changed under the runner's locks)."""

    replays: int = 0
    eager_batches: int = 0
    captures: int = 0
    capture_s: float = 0.0
    static_bytes: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def eager(self, reason: str) -> None:
        self.eager_batches += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def batch_bucket(n: int, buckets: Sequence[int]) -> int | None:
    """The smallest bucket holding ``n`` items, or None when ``n`` is above them all."""
    fitting = [b for b in buckets if b >= n]
    return min(fitting) if n > 0 and fitting else None


def chunk_spans(n_items: int, largest: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` spans of at most ``largest`` items that cover ``range(n_items)`` in order."""
    return [(lo, min(lo + largest, n_items)) for lo in range(0, n_items, largest)]


def graph_token_bucket(count: int, step: int) -> int:
    """The decoder graph's token axis for a longest item of ``count`` tokens: eager mode's bucket
    (``paraformer.token_bucket``) rounded up to a multiple of ``step`` (``GraphSettings.token_step``)."""
    return max(step, -(-token_bucket(count) // step) * step)


def time_bucket(frames: int, step: int, max_frames: int) -> int | None:
    """``frames`` rounded up to a multiple of ``step``, or None past ``max_frames``."""
    if frames < 1:
        return None
    rounded = -(-frames // step) * step if step > 1 else frames
    return rounded if rounded <= max_frames else None


@dataclass
class _Acoustic:
    graph: torch.cuda.CUDAGraph
    feats: torch.Tensor  # (b, t, D) static input
    lengths: torch.Tensor  # (b,) static input
    out: AcousticOutput  # static outputs


@dataclass
class _Decoder:
    graph: torch.cuda.CUDAGraph
    ids: torch.Tensor  # (b, n) static output


def _nbytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class ParaformerGraphs:
    """``decode_batch`` with the same results as ``ParaformerModel.decode_batch``, replayed from graphs."""

    def __init__(self, model: ParaformerModel, settings: GraphSettings = GraphSettings()) -> None:
        if model.device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device")
        self.model = model
        self.settings = settings
        self.stats = GraphStats()
        self._acoustic: dict[tuple[int, int], _Acoustic] = {}
        self._decoder: dict[tuple[int, int, int], _Decoder] = {}
        self._pool: Any = None
        self._lock = threading.Lock()  # one device worker at a time captures or replays
        self._stats_lock = threading.Lock()  # eager counts: also bumped by batches that never take ``_lock``
        self._released: torch.cuda.Event | None = None  # recorded on the last holder's stream
        self._failed: str | None = None  # a capture failed: eager from then on
        self.warmed = False

    # ------------------------------------------------------------------ decoding
    def decode_batch(
        self, feats: torch.Tensor, feat_lengths: torch.Tensor, requests: Sequence[DecodeRequest]
    ) -> list[Hypothesis]:
        """Decode a padded batch (B, T, D) through graphs when its shape fits, else eagerly.

        A batch above the largest bucket goes through in chunks of that bucket when
        ``split_large_batches`` is set (see ``GraphSettings``).
        """
        largest = max(self.settings.batch_buckets)
        if self.settings.split_large_batches and feats.shape[0] > largest:
            return self._decode_in_chunks(feats, feat_lengths, requests, largest)
        return self._decode_one(feats, feat_lengths, requests)

    def _decode_in_chunks(
        self,
        feats: torch.Tensor,
        feat_lengths: torch.Tensor,
        requests: Sequence[DecodeRequest],
        largest: int,
    ) -> list[Hypothesis]:
        """Longest items first, ``largest`` at a time, each chunk cut to its own longest item."""
        lengths = feat_lengths.tolist()  # one host read for the whole batch
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        if order != sorted(order):  # the scheduler's batches come sorted; anything else is sorted here
            index = torch.tensor(order, device=feats.device)
            feats, feat_lengths = feats.index_select(0, index), feat_lengths.index_select(0, index)
        decoded: list[Hypothesis] = []  # in ``order``
        for lo, hi in chunk_spans(len(order), largest):
            frames = max(1, lengths[order[lo]])
            decoded += self._decode_one(
                feats[lo:hi, :frames], feat_lengths[lo:hi], [requests[i] for i in order[lo:hi]]
            )
        rank = {item: k for k, item in enumerate(order)}
        return [decoded[rank[i]] for i in range(len(order))]

    def _decode_one(
        self, feats: torch.Tensor, feat_lengths: torch.Tensor, requests: Sequence[DecodeRequest]
    ) -> list[Hypothesis]:
        n_items, frames = feats.shape[0], feats.shape[1]
        b = batch_bucket(n_items, self.settings.batch_buckets)
        t = time_bucket(frames, self.settings.frame_bucket, self.settings.max_frames)
        if b is None or t is None:  # decided by the shape alone: large batches never wait for the lock
            with self._stats_lock:
                self.stats.eager("shape outside the buckets")
            return self.model.decode_batch(feats, feat_lengths, requests)
        with self._holding():
            if self._failed is None:
                acoustic = self._acoustic.get((b, t)) or self._capture_acoustic(b, t)
                if acoustic is not None:
                    return self._replay(acoustic, feats, feat_lengths, requests, b, t)
            with self._stats_lock:
                self.stats.eager("capture failed" if self._failed else "graph budget")
        return self.model.decode_batch(feats, feat_lengths, requests)

    @contextlib.contextmanager
    def _holding(self) -> Iterator[None]:
        """The lock, with this thread's stream ordered after the previous holder's work on the buffers."""
        device = self.model.device
        with self._lock:
            if self._released is not None:
                torch.cuda.current_stream(device).wait_event(self._released)
            try:
                yield
            finally:
                if self._released is None:
                    self._released = torch.cuda.Event()
                self._released.record(torch.cuda.current_stream(device))

    def _replay(
        self,
        acoustic: _Acoustic,
        feats: torch.Tensor,
        feat_lengths: torch.Tensor,
        requests: Sequence[DecodeRequest],
        b: int,
        t: int,
    ) -> list[Hypothesis]:
        """Both graphs for one batch (lock held): static inputs in, results out to the host."""
        n_items, frames = feats.shape[0], feats.shape[1]
        with torch.inference_mode():
            acoustic.feats.zero_()
            acoustic.feats[:n_items, :frames].copy_(feats)
            acoustic.lengths.zero_()
            acoustic.lengths[:n_items].copy_(feat_lengths)
            acoustic.graph.replay()
            ac = acoustic.out
            counts, lengths = torch.stack([ac.token_num[:n_items], ac.lengths[:n_items]]).cpu().tolist()
            if max(counts, default=0) < 1:
                self.stats.replays += 1
                return [Hypothesis(token_ids=(), text="") for _ in requests]
            n = self._token_bucket(max(counts))
            decoder = self._decoder.get((b, t, n)) or self._capture_decoder(b, t, n)
            if decoder is None:
                ids = self.model.argmax_ids(ac, n)[:n_items].cpu()
                with self._stats_lock:
                    self.stats.eager("decoder: capture failed" if self._failed else "decoder graph budget")
            else:
                decoder.graph.replay()
                ids = decoder.ids[:n_items].cpu()
                self.stats.replays += 1
            # Reads the acoustic graph's fires/alphas (copied to the host) before any other replay.
            return self.model.hypotheses(ac, ids, counts, lengths, requests)

    def _token_bucket(self, count: int) -> int:
        return graph_token_bucket(count, self.settings.token_step)

    # ------------------------------------------------------------------ capture
    def warm_up(self) -> int:
        """Capture the batch-1 graphs of the common lengths (once, whichever thread comes first); a count."""
        if self.warmed:
            return 0
        with self._holding():
            return self._warm_up()

    def _warm_up(self) -> int:
        if self.warmed:  # another worker warmed up while this one waited for the lock
            return 0
        self.warmed = True
        started, before = time.perf_counter(), self.stats.captures
        step = self.settings.frame_bucket
        low, high = self.settings.warm_frames
        first = time_bucket(max(low, 1), step, self.settings.max_frames)
        for t in range(first or step, min(high, self.settings.max_frames) + 1, step):
            if self._capture_acoustic(1, t) is None:
                break
            top = self._token_bucket(int(t * self.settings.warm_token_share))
            step = self.settings.token_step
            for n in range(step, top + 1, step):
                if self._capture_decoder(1, t, n) is None:
                    break
        captured = self.stats.captures - before
        log.info("CUDA graphs: %d captured at start in %.1f s", captured, time.perf_counter() - started)
        return captured

    def _room(self, extra_bytes: int) -> bool:
        s = self.settings
        return (
            len(self._acoustic) + len(self._decoder) < s.max_graphs
            and self.stats.static_bytes + extra_bytes <= s.max_static_mib * 2**20
        )

    def _capture(self, run: Callable[[], Any]) -> tuple[torch.cuda.CUDAGraph, Any] | None:
        """``_record``, or None (and eager mode from then on) when the capture fails."""
        try:
            return self._record(run)
        except Exception as exc:  # a graph that cannot be recorded must not fail the batch
            self._failed = f"{type(exc).__name__}: {exc}"
            log.warning("CUDA graph capture failed, running eagerly from now on: %s", self._failed)
            return None

    def _record(self, run: Callable[[], Any]) -> tuple[torch.cuda.CUDAGraph, Any]:
        """Warm ``run`` up once on a side stream, then record it into the shared pool.

        ``thread_local`` capture: other threads (VAD, post-processing) may use CUDA meanwhile.
        """
        device = self.model.device
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        started = time.perf_counter()
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.inference_mode():
            with torch.cuda.stream(side):
                run()  # lazy initialisation (cuBLAS workspaces, cuDNN plans) outside the capture
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
                out = run()
        self.stats.captures += 1
        self.stats.capture_s += time.perf_counter() - started
        return graph, out

    def _capture_acoustic(self, b: int, t: int) -> _Acoustic | None:
        model = self.model
        dim = model.frontend.feature_dim
        d = model.net.dims.encoder.output_size
        # Inputs, encoder output, embeddings (T+1 rows) in the model dtype, float32 weights.
        estimate = b * t * (dim + 2 * d) * model.dtype.itemsize + b * (t + 1) * 8 + b * 16
        if not self._room(estimate):
            return None
        feats = torch.zeros(b, t, dim, device=model.device, dtype=model.dtype)
        lengths = torch.full((b,), t, device=model.device, dtype=torch.int64)
        recorded = self._capture(lambda: model.acoustic_static(feats, lengths))
        if recorded is None:
            return None
        entry = _Acoustic(recorded[0], feats, lengths, recorded[1])
        self.stats.static_bytes += _nbytes(feats, lengths, *vars(entry.out).values())
        self._acoustic[(b, t)] = entry
        return entry

    def _capture_decoder(self, b: int, t: int, n: int) -> _Decoder | None:
        acoustic = self._acoustic.get((b, t))
        if acoustic is None or not self._room(b * n * 8):
            return None
        recorded = self._capture(lambda: self.model.argmax_ids(acoustic.out, n))
        if recorded is None:
            return None
        entry = _Decoder(*recorded)
        self.stats.static_bytes += _nbytes(entry.ids)
        self._decoder[(b, t, n)] = entry
        return entry


def make_graphs(model: object, device: torch.device, settings: GraphSettings) -> ParaformerGraphs | None:
    """A graph runner for ``model``, or None where graphs do not apply (CPU, other model families)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        log.info("CUDA graphs requested on %s: ignored (CUDA only)", device)
        return None
    if type(model) is not ParaformerModel:  # SeACo adds hotword work, SenseVoice has its own path
        log.info("CUDA graphs requested for a %s model: not supported, eager", type(model).__name__)
        return None
    return ParaformerGraphs(model, settings)
