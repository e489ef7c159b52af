"""CUDA graphs: bucket choice, where they apply, that the flag changes nothing on a CPU, and (on a GPU)
that replays give eager mode's token ids."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from asr_engine.cuda_graphs import (
    ChunkPlan,
    GraphSettings,
    GraphStats,
    ParaformerGraphs,
    ShapePrice,
    batch_bucket,
    chunk_spans,
    copy_in,
    graph_token_bucket,
    in_batch_order,
    in_order,
    make_graphs,
    overflowing,
    plan_chunks,
    time_bucket,
    token_cap,
    warm_plan,
)
from asr_engine.engine import Engine, EngineConfig
from asr_engine.models.base import DecodeRequest, Hypothesis
from asr_engine.models.loader import load_model
from asr_engine.models.paraformer import ParaformerModel
from asr_engine.scheduler import SchedulerConfig
from asr_engine.types import TranscribeOptions
from tests.models.conftest import features, file_samples

RAW = TranscribeOptions(itn=False, punctuation=False, vad=False)
NAMES = ("en_16k.wav", "zh_16k.wav", "en2_16k.wav", "short_0p3s_16k.wav")


def test_batch_bucket_is_the_smallest_that_holds_the_batch() -> None:
    buckets = (1, 2, 4, 8, 16)
    assert [batch_bucket(n, buckets) for n in (1, 2, 3, 5, 8, 9, 16)] == [1, 2, 4, 8, 8, 16, 16]
    assert batch_bucket(17, buckets) is None
    assert batch_bucket(0, buckets) is None


def test_time_bucket_rounds_up_and_stops_at_the_limit() -> None:
    assert [time_bucket(t, 16, 512) for t in (1, 16, 17, 100, 512)] == [16, 16, 32, 112, 512]
    assert time_bucket(513, 16, 512) is None
    assert time_bucket(0, 16, 512) is None
    assert time_bucket(37, 1, 512) == 37


def test_chunk_spans_cover_the_batch_in_order_with_at_most_the_largest_bucket() -> None:
    assert chunk_spans(40, 16) == [(0, 16), (16, 32), (32, 40)]
    assert chunk_spans(16, 16) == [(0, 16)]
    assert chunk_spans(17, 16) == [(0, 16), (16, 17)]
    assert chunk_spans(0, 16) == []


def test_graph_token_bucket_rounds_eager_buckets_up_to_the_step() -> None:
    assert [graph_token_bucket(c, 8) for c in (0, 1, 8, 9, 40)] == [8, 8, 8, 16, 40]
    assert [graph_token_bucket(c, 32) for c in (0, 1, 32, 33, 65)] == [32, 32, 32, 64, 96]


def test_token_cap_is_the_share_of_the_time_bucket_rounded_up_to_the_step() -> None:
    assert [token_cap(t, 0.4, 8) for t in (16, 20, 32, 100, 512)] == [8, 8, 16, 40, 208]
    assert token_cap(16, 0.25, 8) == 8  # never below one step
    assert token_cap(512, 0.25, 32) == 128
    assert token_cap(48, 0.5, 8) == 24 and token_cap(49, 0.5, 8) == 32


def test_overflowing_names_the_items_above_the_cap() -> None:
    assert overflowing([3, 9, 8, 0, 12], 8) == [1, 4]
    assert overflowing([], 8) == []


def test_plan_chunks_keeps_small_batches_in_order_and_sorts_large_ones() -> None:
    settings = GraphSettings(batch_buckets=(1, 2, 4), frame_bucket=16, max_frames=64)
    order, plans = plan_chunks([10, 40, 3], settings)
    assert order == [0, 1, 2] and plans == [ChunkPlan(0, 3, 40, 4, 48)]
    lengths = [10, 70, 3, 33, 0, 33, 20]
    order, plans = plan_chunks(lengths, settings)
    assert order == [1, 3, 5, 6, 0, 2, 4]  # longest first, ties in arrival order
    assert plans == [ChunkPlan(0, 4, 70, 4, None), ChunkPlan(4, 7, 10, 4, 16)]  # 70 frames: too long
    _, plans = plan_chunks([0, 0, 0, 0, 0], settings)
    assert plans == [ChunkPlan(0, 4, 1, 4, 16), ChunkPlan(4, 5, 1, 1, 16)]


# Mixed 2-20 s items in LFR frames (60 ms), as the scheduler's batches under load hold them.
MIXED = [120, 40, 310, 75, 200, 33, 260, 90, 150, 48, 330, 60, 110]
BUCKETS = GraphSettings(batch_buckets=(1, 2, 4, 8, 16), frame_bucket=16, max_frames=512)


def _linear(fixed: float, per_cell: float) -> Callable[[int, int], float]:
    """A replay cost of ``fixed`` ms plus ``per_cell`` ms per (row x frame) of the shape."""
    return lambda b, t: fixed + per_cell * b * t


def _check_cover(
    lengths: list[int], order: list[int], plans: list[ChunkPlan], settings: GraphSettings
) -> None:
    """Longest first (stable), contiguous chunks covering every item once, each cut to its longest item."""
    assert order == sorted(range(len(lengths)), key=lambda i: -lengths[i])
    assert [p.lo for p in plans] == [0] + [p.hi for p in plans[:-1]] and plans[-1].hi == len(lengths)
    for p in plans:
        assert p.frames == max(1, max(lengths[i] for i in order[p.lo : p.hi]))
        assert p.b == batch_bucket(p.hi - p.lo, settings.batch_buckets)
        assert p.t == time_bucket(p.frames, settings.frame_bucket, settings.max_frames)


def _cheapest_cut(lengths: list[int], settings: GraphSettings, cost: Callable[[int, int], float]) -> float:
    """Every contiguous cut of the longest-first order into chunks within the largest bucket, by brute
    force: the least summed cost."""
    frames = sorted(lengths, reverse=True)
    n, largest, best = len(frames), max(settings.batch_buckets), float("inf")
    for mask in itertools.product((False, True), repeat=n - 1):  # True: a chunk ends after that item
        ends = [k + 1 for k, end in enumerate(mask) if end] + [n]
        starts = [0, *ends[:-1]]
        if any(hi - lo > largest for lo, hi in zip(starts, ends, strict=True)):
            continue
        total = 0.0
        for lo, hi in zip(starts, ends, strict=True):
            b = batch_bucket(hi - lo, settings.batch_buckets)
            t = time_bucket(frames[lo], settings.frame_bucket, settings.max_frames)
            assert b is not None and t is not None
            total += cost(b, t)
        best = min(best, total)
    return best


def _plan_cost(plans: list[ChunkPlan], cost: Callable[[int, int], float]) -> float:
    return sum(cost(p.b, p.t) for p in plans if p.t is not None)


def test_cost_aware_plan_splits_a_padded_batch_when_replays_are_cheap_to_start() -> None:
    cost = _linear(fixed=0.5, per_cell=0.001)
    order, plans = plan_chunks(MIXED, BUCKETS, cost)
    _check_cover(MIXED, order, plans, BUCKETS)
    assert len(plans) > 1
    one_chunk = cost(16, 336)  # what the plan without a cost replays: b=16 up to the longest item
    assert _plan_cost(plans, cost) < one_chunk
    assert _plan_cost(plans, cost) == pytest.approx(_cheapest_cut(MIXED, BUCKETS, cost))


def test_cost_aware_plan_keeps_one_chunk_when_a_replay_costs_mostly_its_start() -> None:
    cost = _linear(fixed=1000.0, per_cell=0.001)
    order, plans = plan_chunks(MIXED, BUCKETS, cost)
    _check_cover(MIXED, order, plans, BUCKETS)
    assert plans == [ChunkPlan(0, 13, 330, 16, 336)]
    # Above the largest bucket: at least two chunks, and the fewest the cost allows.
    order, plans = plan_chunks(MIXED * 2, BUCKETS, cost)
    _check_cover(MIXED * 2, order, plans, BUCKETS)
    assert len(plans) == 2 and plans[0] == ChunkPlan(0, 16, 330, 16, 336) and plans[1].b == 16


def test_cost_aware_plan_is_the_cheapest_cut_for_measured_like_costs() -> None:
    """Costs shaped like measured ones: a large fixed part, sub-linear in rows (a batch-1 replay is far
    more than 1/16 of a batch-16 one)."""
    rows = {1: 1.0, 2: 1.15, 4: 1.4, 8: 2.0, 16: 3.2}

    def cost(b: int, t: int) -> float:
        return 4.0 + rows[b] * t / 64

    for lengths in (MIXED, MIXED[:7], [500, 20, 20, 20, 20, 20, 20, 20, 20, 20], [16] * 11):
        order, plans = plan_chunks(lengths, BUCKETS, cost)
        _check_cover(lengths, order, plans, BUCKETS)
        assert _plan_cost(plans, cost) == pytest.approx(_cheapest_cut(lengths, BUCKETS, cost))
    _, plans = plan_chunks([500, 20, 20, 20, 20, 20, 20, 20, 20, 20], BUCKETS, cost)
    assert [(p.b, p.t) for p in plans] == [(1, 512), (16, 32)]  # the long item alone


def test_cost_aware_plan_puts_too_long_items_in_eager_chunks_of_their_own() -> None:
    settings = GraphSettings(batch_buckets=(1, 2, 4), frame_bucket=16, max_frames=64)
    lengths = [10, 70, 3, 33, 0, 90, 20]
    order, plans = plan_chunks(lengths, settings, _linear(fixed=100.0, per_cell=0.01))
    assert order == [5, 1, 3, 6, 0, 2, 4]
    # Without a cost the 70- and 90-frame items take two graphable items with them into an eager chunk.
    # The other five need two replays; the cheaper pair pads the short items, not the 33-frame one.
    assert plans == [ChunkPlan(0, 2, 90, 2, None), ChunkPlan(2, 4, 33, 2, 48), ChunkPlan(4, 7, 10, 4, 16)]
    _, plans = plan_chunks([80, 100], settings, _linear(fixed=1.0, per_cell=0.01))
    assert plans == [ChunkPlan(0, 2, 100, 2, None)]
    assert plan_chunks([], settings, _linear(fixed=1.0, per_cell=0.01)) == ([], [])


def test_cost_aware_plan_without_any_priced_shape_is_the_plan_without_a_cost() -> None:
    def unknown(b: int, t: int) -> float | None:
        return None

    for lengths in (MIXED, MIXED * 3, [5]):
        assert plan_chunks(lengths, BUCKETS, unknown) == plan_chunks(lengths, BUCKETS)


def test_shape_price_is_measured_or_a_high_estimate_from_measured_shapes() -> None:
    settings = GraphSettings(batch_buckets=(1, 2, 4, 8), frame_bucket=16, max_frames=128)
    measured = {(4, 32): 10.0, (1, 64): 4.0, (8, 128): 30.0}
    asked: list[tuple[int, int]] = []

    def cost(b: int, t: int) -> float | None:
        asked.append((b, t))
        return measured.get((b, t))

    price = ShapePrice(cost, settings)
    assert price(4, 32) == 10.0 and price(1, 64) == 4.0  # measured
    assert price(4, 48) == pytest.approx(15.0)  # (4, 32) scaled by 48/32, below (8, 128)'s 30
    assert price(1, 48) == 4.0  # (1, 64) bounds it from above
    assert price(2, 16) == pytest.approx(10.0)  # (4, 32) bounds it from above; nothing below it
    assert price(8, 64) == 30.0  # (8, 128) bounds it, below (1, 64) x 8 = 32 and (4, 32) x 4 = 40
    asked.clear()
    assert price(4, 48) == pytest.approx(15.0) and not asked  # memoised
    lone = ShapePrice(lambda b, t: 7.0 if (b, t) == (1, 128) else None, settings)
    assert lone(4, 16) is None  # neither above nor below a measured shape: not used
    assert lone(1, 16) == 7.0 and lone(8, 128) == pytest.approx(7.0 * 8)


def test_cost_aware_plan_prefers_measured_small_shapes_over_an_unmeasured_large_one() -> None:
    """Only batch-1 and batch-4 shapes measured (the warm-up stopped before the rest): an unmeasured b=8
    shape is priced from them scaled up (here (4, 112) x 2 = 20.96), so the plan keeps to shapes with
    graphs where they cost less: (4, 112) + (4, 64) = 19.04."""
    settings = GraphSettings(batch_buckets=(1, 4, 8), frame_bucket=16, max_frames=128)
    measured = {(1, t): 5.0 + 0.01 * t for t in range(16, 129, 16)}
    measured |= {(4, t): 6.0 + 0.04 * t for t in range(16, 129, 16)}
    order, plans = plan_chunks([100, 90, 80, 70, 60, 50, 40, 30], settings, lambda b, t: measured.get((b, t)))
    _check_cover([100, 90, 80, 70, 60, 50, 40, 30], order, plans, settings)
    assert [(p.b, p.t) for p in plans] == [(4, 112), (4, 64)]


def test_warm_plan_puts_batch_one_then_the_largest_bucket_first() -> None:
    settings = GraphSettings(batch_buckets=(1, 2, 4, 8), warm_frames=(20, 64), frame_bucket=16, max_frames=48)
    times = [32, 48]
    assert warm_plan(settings) == [(b, t) for b in (1, 8, 4, 2) for t in times]
    assert warm_plan(GraphSettings(batch_buckets=(1,), warm_frames=(16, 32))) == [(1, 16), (1, 32)]


def test_graph_stats_summary_names_captures_memory_and_eager_reasons() -> None:
    stats = GraphStats(replays=7, captures=3, capture_s=1.25, static_bytes=3 * 2**20)
    stats.eager("token cap overflow")
    stats.eager("token cap overflow")
    stats.overflow_items = 2
    line = stats.summary()
    assert "captures=3 capture_s=1.2" in line and "static_mib=3" in line and "replays=7" in line
    assert "overflow_items=2" in line and "token cap overflow: 2" in line and "eager_batches=2" in line
    assert "timed=" not in line  # replays are timed only with cost_aware_chunks
    assert "timed=150 timing_s=2.5" in GraphStats(timed=150, timing_s=2.5).summary()


def test_static_decode_with_a_token_cap_gives_decode_batch_results_or_flags_the_item(
    parity_dir: Path,
) -> None:
    """What a fused graph computes (run eagerly on the CPU), read back as the runner reads its host copies:
    items within the cap get decode_batch's hypotheses (timestamps included); a cap too small is detected."""
    model = _cpu_model(parity_dir)
    family = parity_dir / "paraformer"
    waves = [file_samples(family / "audio" / n) for n in NAMES]
    feats, lengths = features(model.frontend, waves, torch.device("cpu"))
    requests = [DecodeRequest(timestamps=i % 2 == 0) for i in range(len(waves))]
    expected = model.decode_batch(feats, lengths, requests)
    t = time_bucket(feats.shape[1], 16, 4096)
    assert t is not None
    padded = torch.nn.functional.pad(
        feats, (0, 0, 0, t - feats.shape[1], 0, 2)
    )  # two empty rows, as a bucket
    padded_lengths = torch.cat([lengths, torch.zeros(2, dtype=lengths.dtype)])
    true_counts = [len(h.token_ids) for h in expected]
    for cap in (token_cap(t, 0.4, 8), 8):
        packed, weights = model.decode_static(padded, padded_lengths, cap)
        assert packed.shape == (len(waves) + 2, 2 + cap) and weights.shape == (len(waves) + 2, 2, t + 1)
        counts, frames = packed[:, 0].tolist(), packed[:, 1].tolist()
        assert frames == padded_lengths.tolist() and counts[-2:] == [0, 0]
        over = overflowing(counts, cap)
        assert all(true_counts[i] <= counts[i] for i in range(len(waves)))
        kept = [i for i in range(len(waves)) if i not in over]
        got = model.host_hypotheses(
            packed[kept, 2:],
            [counts[i] for i in kept],
            [frames[i] for i in kept],
            [requests[i] for i in kept],
            weights[kept],
        )
        assert got == [expected[i] for i in kept]
        if cap == 8:
            assert over == [i for i, c in enumerate(counts) if c > 8] and over  # the long items overflow
        else:
            assert over == []


