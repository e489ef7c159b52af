"""CUDA caching-allocator settings and readings for the engine.

Expandable segments (``PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True``) let the allocator grow a segment
instead of caching many fixed ones. On an H200 under c=256 through gRPC (bench/results/2026-11-22-h200-mem2)
the server process peaked at 3.5 GB with them and 5.1 GB without, at the same throughput (an earlier "+31 %"
reading was the py-spy-sampled first level of its call, not the allocator). They are opt-in
(``EngineConfig.expandable_segments``, setting ``cuda_expandable_segments``) because one GPU test in that call
saw a CUDA-graph capture invalidated (``cudaErrorStreamCaptureInvalidated``) in a process that had them on,
which sends the engine to eager mode for good. The likely cause was not the allocator: pooled CUDA streams
shared by accident between an eager batch and a capture in a process that made many engines (fixed by
``cuda_streams``); capture tests in a fresh process with expandable segments pass both ways on an H100
(bench/results/2026-11-22-h100-s5). Captures still run with fixed segments (``fixed_segments``) while the
rest of the process keeps expandable ones, and the default waits for a gRPC run of today's code with them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import torch

__all__ = [
    "ALLOC_CONF_ENV",
    "expandable_segments_requested",
    "fixed_segments",
    "prefer_expandable_segments",
    "reserved_by_pool",
]

log = logging.getLogger(__name__)

ALLOC_CONF_ENV = "PYTORCH_CUDA_ALLOC_CONF"


def prefer_expandable_segments() -> bool:
    """Ask the allocator for expandable segments, unless the operator configured it; True if applied.

    The allocator reads ``PYTORCH_CUDA_ALLOC_CONF`` when CUDA starts in the process, so this must run
    before the first CUDA allocation (``Engine.load`` calls it first thing); later it changes nothing
    and says so.
    """
    if ALLOC_CONF_ENV in os.environ:
        log.info("%s=%s kept as set", ALLOC_CONF_ENV, os.environ[ALLOC_CONF_ENV])
        return False
    if torch.cuda.is_initialized():
        log.info("CUDA already started in this process: expandable segments not applied")
        return False
    os.environ[ALLOC_CONF_ENV] = "expandable_segments:True"
    return True


def expandable_segments_requested() -> bool:
    """Whether the allocator settings in the environment ask for expandable segments."""
    conf = ",".join(os.environ.get(name, "") for name in (ALLOC_CONF_ENV, "PYTORCH_ALLOC_CONF"))
    return "expandable_segments:true" in conf.replace(" ", "").lower()


@contextlib.contextmanager
def fixed_segments(enabled: bool = True) -> Iterator[None]:
    """Segments the allocator makes inside are fixed ones, where expandable segments are on.

    For CUDA-graph captures: a capture whose pool grew through expandable segments was once invalidated
    (module docstring); fixed segments are what every capture used before. The setting is process-wide,
    so other threads' new segments meanwhile are fixed too, which only costs them some packing.
    """
    setter = getattr(torch.cuda.memory, "_set_allocator_settings", None)
    if not enabled or setter is None or not expandable_segments_requested():
        yield
        return
    setter("expandable_segments:False")
    try:
        yield
    finally:
        setter("expandable_segments:True")


def reserved_by_pool(device: torch.device) -> str:
    """Reserved CUDA memory now, split into CUDA-graph pools and each stream's share of the default pool.

    Why: the peak alone did not say whether the graphs, the streams of device workers and eager redos, or
    batches' activations held the memory above the 4 GB target.
    """
    index = device.index if device.index is not None else torch.cuda.current_device()
    graphs, streams = 0, dict[int, int]()
    for segment in torch.cuda.memory_snapshot():
        if segment.get("device", index) != index:
            continue
        size = int(segment["total_size"])
        if tuple(segment.get("segment_pool_id", (0, 0))) != (0, 0):
            graphs += size
        else:
            streams[segment["stream"]] = streams.get(segment["stream"], 0) + size
    per_stream = ",".join(f"{v / 2**20:.0f}" for v in sorted(streams.values(), reverse=True))
    return f"graph_pools_mib={graphs / 2**20:.0f} stream_mib=[{per_stream}]"
