"""CUDA graphs for Paraformer over padded shape buckets: one replay instead of ~1,300 kernel launches.

Eager PyTorch spends ~70-90 ms of CPU time launching a Paraformer-large forward on an H100 whatever the
batch size (bench/PERF_NOTES.md); a graph replay launches the whole recorded sequence at once. A graph
holds fixed shapes, so a batch is padded up to a batch bucket (extra items have length 0 and are dropped)
and a time bucket. Two ways to cut the model into graphs (``GraphSettings.fused``):

* fused (the default): one graph per (batch bucket, time bucket) holds the encoder, predictor, CIF, decoder
  and argmax (``ParaformerModel.decode_static``), its token axis fixed at a cap derived from the time bucket
  (``GraphSettings.token_share``). Nothing inside waits for the host. An item that fires more tokens than
  the cap is seen afterwards in its copied-out count and decoded again eagerly, so no result is ever cut
  short. Few shapes (batch buckets x time buckets), so the common ones are captured at start (``warm_up``).
* two graphs (the behaviour before): an acoustic graph per (batch, time) and a decoder graph per (batch,
  time, token bucket), with the token counts read to the host between them to choose the decoder graph.

A batch above the largest batch bucket replays as chunks of that bucket, longest items first, each chunk cut
to its own longest item. With ``GraphSettings.cost_aware_chunks`` (fused path) each shape's replay is timed
when it is captured, and a batch of any size is cut, longest items first, into the chunks whose measured
replays cost least in all (``plan_chunks``): 13 items of mixed lengths may run cheaper as a b=4 replay of the
long ones and a b=8 and a b=1 replay of the shorter ones than as one b=16 replay padded to the longest item,
or may not (a replay's fixed cost is large); the timings decide. On the fused path every chunk of a batch is
queued back to back: copy in, replay, copy the outputs the host needs (counts, frame counts, ids, and the CIF
weights when an item wants timestamps) into fresh page-locked host tensors without waiting; one event after
the last chunk is the batch's only synchronisation (``PendingDecode``), which the engine waits on off its
device thread. Reusing a graph's static buffers for a later chunk of the same batch is safe without any host
wait: everything runs on one stream, so the later chunk's copy-in runs after the earlier chunk's copy-out has
read the outputs. Anything longer than the time buckets, past the graph budget or on a CPU runs eagerly.

Correct by construction: inputs are copied into static buffers, whatever leaves a replay is copied out
before the next replay (in stream order), all graphs share one memory pool and keep their static tensors
alive (so no graph's temporaries alias another's outputs), and one thread at a time captures or queues
replays. The engine's device workers (``EngineConfig.device_workers``) share one runner: a lock admits one
worker from copying a batch in to queueing its copies out, and the worker that takes the lock makes its
CUDA stream wait for an event the previous holder recorded on its own stream as it let go. So the static
buffers (and the shared pool) see their uses in lock order on the device too, and the lock need not be held
until the copies have finished on the device: the next holder's replays are queued behind them. One shared
set (not one per worker) keeps a batch's path, and so its token ids, independent of the worker that runs it,
and holds the graph memory once. For a batch whose size is a bucket, a replay runs the same kernels on the
same shapes as eager mode, so its token ids are identical; padding a batch to a bucket (or the decoder to a
token cap) changes the matrix shapes, which can move low bits in half precision (as any change of batch
size does).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from asr_engine.cuda_memory import fixed_segments
from asr_engine.cuda_streams import role_stream
from asr_engine.models.base import DecodeRequest, Hypothesis
from asr_engine.models.paraformer import AcousticOutput, ParaformerModel, token_bucket

__all__ = [
    "ChunkCost",
    "ChunkPlan",
    "GraphSettings",
    "GraphStats",
    "ParaformerGraphs",
    "PendingDecode",
    "ShapePrice",
    "batch_bucket",
    "chunk_spans",
    "copy_in",
    "graph_token_bucket",
    "in_batch_order",
    "in_order",
    "make_graphs",
    "overflowing",
    "plan_chunks",
    "time_bucket",
    "token_cap",
    "warm_plan",
]

log = logging.getLogger(__name__)

# Replays timed per captured fused shape (``cost_aware_chunks``), after one untimed replay (a graph's first
# launch uploads it); the fastest is kept. ~150 shapes at start: a few seconds in all.
TIMED_REPLAYS = 2


@dataclass(frozen=True, kw_only=True)
class GraphSettings:
    """Which shapes get graphs. Defaults cover idle and lightly loaded serving of segments up to ~30 s."""

    batch_buckets: tuple[int, ...] = (1, 2, 4, 8, 16)
    frame_bucket: int = 16  # the engine's shape_bucket_frames
    max_frames: int = 512  # LFR frames (60 ms each): ~30 s, the longest single segment
    max_graphs: int = 1024  # acoustic + decoder graphs together
    # Static tensors kept alive by the graphs (inputs and outputs; the shared pool's temporaries excluded).
    max_static_mib: int = 1024
    # Time buckets captured at start (frames; both paths). Two-graph path: batch 1 only, with decoder token
    # buckets up to ``warm_token_share`` of the frames (Paraformer-large emits ~0.25 tokens per 60 ms frame).
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
    # decoder work (the decoder is a small share of Paraformer's forward). A multiple of 8. The fused
    # graphs' token cap is rounded up to it too.
    token_step: int = 8
    # One graph per (batch, time) for the whole model with the decoder's token axis fixed at ``token_share``
    # of the time bucket (see the module docstring); False: the two-graph path of before (acoustic graph,
    # a host read of the token counts, decoder graph per token bucket), kept for A/B runs.
    fused: bool = True
    # Fused graphs' token cap per LFR frame (60 ms) of the time bucket, rounded up to ``token_step``.
    # Paraformer emits ~0.25 tokens per frame on speech (~4 tokens/s; bench/build_large.py calibrates random
    # weights to that); 0.5 (8.3 tokens/s) leaves room, and the bucket is measured on the chunk's longest
    # item padded up, silence included. Above the cap an item is decoded again eagerly (a whole eager
    # forward for that item, batch-1 work that competes with the graphs); below it the padded decoder
    # positions cost little: by a count of matrix products the decoder is ~11 % of Paraformer-large's
    # forward at 0.25 tokens per frame and ~16 % at 0.5. Under c=256 on an H100, 0.4 let ~0.3 % of items
    # overflow and their redos cost 19 % of throughput; 0.5 let none (bench/results/2026-11-22-h100-s5-fused).
    token_share: float = 0.5
    # Fused warm-up at start: batch 1 then the largest bucket then the others, time buckets in
    # ``warm_frames``, until ``warm_seconds`` have passed or the CUDA memory reserved has grown by
    # ``warm_memory_mib`` (graph pool and static buffers). Under load every new shape met lazily stalls the
    # device thread for a capture (22 % of it after a minute, bench/results/2026-11-22-h200-steady).
    warm_seconds: float = 30.0
    warm_memory_mib: int = 2048
    # Record graphs with fixed allocator segments even where the process uses expandable ones
    # (``cuda_memory.fixed_segments``); False lets the graph pool grow through expandable segments.
    capture_fixed_segments: bool = True
    # Fused path: time each shape's replay when it is captured (a few replays, the fastest kept; not
    # counted in ``warm_seconds``) and cut each batch into the chunks whose measured replays cost least in
    # all (``plan_chunks`` with a cost). Why: under load on an H100 batches held ~10-14 mixed 2-20 s items
    # and padding (rows up to the bucket, frames up to the longest item) wasted ~25-40 % of the GPU, then
    # the bound; but a replay's fixed cost is large, so only measured costs can say where a split pays.
    # Off until A/B-measured on a GPU.
    cost_aware_chunks: bool = False


@dataclass
class GraphStats:
    """Counters for benchmarks and logs (changed under the runner's locks)."""

    replays: int = 0
    eager_batches: int = 0
    captures: int = 0
    capture_s: float = 0.0
    static_bytes: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    overflow_items: int = 0  # items above a fused graph's token cap, decoded again eagerly
    timed: int = 0  # fused shapes whose replay was timed (``cost_aware_chunks``)
    timing_s: float = 0.0  # host time those timings took

    def eager(self, reason: str) -> None:
        self.eager_batches += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def summary(self) -> str:
        """One log line (the engine logs it at stop): where graph time and memory went."""
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.reasons.items())) or "none"
        timed = f" timed={self.timed} timing_s={self.timing_s:.1f}" if self.timed else ""
        return (
            f"captures={self.captures} capture_s={self.capture_s:.1f} "
            f"static_mib={self.static_bytes / 2**20:.0f} replays={self.replays} "
            f"eager_batches={self.eager_batches} overflow_items={self.overflow_items} eager=({reasons})"
            f"{timed}"
        )