def _cpu_model(parity_dir: Path) -> ParaformerModel:
    model = load_model(parity_dir / "paraformer" / "model", device=torch.device("cpu"), dtype=torch.float32)
    assert isinstance(model, ParaformerModel)
    return model


def test_graphs_do_not_apply_on_a_cpu(parity_dir: Path) -> None:
    model = _cpu_model(parity_dir)
    assert make_graphs(model, torch.device("cpu"), GraphSettings()) is None
    with pytest.raises(ValueError, match="CUDA"):
        ParaformerGraphs(model)


async def test_flag_is_a_no_op_on_a_cpu(parity_dir: Path) -> None:
    family = parity_dir / "paraformer"
    blobs = [(family / "audio" / n).read_bytes() for n in NAMES]
    texts = []
    for flag in (False, True):
        config = EngineConfig(vad="none", cuda_graphs=flag, scheduler=SchedulerConfig(max_wait_ms=5))
        engine = Engine.load(family / "model", device="cpu", config=config)
        assert engine._graphs is None
        await engine.start()
        try:
            texts.append([(await engine.transcribe(b, RAW)).text_raw for b in blobs])
        finally:
            await engine.close()
    assert texts[0] == texts[1]
    assert any(texts[0])


# ------------------------------------------------------------------------------------------------ GPU
def _cuda_model(parity_dir: Path, dtype: torch.dtype) -> ParaformerModel:
    model = load_model(parity_dir / "paraformer" / "model", device=torch.device("cuda"), dtype=dtype)
    assert isinstance(model, ParaformerModel)
    return model


