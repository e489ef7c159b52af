"""Host buffers page-locked for direct uploads: the registry's ranges, and the engine's use of them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch

from asr_engine.engine import Engine, EngineConfig, _SegmentJob
from asr_engine.host_memory import HostRegistry, upload
from asr_engine.models.base import DecodeRequest
from asr_engine.types import TranscribeOptions
from tests.models.conftest import file_samples

RAW = TranscribeOptions(itn=False, punctuation=False, vad=False)


class _Driver:
    """Stands in for cudaHostRegister on a machine without CUDA: it keeps what was registered."""

    def __init__(self, refuse: bool = False) -> None:
        self.pinned: dict[int, int] = {}
        self.refuse = refuse

    def pin(self, address: int, nbytes: int) -> int:
        if self.refuse:
            return 1
        self.pinned[address] = nbytes
        return 0

    def unpin(self, address: int) -> int:
        return 0 if self.pinned.pop(address, None) is not None else 1


def test_covers_only_float32_arrays_wholly_inside_a_registered_buffer() -> None:
    driver = _Driver()
    registry = HostRegistry(driver.pin, driver.unpin)
    first, second = np.zeros(1000, dtype=np.float32), np.zeros(500, dtype=np.float32)
    assert registry.register(second) and registry.register(first) and registry.registered
    assert registry.covers(first[10:20]) and registry.covers(second) and registry.covers(first[999:])
    assert not registry.covers(np.zeros(10, dtype=np.float32))  # elsewhere
    assert not registry.covers(first[::2])  # not contiguous
    assert not registry.covers(first[:0])  # empty
    wider = np.zeros(2000, dtype=np.float32)
    assert not registry.covers(wider[:20])
    as_float64 = np.zeros(100, dtype=np.float64)
    registry.register(as_float64)
    assert not registry.covers(as_float64)
    registry.close()
    assert not driver.pinned and not registry.registered and not registry.covers(first[10:20])


def test_a_refused_registration_leaves_nothing_covered() -> None:
    driver = _Driver(refuse=True)
    registry = HostRegistry(driver.pin, driver.unpin)
    buffer = np.zeros(100, dtype=np.float32)
    assert not registry.register(buffer) and not registry.covers(buffer)


def test_page_lock_is_a_no_op_on_a_cpu(parity_dir: Path) -> None:
    engine = Engine.load(parity_dir / "paraformer" / "model", device="cpu", config=EngineConfig(vad="none"))
    assert not engine.page_lock(np.zeros(1024, dtype=np.float32))


@pytest.mark.gpu
def test_uploads_from_a_page_locked_buffer_give_the_same_text(parity_dir: Path) -> None:
    family = parity_dir / "paraformer"
    samples = file_samples(family / "audio" / "en_16k.wav")
    buffer = np.zeros(samples.size + 4096, dtype=np.float32)
    view = buffer[1024 : 1024 + samples.size]
    view[:] = samples

    async def both() -> tuple[str, str]:
        engine = Engine.load(
            family / "model", device="cuda", dtype="float32", config=EngineConfig(vad="none")
        )
        await engine.start()
        try:
            assert engine.page_lock(buffer) and engine._host_memory.covers(view)
            plain = await engine.transcribe_samples(samples.copy(), RAW)
            locked = await engine.transcribe_samples(view, RAW)
            return plain.text_raw, locked.text_raw
        finally:
            await engine.close()

    plain, locked = asyncio.run(both())
    assert plain and locked == plain


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_upload_gives_the_array_on_the_device(device: str) -> None:
    """``upload``: the same values on the device, from a temporary the caller may drop at once."""
    rows = np.arange(3 * 7, dtype=np.int64).reshape(3, 7)[:, ::2]  # not contiguous
    on_device = upload(rows, torch.device(device))
    del rows
    assert on_device.device.type == device
    assert on_device.cpu().tolist() == np.arange(21).reshape(3, 7)[:, ::2].tolist()


@pytest.mark.gpu
def test_a_batch_of_page_locked_segments_uploads_end_to_end(parity_dir: Path) -> None:
    """Segments lying apart in one registered buffer reach the device laid end to end, in batch order."""
    engine = Engine.load(parity_dir / "paraformer" / "model", device="cuda", config=EngineConfig(vad="none"))
    buffer = np.random.default_rng(3).standard_normal(40_000).astype(np.float32)
    assert engine.page_lock(buffer)
    views = [buffer[30_000:31_000], buffer[100:5_100], buffer[9_000:9_016]]
    jobs = [_SegmentJob(view, DecodeRequest()) for view in views]
    flat, sizes = engine._waves_on_device(jobs)
    torch.cuda.synchronize()
    assert sizes == [1_000, 5_000, 16]
    assert np.array_equal(flat.cpu().numpy(), np.concatenate(views))
