"""CUDA streams by role, made once per process and shared by every engine in it.

``torch.cuda.Stream()`` does not make a new stream: it hands out the next of a fixed pool of 32 per
device and priority, round robin. A process that makes engines one after another (the GPU tests do, a
server does not) wraps around the pool, and two roles that must never meet get the same stream: an
eager batch's host copy on the stream a graph is being captured on failed the capture ("Cannot copy
between CPU and CUDA tensors during CUDA graph capture", bench/results/2026-11-22-h100-s5-pagelock;
most likely also the capture invalidated in 2026-11-22-h200-mem2). Drawing each role's stream once keeps
the process under the pool's size, so roles stay apart; engines sharing a role's stream only queue
behind each other on it.
"""

from __future__ import annotations

import logging
import threading

import torch

__all__ = ["role_stream"]

log = logging.getLogger(__name__)

_streams: dict[tuple[int, str], torch.cuda.Stream] = {}
_lock = threading.Lock()
# Roles a process may draw; the pool has 32 and torch.cuda.graph's own default capture stream takes one.
MAX_ROLES = 24


def role_stream(device: torch.device, role: str) -> torch.cuda.Stream:
    """The process's stream for ``role`` on ``device`` (made on first use)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    with _lock:
        stream = _streams.get((index, role))
        if stream is None:
            if sum(1 for i, _ in _streams if i == index) >= MAX_ROLES:
                log.warning(
                    "CUDA stream role %s beyond the first %d: a pooled stream, not kept", role, MAX_ROLES
                )
                return torch.cuda.Stream(torch.device("cuda", index))
            stream = _streams[(index, role)] = torch.cuda.Stream(torch.device("cuda", index))
        return stream