@pytest.mark.gpu
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "two-graph"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_replays_equal_eager_at_bucket_sizes(parity_dir: Path, dtype: torch.dtype, fused: bool) -> None:
    """Replays give eager mode's results at the same shapes. bf16 fused: the graph's decoder runs at the
    token cap, so its reference is the same computation run eagerly (``decode_static`` at the cap; a
    different decoder length is a different matrix shape, which may move half-precision low bits)."""
    family = parity_dir / "paraformer"
    model = _cuda_model(parity_dir, dtype)
    settings = GraphSettings(batch_buckets=(1, 2, 4), warm_frames=(16, 32), fused=fused)
    runner = ParaformerGraphs(model, settings)
    assert runner.warm_up() > 0
    waves = [file_samples(family / "audio" / n) for n in NAMES]
    with torch.inference_mode():
        for batch in ([waves[0]], [waves[1]], waves[:2], waves):
            feats, lengths = features(model.frontend, batch, torch.device("cuda"))
            feats = torch.nn.functional.pad(feats, (0, 0, 0, -feats.shape[1] % 16)).to(dtype)
            requests = [DecodeRequest(timestamps=True) for _ in batch]
            eager = model.decode_batch(feats, lengths, requests)
            if fused and dtype != torch.float32:
                eager = _static_reference(model, feats, lengths, requests, settings)
            for _ in range(2):  # the first call captures, the second replays
                assert runner.decode_batch(feats, lengths, requests) == eager
    assert runner.stats.replays >= 8 and runner.stats.eager_batches == 0


