"""What every speech-recognition model family offers the engine.

The engine computes features (``asr_engine.features``) for each speech segment, pads them into a batch and
hands the batch to ``AsrModel.decode_batch`` together with one ``DecodeRequest`` per item. A family module
holds the ``nn.Module``s; its decoding helpers live in ``asr_engine.decoding``. The result of an item must
not depend on what else is in the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from asr_engine.types import Hotword, Word

__all__ = ["AsrModel", "DecodeRequest", "FrontendConfig", "Hypothesis"]


@dataclass(frozen=True, kw_only=True)
class FrontendConfig:
    """Feature settings read from a model's ``frontend_conf`` and ``am.mvn``.

    ``cmvn_shift``/``cmvn_scale`` are float32 vectors of ``n_mels * lfr_m`` entries, or None for no CMVN.
    """

    sample_rate: int = 16000
    n_mels: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    lfr_m: int = 7
    lfr_n: int = 6
    dither: float = 0.0
    cmvn_shift: torch.Tensor | None = None
    cmvn_scale: torch.Tensor | None = None

    @property
    def feature_dim(self) -> int:
        return self.n_mels * self.lfr_m


@dataclass(frozen=True, kw_only=True)
class DecodeRequest:
    """Per-utterance decoding choices (a batch may mix requests with different choices)."""

    language: str | None = None
    itn: bool = False
    timestamps: bool = False
    hotwords: tuple[Hotword, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Hypothesis:
    """One utterance's decoded output, exactly as FunASR would return it for a single-utterance call.

    ``text`` is FunASR's ``text``; ``words`` carries its ``timestamp`` list (ms from the segment start) when
    timestamps were asked for, paired with the words they belong to.
    """

    token_ids: tuple[int, ...]
    text: str
    words: tuple[Word, ...] = ()
    language: str = ""
    tags: tuple[str, ...] = ()


@runtime_checkable
class AsrModel(Protocol):
    """A loaded ASR model: fixed at load time, shared by all requests, never mutated by one."""

    family: str
    frontend: FrontendConfig
    languages: tuple[str, ...]
    hotword_mode: str  # "none" | "context_graph" | "seaco"
    rich_tags: bool

    def decode_batch(
        self, feats: torch.Tensor, feat_lengths: torch.Tensor, requests: Sequence[DecodeRequest]
    ) -> list[Hypothesis]:
        """Decode a padded batch ``feats`` (B, T, D) with valid lengths ``feat_lengths`` (B,)."""
        ...
