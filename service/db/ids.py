"""Application-assigned 63-bit BIGINT ids, time-ordered like MyBatis-Plus's ASSIGN_ID (snowflake).

Layout (most significant first): 41 bits of milliseconds since 2024-01-01 UTC (good until 2093),
10 bits of worker id, 12 bits of sequence. The worker id comes from ``LINGTING_WORKER_ID``
(0..1023, set it per replica for a hard guarantee) or else is drawn at random per process, so
two replicas collide only if they draw the same worker id *and* mint in the same millisecond
with the same sequence; the primary key would then reject the insert rather than corrupt data.
Ids fit a Java ``long`` and sort by creation time, which keeps B-tree inserts append-only.
"""

from __future__ import annotations

import os
import secrets
import threading
import time

__all__ = ["EPOCH_MS", "IdGenerator", "new_id"]

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
_WORKER_BITS = 10
_SEQUENCE_BITS = 12
_MAX_WORKER = (1 << _WORKER_BITS) - 1
_MAX_SEQUENCE = (1 << _SEQUENCE_BITS) - 1


def _worker_from_env() -> int:
    raw = os.environ.get("LINGTING_WORKER_ID")
    if raw is None or raw == "":
        return secrets.randbelow(_MAX_WORKER + 1)
    worker = int(raw)
    if not 0 <= worker <= _MAX_WORKER:
        raise ValueError(f"LINGTING_WORKER_ID must be in 0..{_MAX_WORKER}, got {worker}")
    return worker


class IdGenerator:
    """Thread-safe snowflake generator; tolerates the wall clock stepping backwards by waiting."""

    def __init__(self, worker_id: int | None = None) -> None:
        self._worker = _worker_from_env() if worker_id is None else worker_id
        if not 0 <= self._worker <= _MAX_WORKER:
            raise ValueError(f"worker_id must be in 0..{_MAX_WORKER}, got {self._worker}")
        self._lock = threading.Lock()
        self._last_ms = -1
        self._sequence = 0

    @property
    def worker_id(self) -> int:
        return self._worker

    def next_id(self) -> int:
        with self._lock:
            now = self._now_ms()
            if now < self._last_ms:  # clock stepped back: never reuse a past timestamp
                now = self._last_ms
            if now == self._last_ms:
                self._sequence = (self._sequence + 1) & _MAX_SEQUENCE
                if self._sequence == 0:  # 4096 ids this millisecond: move to the next one
                    while now <= self._last_ms:
                        time.sleep(0.0001)
                        now = max(self._now_ms(), now)
            else:
                self._sequence = 0
            self._last_ms = now
            return (
                ((now - EPOCH_MS) << (_WORKER_BITS + _SEQUENCE_BITS))
                | (self._worker << _SEQUENCE_BITS)
                | self._sequence
            )

    @staticmethod
    def _now_ms() -> int:
        return time.time_ns() // 1_000_000


_default = IdGenerator()


def new_id() -> int:
    """Next id from the process-wide generator."""
    return _default.next_id()