def _static_reference(
    model: ParaformerModel,
    feats: torch.Tensor,
    lengths: torch.Tensor,
    requests: list[DecodeRequest],
    settings: GraphSettings,
) -> list[Hypothesis]:
    """What a fused graph of this exact shape computes, run eagerly (feats already at a bucket shape)."""
    cap = token_cap(feats.shape[1], settings.token_share, settings.token_step)
    packed, weights = (x.cpu() for x in model.decode_static(feats, lengths, cap))
    counts = packed[:, 0].tolist()
    assert max(counts) <= cap  # no overflow: every item is the graph's own
    return model.host_hypotheses(packed[:, 2:], counts, packed[:, 1].tolist(), requests, weights)


@pytest.mark.gpu
def test_padded_batches_and_fallbacks_give_eager_text(parity_dir: Path) -> None:
    """Three items replay in the batch-4 graph; five run eagerly (above the buckets, splitting off); texts
    are the same."""
    family = parity_dir / "paraformer"
    model = _cuda_model(parity_dir, torch.float32)
    settings = GraphSettings(batch_buckets=(1, 4), warm_frames=(16, 16), split_large_batches=False)
    runner = ParaformerGraphs(model, settings)
    waves = [file_samples(family / "audio" / n) for n in NAMES]
    waves.append(np.zeros(16000, dtype=np.float32))
    with torch.inference_mode():
        for batch in (waves[:3], waves):
            feats, lengths = features(model.frontend, batch, torch.device("cuda"))
            requests = [DecodeRequest() for _ in batch]
            eager = [h.text for h in model.decode_batch(feats, lengths, requests)]
            assert [h.text for h in runner.decode_batch(feats, lengths, requests)] == eager
    assert runner.stats.replays == 1 and runner.stats.reasons == {"shape outside the buckets": 1}


