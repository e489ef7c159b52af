"""Bounded admission of recognitions: beyond ``limit`` in flight, refuse at once with a retry hint.

Refusing early (RESOURCE_EXHAUSTED + RetryInfo) keeps latency bounded under overload and lets a
load balancer or the client's retry policy move the work elsewhere, instead of queueing without end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc

from service.errors import ApiError

__all__ = ["Admission"]


class Admission:
    """Counts recognitions and streams in flight on this server (one event loop, so no lock)."""

    def __init__(self, limit: int, retry_after_s: float) -> None:
        self._limit = limit
        self._retry_after_s = retry_after_s
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        if self._in_flight >= self._limit:
            raise ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the server is saturated ({self._in_flight} recognitions in flight); retry shortly",
                reason="OVERLOADED",
                retry_after_s=self._retry_after_s,
            )
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