def copy_in(
    static_feats: torch.Tensor, static_lengths: torch.Tensor, feats: torch.Tensor, feat_lengths: torch.Tensor
) -> None:
    """A batch into a graph's static inputs: its items first, every other row and frame zero.

    Rows past the batch keep length 0, so the padded items a bucket adds decode to nothing.
    """
    n_items, frames = feats.shape[0], feats.shape[1]
    static_feats.zero_()
    static_feats[:n_items, :frames].copy_(feats)
    static_lengths.zero_()
    static_lengths[:n_items].copy_(feat_lengths)


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


def token_cap(t: int, share: float, step: int) -> int:
    """A fused graph's decoder token axis for time bucket ``t``: ``ceil(share * t)`` rounded up to a
    multiple of ``step``, at least ``step``."""
    wanted = math.ceil(share * t - 1e-9)  # 0.4 * 20 must stay 8, not 9 after float rounding
    return max(step, -(-wanted // step) * step)


def overflowing(counts: Sequence[int], cap: int) -> list[int]:
    """Positions whose token count exceeds ``cap``: their ids were cut at the cap, so they are redone."""
    return [i for i, count in enumerate(counts) if count > cap]


@dataclass(frozen=True)
class ChunkPlan:
    """One replay of a batch: rows ``[lo, hi)`` of the length-sorted batch, cut to ``frames`` (its longest
    item), graph shape ``(b, t)``; ``t`` None when the chunk is too long for the time buckets."""

    lo: int
    hi: int
    frames: int
    b: int
    t: int | None


# A fused shape's replay cost in ms, ``(b, t) -> ms``, or None where the shape has not been timed.
ChunkCost = Callable[[int, int], float | None]


def plan_chunks(
    lengths: Sequence[int], settings: GraphSettings, cost: ChunkCost | None = None
) -> tuple[list[int], list[ChunkPlan]]:
    """The order the batch is replayed in and its chunks.

    Without ``cost``: a batch within the largest bucket is one chunk in its own order; a larger one is
    sorted longest first (stable) and cut into chunks of the largest bucket, each cut to its own longest
    item. Assumes a larger batch may be split (``split_large_batches``; the caller checks).

    With ``cost`` (``cost_aware_chunks``): any batch is sorted longest first (stable) and cut into the
    contiguous chunks whose shapes cost least in all (``_plan_by_cost``).
    """
    if cost is not None:
        return _plan_by_cost(lengths, settings, cost)
    largest = max(settings.batch_buckets)
    n = len(lengths)
    order = list(range(n)) if n <= largest else sorted(range(n), key=lambda i: -lengths[i])
    return order, _fixed_chunks(order, lengths, 0, n, settings)


def _fixed_chunks(
    order: Sequence[int], lengths: Sequence[int], start: int, stop: int, settings: GraphSettings
) -> list[ChunkPlan]:
    """Rows ``[start, stop)`` of ``order`` cut into chunks of the largest bucket, each cut to its own
    longest item."""
    largest = max(settings.batch_buckets)
    plans = []
    for lo, hi in chunk_spans(stop - start, largest):
        lo, hi = lo + start, hi + start
        frames = max(1, max(lengths[i] for i in order[lo:hi]))
        b = batch_bucket(hi - lo, settings.batch_buckets)
        assert b is not None  # a chunk never exceeds the largest bucket
        plans.append(
            ChunkPlan(lo, hi, frames, b, time_bucket(frames, settings.frame_bucket, settings.max_frames))
        )
    return plans


def _plan_by_cost(
    lengths: Sequence[int], settings: GraphSettings, cost: ChunkCost
) -> tuple[list[int], list[ChunkPlan]]:
    """Longest first, then the contiguous chunks of at most the largest bucket with the least summed cost
    of their shapes ``(batch_bucket(size), time_bucket(longest))``, by dynamic programming over the
    sorted rows (O(n x largest bucket)); ties go to fewer chunks.

    Items too long for every time bucket lead the order and run eagerly whatever chunk holds them; they get
    chunks of their own (the largest bucket at a time, as without a cost) so they pull no shorter item
    off its graph. Shapes are priced by ``ShapePrice`` (measured, or estimated from measured ones); where
    some part of the batch can be priced by no shape, the batch gets the plan without a cost.
    """
    n = len(lengths)
    order = sorted(range(n), key=lambda i: -lengths[i])
    frames = [max(1, lengths[i]) for i in order]
    step, top = settings.frame_bucket, settings.max_frames
    times = [time_bucket(f, step, top) for f in frames]
    long = sum(t is None for t in times)  # the too-long items, first in the order
    largest = max(settings.batch_buckets)
    price = ShapePrice(cost, settings)
    rows = [0] + [batch_bucket(k, settings.batch_buckets) or largest for k in range(1, largest + 1)]
    fits = [t or 0 for t in times]  # rows from ``long`` on all have a time bucket
    # best[j]: the least cost of cutting rows [long, j), in chunks[j] chunks, the last from cut[j].
    best, chunks, cut = [math.inf] * (n + 1), [0] * (n + 1), [0] * (n + 1)
    best[long] = 0.0
    for j in range(long + 1, n + 1):
        for i in range(max(long, j - largest), j):
            if best[i] == math.inf:
                continue
            ms = price(rows[j - i], fits[i])
            if ms is None:
                continue
            total = best[i] + ms
            if total < best[j] or (total == best[j] and chunks[i] + 1 < chunks[j]):
                best[j], chunks[j], cut[j] = total, chunks[i] + 1, i
    if best[n] == math.inf:
        return plan_chunks(lengths, settings)
    spans: list[tuple[int, int]] = []
    j = n
    while j > long:
        spans.append((cut[j], j))
        j = cut[j]
    plans = _fixed_chunks(order, lengths, 0, long, settings)
    plans += [ChunkPlan(lo, hi, frames[lo], rows[hi - lo], fits[lo]) for lo, hi in reversed(spans)]
    return order, plans


class ShapePrice:
    """A shape's replay cost for ``plan_chunks``: measured where ``cost`` knows it, else estimated.

    An unmeasured shape has no graph yet (every captured shape is timed), so choosing it also costs a
    capture; its estimate therefore leans high. It is the least of (a) the cost of a measured shape at least
    as large in both axes (a replay's cost grows with its shape) and (b) the cost of a measured shape at most
    as large, scaled up by the ratio of their ``b * t`` (linear scaling counts that shape's fixed cost again,
    which overestimates). For each other batch bucket only the nearest measured time bucket above (a) or
    below (b) is looked at. With neither, None: the shape is not used. Memoised: one batch asks for few
    shapes, each probing at most (batch buckets x time buckets) entries.
    """

    def __init__(self, cost: ChunkCost, settings: GraphSettings) -> None:
        self._cost = cost
        self._buckets = sorted(settings.batch_buckets)
        self._step = max(1, settings.frame_bucket)
        self._first = time_bucket(1, settings.frame_bucket, settings.max_frames) or 1
        self._max = settings.max_frames
        self._known: dict[tuple[int, int], float | None] = {}

    def __call__(self, b: int, t: int) -> float | None:
        if (b, t) not in self._known:
            measured = self._cost(b, t)
            self._known[(b, t)] = measured if measured is not None else self._estimate(b, t)
        return self._known[(b, t)]

    def _estimate(self, b: int, t: int) -> float | None:
        bounds: list[float] = []
        for b2 in self._buckets:
            if b2 >= b:  # (a) the nearest measured time bucket at or above t
                for t2 in range(t, self._max + 1, self._step):
                    ms = self._cost(b2, t2)
                    if ms is not None:
                        bounds.append(ms)
                        break
            if b2 <= b:  # (b) the nearest measured time bucket at or below t, scaled up
                for t2 in range(t, self._first - 1, -self._step):
                    ms = self._cost(b2, t2)
                    if ms is not None:
                        bounds.append(ms * (b * t) / (b2 * t2))
                        break
        return min(bounds, default=None)


def in_order(
    feats: torch.Tensor, feat_lengths: torch.Tensor, order: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's rows in ``order`` (a permutation; the scheduler's batches usually come in it already)."""
    if list(order) == list(range(len(order))):
        return feats, feat_lengths
    index = torch.tensor(list(order), device=feats.device)
    return feats.index_select(0, index), feat_lengths.index_select(0, index)


def in_batch_order(decoded: Sequence[Hypothesis], order: Sequence[int]) -> list[Hypothesis]:
    """Results made in ``order`` back in the batch's order: ``decoded[k]`` is item ``order[k]``'s."""
    rank = {item: k for k, item in enumerate(order)}
    return [decoded[rank[i]] for i in range(len(order))]


def warm_plan(settings: GraphSettings) -> list[tuple[int, int]]:
    """(batch, time) shapes captured at start, most useful first: batch 1 (idle requests), the largest
    bucket (chunks under load), then the other buckets from large to small; time buckets ascending."""
    step = settings.frame_bucket
    low, high = settings.warm_frames
    first = time_bucket(max(low, 1), step, settings.max_frames) or step
    times = list(range(first, min(high, settings.max_frames) + 1, step))
    largest = max(settings.batch_buckets)
    rest = sorted((b for b in settings.batch_buckets if b not in (1, largest)), reverse=True)
    batches = [1] + ([largest] if largest != 1 else []) + rest
    return [(b, t) for b in batches for t in times]


class PendingDecode:
    """A batch's results on their way to the host; ``result()`` waits for them and builds the hypotheses.

    Why: the device thread queues a whole batch without waiting and hands this to another thread
    (engine.py), so building results (host work) does not leave the GPU idle.
    """

    def __init__(self, build: Callable[[], list[Hypothesis]], done: torch.cuda.Event | None = None) -> None:
        self._build = build
        self.done = done  # recorded after the batch's last copy to the host; None: nothing to wait for

    @classmethod
    def ready(cls, hypotheses: list[Hypothesis]) -> PendingDecode:
        return cls(lambda: hypotheses)

    def result(self) -> list[Hypothesis]:
        if self.done is not None:
            self.done.synchronize()
        with torch.inference_mode():
            return self._build()


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


@dataclass
class _Fused:
    graph: torch.cuda.CUDAGraph
    feats: torch.Tensor  # (b, t, D) static input
    lengths: torch.Tensor  # (b,) static input
    packed: torch.Tensor  # (b, 2 + cap) int64 static output: count, frames, ids
    weights: torch.Tensor  # (b, 2, t+1) float32 static output: fires, alphas
    cap: int


@dataclass(frozen=True)
class _Copied:
    """One chunk's outputs in page-locked host memory (valid once the batch's event has fired)."""

    lo: int  # first row in the length-sorted batch
    packed: torch.Tensor  # (n, 2 + cap) int64
    weights: torch.Tensor | None  # (n, 2, t+1) float32, when an item wants timestamps
    cap: int


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
        self._fused: dict[tuple[int, int], _Fused] = {}
        # Measured replay time (ms, the fastest of ``TIMED_REPLAYS``) per fused shape (b, t), filled as
        # shapes are captured when ``cost_aware_chunks`` is set; ``plan_chunks`` prices chunks with it.
        self.costs: dict[tuple[int, int], float] = {}
        self._pool: Any = None
        self._lock = threading.Lock()  # one device worker at a time captures or replays
        self._stats_lock = threading.Lock()  # eager counts: also bumped by batches that never take ``_lock``
        self._released: torch.cuda.Event | None = None  # recorded on the last holder's stream
        self._failed: str | None = None  # a capture failed: eager from then on
        self.warmed = False
        # Streams made once and kept: the caching allocator keeps freed blocks per stream, and
        # ``torch.cuda.Stream()`` hands out its pool's 32 streams in turn, so a new stream per capture or
        # per eager redo left ~70-90 MiB cached on each of ~30 streams (2.4 GB of an H200 run's 7.4 GB).
        self._side: torch.cuda.Stream | None = None  # captures' warm-up runs (under ``_lock``)
        self._eager = threading.local()  # one stream per thread for eager redos of rows

    # ------------------------------------------------------------------ decoding
    def decode_batch(
        self,
        feats: torch.Tensor,
        feat_lengths: torch.Tensor,
        requests: Sequence[DecodeRequest],
        host_lengths: Sequence[int] | None = None,
    ) -> list[Hypothesis]:
        """Decode a padded batch (B, T, D) through graphs when its shape fits, else eagerly (blocking)."""
        return self.launch(feats, feat_lengths, requests, host_lengths).result()

    def launch(
        self,
        feats: torch.Tensor,
        feat_lengths: torch.Tensor,
        requests: Sequence[DecodeRequest],
        host_lengths: Sequence[int] | None = None,
    ) -> PendingDecode:
        """Queue a batch's decoding; ``result()`` of the answer waits for it and builds the hypotheses.

        ``host_lengths`` are ``feat_lengths`` already on the host (else they are read, a sync). A batch
        above the largest bucket goes through in chunks of that bucket when ``split_large_batches`` is set
        (see ``GraphSettings``). The two-graph path (``fused`` off) decodes before returning.
        """
        largest = max(self.settings.batch_buckets)
        if feats.shape[0] > largest and not self.settings.split_large_batches:
            return PendingDecode.ready(self._decode_one(feats, feat_lengths, requests))
        if not self.settings.fused:
            if feats.shape[0] > largest:
                return PendingDecode.ready(self._decode_in_chunks(feats, feat_lengths, requests, largest))
            return PendingDecode.ready(self._decode_one(feats, feat_lengths, requests))
        lengths = list(host_lengths) if host_lengths is not None else feat_lengths.tolist()
        return self._launch_fused(feats, feat_lengths, requests, lengths)

    def _launch_fused(
        self,
        feats: torch.Tensor,
        feat_lengths: torch.Tensor,
        requests: Sequence[DecodeRequest],
        lengths: Sequence[int],
    ) -> PendingDecode:
        """Every chunk copied in, replayed and copied out back to back; one event at the end."""
        cost = self._cost if self.settings.cost_aware_chunks else None
        order, plans = plan_chunks(lengths, self.settings, cost)
        feats, feat_lengths = in_order(feats, feat_lengths, order)
        ordered = [requests[i] for i in order]
        copied: list[_Copied] = []
        eager: list[int] = []  # rows of the sorted batch that run eagerly when the results are built
        device = self.model.device
        with self._holding():
            for plan in plans:
                entry, reason = self._fused_entry(plan)
                if entry is None:
                    eager += range(plan.lo, plan.hi)
                    with self._stats_lock:
                        self.stats.eager(reason)
                    continue
                timestamps = any(req.timestamps for req in ordered[plan.lo : plan.hi])
                chunk = feats[plan.lo : plan.hi, : plan.frames]
                copied.append(self._queue(entry, plan.lo, chunk, feat_lengths[plan.lo : plan.hi], timestamps))
            done = torch.cuda.Event()
            done.record(torch.cuda.current_stream(device))

        def build() -> list[Hypothesis]:
            decoded = self._collect(
                copied, eager, feats, feat_lengths, ordered, lengths=[lengths[i] for i in order]
            )
            return in_batch_order(decoded, order)

        return PendingDecode(build, done)

    def _cost(self, b: int, t: int) -> float | None:
        """A fused shape's measured replay time in ms (read without the lock: one dict lookup)."""
        return self.costs.get((b, t))

    def _fused_entry(self, plan: ChunkPlan) -> tuple[_Fused | None, str]:
        """The chunk's fused graph (captured now if new and within budget), or None and why not."""
        if plan.t is None:
            return None, "shape outside the buckets"
        if self._failed is not None:
            return None, "capture failed"
        entry = self._fused.get((plan.b, plan.t)) or self._capture_fused(plan.b, plan.t)
        if entry is None:
            return None, "capture failed" if self._failed else "graph budget"
        return entry, ""

    def _queue(
        self, entry: _Fused, lo: int, feats: torch.Tensor, feat_lengths: torch.Tensor, timestamps: bool
    ) -> _Copied:
        """One chunk (lock held): static inputs in, replay, outputs to fresh page-locked host tensors.

        Nothing here waits for the device; the copies are valid once the batch's event has fired.
        """
        n_items = feats.shape[0]
        with torch.inference_mode():
            copy_in(entry.feats, entry.lengths, feats, feat_lengths)
            entry.graph.replay()
            packed = torch.empty((n_items, entry.packed.shape[1]), dtype=torch.int64, pin_memory=True)
            packed.copy_(entry.packed[:n_items], non_blocking=True)
            weights = None
            if timestamps:
                weights = torch.empty(
                    (n_items, *entry.weights.shape[1:]), dtype=torch.float32, pin_memory=True
                )
                weights.copy_(entry.weights[:n_items], non_blocking=True)
        self.stats.replays += 1
        return _Copied(lo, packed, weights, entry.cap)

    def _collect(
        self,
        copied: Sequence[_Copied],
        eager: Sequence[int],
        feats: torch.Tensor,
        feat_lengths: torch.Tensor,
        requests: Sequence[DecodeRequest],
        *,
        lengths: Sequence[int],
    ) -> list[Hypothesis]:
        """Hypotheses of the sorted batch from the host copies (after the event); rows that ran no graph
        or overflowed a token cap are decoded eagerly, one at a time (``_eager_rows``)."""
        decoded: dict[int, Hypothesis] = {}
        redo = list(eager)
        for chunk in copied:
            counts, frames = chunk.packed[:, 0].tolist(), chunk.packed[:, 1].tolist()
            over = overflowing(counts, chunk.cap)
            kept = [k for k in range(len(counts)) if k not in over]
            if over:
                redo += [chunk.lo + k for k in over]
                with self._stats_lock:
                    self.stats.overflow_items += len(over)
                    self.stats.eager("token cap overflow")
            if not kept:
                continue
            index = torch.tensor(kept)
            hyps = self.model.host_hypotheses(
                chunk.packed[index, 2:],
                [counts[k] for k in kept],
                [frames[k] for k in kept],
                [requests[chunk.lo + k] for k in kept],
                chunk.weights[index] if chunk.weights is not None else None,
            )
            decoded.update((chunk.lo + k, hyp) for k, hyp in zip(kept, hyps, strict=True))
        if redo:
            redo.sort()
            hyps = self._eager_rows(feats, feat_lengths, requests, redo, lengths)
            decoded.update(zip(redo, hyps, strict=True))
        return [decoded[k] for k in range(len(requests))]

    def _eager_rows(
        self,
        feats: torch.Tensor,
        feat_lengths: torch.Tensor,
        requests: Sequence[DecodeRequest],
        rows: Sequence[int],
        lengths: Sequence[int],
    ) -> list[Hypothesis]:
        """Rows of the batch decoded eagerly on a stream of their own (this may be another thread than the
        one that queued the batch; the batch's event has fired, so its inputs are ready).

        One row at a time, each cut to its own frame bucket: exactly what the row gets when it comes alone.
        Why: which rows run eagerly together depends on how the scheduler happened to cut the batch, and an
        eager batch of several rows is not bitwise a batch of one on a GPU (matrix-product kernels differ by
        shape), so a 65 s item's ids once differed between a batch and alone (session 6,
        bench/results/2026-11-22-h100-s6-kernels). Such rows are rare: items longer than every graph and
        items over a fused graph's token cap.
        """
        device = self.model.device
        stream: torch.cuda.Stream | None = getattr(self._eager, "stream", None)
        if stream is None:
            stream = self._eager.stream = role_stream(device, f"eager-{threading.current_thread().name}")
        stream.wait_stream(torch.cuda.current_stream(device))
        step = self.settings.frame_bucket
        hypotheses: list[Hypothesis] = []
        with torch.cuda.stream(stream):
            for row in rows:
                frames = min(feats.shape[1], -(-max(1, lengths[row]) // step) * step)
                index = torch.tensor([row], device=device)
                x = feats[:, :frames].index_select(0, index)
                hypotheses += self.model.decode_batch(x, feat_lengths.index_select(0, index), [requests[row]])
        return hypotheses

    def _decode_in_chunks(
        self,
        feats: torch.Tensor,
        feat_lengths: torch.Tensor,
        requests: Sequence[DecodeRequest],
        largest: int,
    ) -> list[Hypothesis]:
        """Longest items first, ``largest`` at a time, each chunk cut to its own longest item
        (``plan_chunks``, as the fused path cuts them)."""
        order, plans = plan_chunks(feat_lengths.tolist(), self.settings)  # one host read for the batch
        feats, feat_lengths = in_order(feats, feat_lengths, order)
        decoded: list[Hypothesis] = []  # in ``order``
        for plan in plans:
            decoded += self._decode_one(
                feats[plan.lo : plan.hi, : plan.frames],
                feat_lengths[plan.lo : plan.hi],
                [requests[i] for i in order[plan.lo : plan.hi]],
            )
        return in_batch_order(decoded, order)

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
        n_items = feats.shape[0]
        with torch.inference_mode():
            copy_in(acoustic.feats, acoustic.lengths, feats, feat_lengths)
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
        """Capture the common shapes' graphs (once, whichever thread comes first); a count."""
        if self.warmed:
            return 0
        with self._holding():
            return self._warm_up()

    def _warm_up(self) -> int:
        if self.warmed:  # another worker warmed up while this one waited for the lock
            return 0
        self.warmed = True
        if self.settings.fused:
            return self._warm_up_fused()
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

    def _warm_up_fused(self) -> int:
        """Fused graphs of ``warm_plan``'s shapes until the time or memory budget is spent."""
        s = self.settings
        device = self.model.device
        started, before = time.perf_counter(), self.stats.captures
        timed, timing_s = self.stats.timed, self.stats.timing_s
        reserved = torch.cuda.memory_reserved(device)
        stopped = "all shapes"
        captured: dict[int, list[int]] = {}
        for b, t in warm_plan(s):
            # Timing replays is left out of the budget, so the setting captures the same shapes either way.
            if time.perf_counter() - started - (self.stats.timing_s - timing_s) > s.warm_seconds:
                stopped = f"the time budget ({s.warm_seconds:.0f} s)"
                break
            if torch.cuda.memory_reserved(device) - reserved > s.warm_memory_mib * 2**20:
                stopped = f"the memory budget ({s.warm_memory_mib} MiB)"
                break
            if (b, t) not in self._fused and self._capture_fused(b, t) is None:
                stopped = "a failed capture" if self._failed else "the graph budget"
                break
            captured.setdefault(b, []).append(t)
        shapes = "; ".join(f"batch {b}: frames {ts[0]}-{ts[-1]} ({len(ts)})" for b, ts in captured.items())
        timings = ""
        if s.cost_aware_chunks:
            timings = f", {self.stats.timed - timed} of them timed in {self.stats.timing_s - timing_s:.1f} s"
        log.info(
            "CUDA graphs: %d fused shapes captured at start in %.1f s%s, %.0f MiB more reserved, stopped at "
            "%s [%s]",
            self.stats.captures - before,
            time.perf_counter() - started,
            timings,
            (torch.cuda.memory_reserved(device) - reserved) / 2**20,
            stopped,
            shapes or "none",
        )
        return self.stats.captures - before

    def _room(self, extra_bytes: int) -> bool:
        s = self.settings
        return (
            len(self._acoustic) + len(self._decoder) + len(self._fused) < s.max_graphs
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
        if self._side is None:
            self._side = role_stream(device, "graph-warm-up")
        side = self._side
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.inference_mode():
            with torch.cuda.stream(side):
                run()  # lazy initialisation (cuBLAS workspaces, cuDNN plans) outside the capture
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with (
                fixed_segments(self.settings.capture_fixed_segments),
                torch.cuda.graph(
                    graph,
                    pool=self._pool,
                    stream=role_stream(device, "graph-capture"),
                    capture_error_mode="thread_local",
                ),
            ):
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

    def _capture_fused(self, b: int, t: int) -> _Fused | None:
        model = self.model
        dim = model.frontend.feature_dim
        cap = token_cap(t, self.settings.token_share, self.settings.token_step)
        # Inputs in the model dtype, lengths, the packed ids and the CIF weights (float32).
        estimate = b * t * dim * model.dtype.itemsize + b * 8 + b * (2 + cap) * 8 + b * 2 * (t + 1) * 4
        if not self._room(estimate):
            return None
        feats = torch.zeros(b, t, dim, device=model.device, dtype=model.dtype)
        lengths = torch.full((b,), t, device=model.device, dtype=torch.int64)
        recorded = self._capture(lambda: model.decode_static(feats, lengths, cap))
        if recorded is None:
            return None
        packed, weights = recorded[1]
        entry = _Fused(recorded[0], feats, lengths, packed, weights, cap)
        self.stats.static_bytes += _nbytes(feats, lengths, packed, weights)
        self._fused[(b, t)] = entry
        if self.settings.cost_aware_chunks:
            self._time_replay(b, t, entry.graph)
        return entry

    def _time_replay(self, b: int, t: int, graph: torch.cuda.CUDAGraph) -> None:
        """``costs[(b, t)]``: the fastest of a few replays of a new graph, bracketed by CUDA events on this
        thread's stream (lock held). The replays run on the captured inputs (zeros at full length): a fused
        graph's work is fixed by its shape, not its data. One host wait, behind whatever is queued already.

        Safe between a batch's chunks: the graph's static buffers are its own, and the pool's temporaries
        are rewritten by every replay in stream order anyway.
        """
        started = time.perf_counter()
        stream = torch.cuda.current_stream(self.model.device)
        graph.replay()  # the first launch uploads the graph: not timed
        marks = [
            (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            for _ in range(TIMED_REPLAYS)
        ]
        for begin, end in marks:
            begin.record(stream)
            graph.replay()
            end.record(stream)
        marks[-1][1].synchronize()
        self.costs[(b, t)] = min(begin.elapsed_time(end) for begin, end in marks)
        self.stats.timed += 1
        self.stats.timing_s += time.perf_counter() - started


def make_graphs(model: object, device: torch.device, settings: GraphSettings) -> ParaformerGraphs | None:
    """A graph runner for ``model``, or None where graphs do not apply (CPU, other model families)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        log.info("CUDA graphs requested on %s: ignored (CUDA only)", device)
        return None
    if type(model) is not ParaformerModel:  # SeACo adds hotword work, SenseVoice has its own path
        log.info("CUDA graphs requested for a %s model: not supported, eager", type(model).__name__)
        return None
    return ParaformerGraphs(model, settings)
