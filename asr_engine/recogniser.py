"""Where an engine's cut speech segments are recognised, and what its request path reads of the model.

The engine's pipeline (decode, VAD, post-processing, assembly) does not care whether a segment is
decoded by its own batcher and model or by a model in another process (``asr_engine.remote``): both
are a ``SegmentRecogniser``. A remote model is described by its ``ModelInfo``, which carries the same
facts as a loaded ``AsrModel``, so both satisfy ``ModelFacts``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

import numpy as np

from asr_engine.models.base import DecodeRequest, Hypothesis

__all__ = ["ModelFacts", "SegmentRecogniser"]


class ModelFacts(Protocol):
    """The facts about a model that option checks, ``ModelInfo`` and transcript assembly need."""

    @property
    def family(self) -> str: ...

    @property
    def languages(self) -> tuple[str, ...]: ...

    @property
    def hotword_mode(self) -> str: ...

    @property
    def rich_tags(self) -> bool: ...


class SegmentRecogniser(Protocol):
    """Turns one 16 kHz float32 speech segment into the model's ``Hypothesis``."""

    async def start(self) -> None:
        """Ready to recognise (a local batcher warms its model up; a remote one connects)."""
        ...

    async def close(self) -> None: ...

    def recognise(self, samples: np.ndarray, request: DecodeRequest) -> Awaitable[Hypothesis]:
        """Queue one segment; the samples must stay unchanged until the result arrives."""
        ...
