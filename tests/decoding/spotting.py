"""Small synthetic CTC outputs for the word-spotter tests: an 8-piece vocabulary and its log-probs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from asr_engine.decoding.word_spotter import PieceClasses

V = 8
LOW = np.log(1e-4)  # every piece a frame does not name
#        blank  tag      ▁a    b     ▁c    d     ▁e    ▁f
PIECES = ["<unk>", "<|x|>", "▁a", "b", "▁c", "d", "▁e", "▁f"]


def frame_log_probs(
    labels: Sequence[int], extra: Mapping[int, Mapping[int, float]] | None = None
) -> np.ndarray:
    """(T, V) float32 log-probs: each frame puts 0.9 on its label and ``extra[t][token]`` on runners-up."""
    lp = np.full((len(labels), V), LOW, dtype=np.float32)
    for t, label in enumerate(labels):
        lp[t, label] = np.log(0.9)
        for token, p in (extra or {}).get(t, {}).items():
            lp[t, token] = np.log(p)
    return lp


def piece_classes(pieces: Sequence[str] = PIECES) -> PieceClasses:
    """Word grouping of ``pieces``, the blank and the tag protected."""
    return PieceClasses.from_pieces(list(pieces), [0, 1])