@pytest.mark.gpu
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "two-graph"])
def test_large_batches_replay_in_chunks_and_keep_each_items_result(parity_dir: Path, fused: bool) -> None:
    """Six items over buckets (1, 2): chunks of two, longest first, whatever order the batch came in; on
    the fused path the three chunks are queued with one wait at the end."""
    family = parity_dir / "paraformer"
    model = _cuda_model(parity_dir, torch.float32)
    settings = GraphSettings(batch_buckets=(1, 2), warm_frames=(16, 16), fused=fused)
    runner = ParaformerGraphs(model, settings)
    waves = [file_samples(family / "audio" / n) for n in NAMES]
    waves += [np.zeros(16000, dtype=np.float32), waves[0][: waves[0].size // 2]]
    with torch.inference_mode():
        for batch in (sorted(waves, key=len, reverse=True), waves):  # sorted as the scheduler does; shuffled
            feats, lengths = features(model.frontend, batch, torch.device("cuda"))
            requests = [DecodeRequest(timestamps=True) for _ in batch]
            alone = [
                model.decode_batch(*features(model.frontend, [w], torch.device("cuda")), [r])
                for w, r in zip(batch, requests, strict=True)
            ]
            chunked = runner.decode_batch(feats, lengths, requests)
            assert [h.text for h in chunked] == [a[0].text for a in alone]
            assert [h.token_ids for h in chunked] == [a[0].token_ids for a in alone]
            assert [h.words for h in chunked] == [a[0].words for a in alone]  # timestamps too
    assert runner.stats.eager_batches == 0 and runner.stats.replays == 6


@pytest.mark.gpu
def test_a_coarser_decoder_token_step_gives_eager_text(parity_dir: Path) -> None:
    """Decoder graphs padded to 32 tokens: positions past each count are masked, the text is eager's."""
    family = parity_dir / "paraformer"
    model = _cuda_model(parity_dir, torch.float32)
    settings = GraphSettings(batch_buckets=(1, 4), warm_frames=(16, 16), token_step=32, fused=False)
    runner = ParaformerGraphs(model, settings)
    waves = [file_samples(family / "audio" / n) for n in NAMES]
    with torch.inference_mode():
        for batch in ([waves[0]], waves):
            feats, lengths = features(model.frontend, batch, torch.device("cuda"))
            requests = [DecodeRequest() for _ in batch]
            eager = [h.text for h in model.decode_batch(feats, lengths, requests)]
            assert [h.text for h in runner.decode_batch(feats, lengths, requests)] == eager
    assert runner.stats.eager_batches == 0
    assert all(n % 32 == 0 for (_, _, n) in runner._decoder)


@pytest.mark.gpu
def test_items_above_the_token_cap_are_decoded_again_in_full(parity_dir: Path) -> None:
    """A cap of 8 tokens (share 0.05): longer items overflow and are redone eagerly, the rest replay; each
    item's ids and timestamps are its own decoded alone."""
    family = parity_dir / "paraformer"
    model = _cuda_model(parity_dir, torch.float32)
    settings = GraphSettings(batch_buckets=(1, 2, 4), warm_frames=(16, 16), token_share=0.05)
    runner = ParaformerGraphs(model, settings)
    waves = [file_samples(family / "audio" / n) for n in NAMES]
    waves += [waves[0][: waves[0].size // 3], np.zeros(8000, dtype=np.float32)]
    with torch.inference_mode():
        feats, lengths = features(model.frontend, waves, torch.device("cuda"))
        requests = [DecodeRequest(timestamps=i % 2 == 0) for i in range(len(waves))]
        got = runner.decode_batch(feats, lengths, requests)
        alone = [
            model.decode_batch(feats[i : i + 1], lengths[i : i + 1], [requests[i]])[0]
            for i in range(len(waves))
        ]
    assert [h.token_ids for h in got] == [a.token_ids for a in alone]
    assert [h.words for h in got] == [a.words for a in alone]
    long_items = sum(len(a.token_ids) > 8 for a in alone)
    assert long_items > 0 and runner.stats.overflow_items >= long_items
    assert set(runner.stats.reasons) == {"token cap overflow"}


@pytest.mark.gpu
def test_fused_warm_up_captures_the_planned_shapes_within_its_budgets(parity_dir: Path) -> None:
    model = _cuda_model(parity_dir, torch.float32)
    settings = GraphSettings(batch_buckets=(1, 2, 4), warm_frames=(16, 48))
    runner = ParaformerGraphs(model, settings)
    assert runner.warm_up() == 9 and runner.warm_up() == 0
    assert sorted(runner._fused) == sorted(warm_plan(settings)) and not runner._acoustic
    assert runner.stats.static_bytes > 0 and runner.stats.capture_s > 0
    for budget in (GraphSettings(warm_seconds=0.0), GraphSettings(warm_memory_mib=0)):
        lean = ParaformerGraphs(model, budget)
        assert lean.warm_up() <= 1  # the memory check passes before the first capture only
    # A shape not captured at start is captured when first met, then replayed.
    family = parity_dir / "paraformer"
    wave = file_samples(family / "audio" / "zh_16k.wav")  # 107 frames: time bucket 112, not warmed
    with torch.inference_mode():
        feats, lengths = features(model.frontend, [wave], torch.device("cuda"))
        eager = model.decode_batch(feats, lengths, [DecodeRequest()])
        before = runner.stats.captures
        assert runner.decode_batch(feats, lengths, [DecodeRequest()]) == eager
        assert runner.decode_batch(feats, lengths, [DecodeRequest()]) == eager
    assert runner.stats.captures == before + 1


@pytest.mark.gpu
def test_cost_aware_chunks_time_the_warmed_shapes_and_keep_each_items_ids(parity_dir: Path) -> None:
    """With ``cost_aware_chunks`` every warmed shape's replay is timed, and a mixed-length batch of seven
    (one b=8 chunk without it) decodes to the token ids and timestamps it has with the setting off, under
    the measured costs and under costs that split it into several replays."""
    family = parity_dir / "paraformer"
    model = _cuda_model(parity_dir, torch.float32)
    waves = [file_samples(family / "audio" / n) for n in NAMES]
    waves += [w[: w.size // 2] for w in waves[:3]]  # 63, 107, 67, 5, 31, 53, 33 frames
    settings = GraphSettings(batch_buckets=(1, 2, 4, 8), warm_frames=(16, 112))
    off = ParaformerGraphs(model, settings)
    on = ParaformerGraphs(model, dataclasses.replace(settings, cost_aware_chunks=True))
    assert on.warm_up() == len(warm_plan(settings)) == 28
    assert sorted(on.costs) == sorted(on._fused) == sorted(warm_plan(settings))
    assert all(ms > 0 for ms in on.costs.values()) and on.stats.timed == 28 and on.stats.timing_s > 0
    assert "timed=28" in on.stats.summary()
    with torch.inference_mode():
        feats, lengths = features(model.frontend, waves, torch.device("cuda"))
        requests = [DecodeRequest(timestamps=i % 2 == 0) for i in range(len(waves))]
        expected = off.decode_batch(feats, lengths, requests)
        assert off.stats.replays == 1 and not off.costs and off.stats.timed == 0
        measured = on.decode_batch(feats, lengths, requests)
        # Replays cost in proportion to their rows and frames, no fixed part: one replay per time bucket.
        on.costs.update({key: float(key[0] * key[1]) for key in on.costs})
        before = on.stats.replays
        split = on.decode_batch(feats, lengths, requests)
        assert on.stats.replays - before > 1
    for got in (measured, split):
        assert [h.token_ids for h in got] == [h.token_ids for h in expected]
        assert [h.words for h in got] == [h.words for h in expected]
    assert any(h.token_ids for h in expected)
    assert on.stats.eager_batches == 0 and on.stats.captures == 28  # every shape met was warmed


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("fused", "pipeline", "workers"),
    [(True, True, 1), (True, True, 2), (True, False, 1), (False, False, 1), (False, True, 2)],
    ids=["fused-pipelined", "fused-pipelined-2workers", "fused-serial", "two-graph-serial", "two-graph-2w"],
)
def test_engine_batches_give_each_segment_its_own_result(
    parity_dir: Path, fused: bool, pipeline: bool, workers: int
) -> None:
    """Many segments at once through the engine (batches over several chunks, graph buckets up to 4):
    token ids and word timestamps equal the same engine's with one segment per batch."""
    family = parity_dir / "paraformer"
    names = (*NAMES, "long_16k.wav", "en_8k.wav")
    waves = [file_samples(family / "audio" / n) for n in names]
    waves += [w[: w.size // 2] for w in waves] + [np.zeros(16000, dtype=np.float32)]

    async def decode(max_items: int) -> tuple[list[Hypothesis], str]:
        config = EngineConfig.tuned(
            graph_max_batch=4,
            graph_fused=fused,
            vad="none",
            pipeline=pipeline,
            device_workers=workers,
            batch_wait_ms=20.0,
        )
        config = dataclasses.replace(
            config,
            scheduler=dataclasses.replace(config.scheduler, max_batch_items=max_items),
            graphs=dataclasses.replace(config.graphs, warm_frames=(16, 64)),
        )
        engine = Engine.load(family / "model", device="cuda", dtype="float32", config=config)
        await engine.start()
        try:
            request = DecodeRequest(timestamps=True)
            hyps = list(await asyncio.gather(*(engine.submit(w, request) for w in waves)))
            return hyps, engine.device_summary()
        finally:
            await engine.close()

    batched, summary = asyncio.run(decode(256))
    alone, _ = asyncio.run(decode(1))
    assert [h.token_ids for h in batched] == [h.token_ids for h in alone]
    assert [h.words for h in batched] == [h.words for h in alone]
    assert any(h.token_ids for h in batched)
    assert "max_allocated_mib=" in summary and "replays=" in summary
    pools = re.search(r"graph_pools_mib=(\d+) stream_mib=\[([\d,]*)\]", summary)
    assert pools is not None, summary
    assert int(pools.group(1)) > 0  # the graphs' memory is found in their own pools


@pytest.mark.gpu
def test_engine_with_graphs_gives_the_same_transcripts(parity_dir: Path) -> None:
    """Synchronous on purpose: the GPU machine may lack pytest-asyncio."""
    family = parity_dir / "paraformer"
    blobs = [(family / "audio" / n).read_bytes() for n in NAMES]

    async def transcribe_all(flag: bool) -> list[str]:
        config = EngineConfig(vad="none", cuda_graphs=flag)
        engine = Engine.load(family / "model", device="cuda", dtype="float32", config=config)
        await engine.start()
        try:
            texts = [(await engine.transcribe(b, RAW)).text_raw for b in blobs]
            if flag:
                assert engine._graphs is not None and engine._graphs.stats.replays >= len(blobs)
            return texts
        finally:
            await engine.close()

    assert asyncio.run(transcribe_all(False)) == asyncio.run(transcribe_all(True))


def test_copy_in_fills_the_batch_and_zeroes_what_a_previous_batch_left() -> None:
    static_feats = torch.full((4, 6, 3), 7.0)  # a larger batch's leftovers
    static_lengths = torch.full((4,), 6, dtype=torch.int64)
    feats = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    copy_in(static_feats, static_lengths, feats, torch.tensor([4, 3]))
    assert torch.equal(static_feats[:2, :4], feats)
    assert not static_feats[2:].any() and not static_feats[:, 4:].any()
    assert static_lengths.tolist() == [4, 3, 0, 0]


def test_in_order_and_back_is_the_identity() -> None:
    lengths = [3, 9, 1, 9, 5]
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # as plan_chunks sorts a large batch
    feats = torch.arange(5, dtype=torch.float32).reshape(5, 1, 1).expand(5, 2, 1)
    sorted_feats, sorted_lengths = in_order(feats, torch.tensor(lengths), order)
    assert sorted_lengths.tolist() == [9, 9, 5, 3, 1] and sorted_feats[:, 0, 0].tolist() == [1, 3, 4, 0, 2]
    kept, _ = in_order(feats, torch.tensor(lengths), range(5))
    assert kept is feats  # already in order: no copy
    decoded = [Hypothesis(token_ids=(i,), text=str(i)) for i in order]  # made in sorted order
    assert [h.text for h in in_batch_order(decoded, order)] == ["0", "1", "2", "3", "4"]
