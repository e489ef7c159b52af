"""CUDA graphs: bucket choice, where they apply, that the flag changes nothing on a CPU, and (on a GPU)
that replays give eager mode's token ids."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch

from asr_engine.cuda_graphs import (
    ChunkPlan,
    GraphSettings,
    GraphStats,
    ParaformerGraphs,
    batch_bucket,
    chunk_spans,
    graph_token_bucket,
    make_graphs,
    overflowing,
    plan_chunks,
    time_bucket,
    token_cap,
    warm_plan,
)
from asr_engine.engine import Engine, EngineConfig
from asr_engine.models.base import DecodeRequest
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
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_replays_equal_eager_at_bucket_sizes(parity_dir: Path, dtype: torch.dtype) -> None:
    family = parity_dir / "paraformer"
    model = _cuda_model(parity_dir, dtype)
    runner = ParaformerGraphs(model, GraphSettings(batch_buckets=(1, 2, 4), warm_frames=(16, 32)))
    assert runner.warm_up() > 0
    waves = [file_samples(family / "audio" / n) for n in NAMES]
    with torch.inference_mode():
        for batch in ([waves[0]], [waves[1]], waves[:2], waves):
            feats, lengths = features(model.frontend, batch, torch.device("cuda"))
            feats = torch.nn.functional.pad(feats, (0, 0, 0, -feats.shape[1] % 16)).to(dtype)
            requests = [DecodeRequest(timestamps=True) for _ in batch]
            eager = model.decode_batch(feats, lengths, requests)
            for _ in range(2):  # the first call captures, the second replays
                assert runner.decode_batch(feats, lengths, requests) == eager
    assert runner.stats.replays >= 8 and runner.stats.eager_batches == 0


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
def test_large_batches_replay_in_chunks_and_keep_each_items_result(parity_dir: Path) -> None:
    """Six items over buckets (1, 2): chunks of two, longest first, whatever order the batch came in."""
    family = parity_dir / "paraformer"
    model = _cuda_model(parity_dir, torch.float32)
    runner = ParaformerGraphs(model, GraphSettings(batch_buckets=(1, 2), warm_frames=(16, 16)))
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
    assert runner.stats.eager_batches == 0 and runner.stats.replays == 6


@pytest.mark.gpu
def test_a_coarser_decoder_token_step_gives_eager_text(parity_dir: Path) -> None:
    """Decoder graphs padded to 32 tokens: positions past each count are masked, the text is eager's."""
    family = parity_dir / "paraformer"
    model = _cuda_model(parity_dir, torch.float32)
    runner = ParaformerGraphs(model, GraphSettings(batch_buckets=(1, 4), warm_frames=(16, 16), token_step=32))
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
