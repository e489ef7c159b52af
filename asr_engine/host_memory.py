"""Host buffers page-locked in place for CUDA, so a batch's audio goes to the GPU without a staging copy.

Segments from the front-end processes lie in shared-memory arenas (``remote/arena.py``). Joining a
batch's segments into the engine's pinned staging buffer was a CPU copy on the device thread: on H100
machines it took half of that thread's samples at ~18,000x (bench/results/2026-11-22-h100-s5-arena).
Registered with ``cudaHostRegister``, an arena is DMA-able as it lies, and each segment is copied to the
device asynchronously from where it already is.

A registered buffer stays registered (and referenced, so its mapping stays alive) until ``close``:
unregistering under a copy still in flight is not allowed, and arenas live as long as the engine (a new one
only comes with a restarted front-end).
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable

import numpy as np
import torch

__all__ = ["HostRegistry", "upload"]

log = logging.getLogger(__name__)

CUDA_HOST_REGISTER_PORTABLE = 1  # usable from every CUDA context of the process


class HostRegistry:
    """Address ranges of host buffers registered with CUDA; ``covers`` says whether an array lies in one."""

    def __init__(
        self,
        pin: Callable[[int, int], int] | None = None,
        unpin: Callable[[int], int] | None = None,
    ) -> None:
        """``pin(address, nbytes)`` / ``unpin(address)`` return a CUDA error code; CUDA's by default."""
        self._pin = pin or _cuda_register
        self._unpin = unpin or _cuda_unregister
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._buffers: list[np.ndarray] = []  # keeps each registered mapping alive
        self._lock = threading.Lock()

    def register(self, buffer: np.ndarray) -> bool:
        """Page-lock ``buffer`` in place; False (and a log line) where CUDA refuses or is absent."""
        if buffer.nbytes == 0:
            return False
        start = int(buffer.ctypes.data)
        error = self._pin(start, buffer.nbytes)
        if error != 0:
            log.warning(
                "cannot page-lock a %d MiB host buffer (CUDA error %d): its uploads are staged",
                buffer.nbytes >> 20,
                error,
            )
            return False
        with self._lock:
            at = bisect.bisect(self._starts, start)
            self._starts.insert(at, start)
            self._ends.insert(at, start + buffer.nbytes)
            self._buffers.insert(at, buffer)
        return True

    @property
    def registered(self) -> bool:
        return bool(self._starts)

    def covers(self, array: np.ndarray) -> bool:
        """True when ``array`` is contiguous float32 lying wholly inside one registered buffer."""
        if array.dtype != np.float32 or not array.flags.c_contiguous or array.nbytes == 0:
            return False
        start = int(array.ctypes.data)
        with self._lock:
            at = bisect.bisect(self._starts, start) - 1
            return at >= 0 and start + array.nbytes <= self._ends[at]

    def close(self) -> None:
        """Unregister every buffer (the caller has finished all copies from them)."""
        with self._lock:
            starts, self._starts, self._ends, self._buffers = self._starts, [], [], []
        for start in starts:
            error = self._unpin(start)
            if error != 0:
                log.warning("cudaHostUnregister failed with CUDA error %d", error)


def upload(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A small host array (an index, lengths) on ``device``, queued on the current stream, not waited for.

    Why: ``torch.from_numpy(a).to("cuda")`` copies from pageable memory, for which CUDA first synchronises
    the stream, and the blocking ``.to`` then waits for the copy: the device thread sat through everything
    already queued on its feature stream (the batch's audio upload, the previous fbank chunk) once per
    index it uploaded. Staged through torch's caching page-locked allocator instead, the copy is queued
    like any kernel; the allocator keeps the staging block until the copy has run.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def _cuda_register(address: int, nbytes: int) -> int:
    return int(torch.cuda.cudart().cudaHostRegister(address, nbytes, CUDA_HOST_REGISTER_PORTABLE))


def _cuda_unregister(address: int) -> int:
    return int(torch.cuda.cudart().cudaHostUnregister(address))
