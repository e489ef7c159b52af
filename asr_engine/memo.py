"""A process-wide, thread-safe cache of values built once per key (filter kernels, windows, mel banks).

Device threads and the event loop ask for the same constant tensors; building one twice in a race is
harmless (the same value), so the lock guards only the dictionary, never a build.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["BuildOnce"]

V = TypeVar("V")


class BuildOnce(Generic[V]):
    """``get(key, build)``: the value stored for ``key``, built by ``build()`` the first time."""

    def __init__(self) -> None:
        self._values: dict[Hashable, V] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        with self._lock:
            hit = self._values.get(key)
        if hit is None:
            hit = build()
            with self._lock:
                self._values[key] = hit
        return hit
