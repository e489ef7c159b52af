"""CTC forced alignment and SenseVoice's word timestamps (funasr-spec §8.3).

FunASR times SenseVoice's words by re-tokenising the decoded text, force-aligning those ids to the CTC
log-probs of the speech frames, and merging pieces into words. ``ctc_forced_align`` is a Viterbi pass
over the blank-interleaved targets, vectorised over the trellis states (one numpy step per frame), with
FunASR's tie-breaking: stay, then advance by one, then skip a blank; at the end, the last token beats the
trailing blank on a tie.

Where FunASR breaks we give the evident answer instead: a piece that re-encodes to several ids gets the
span from its first id's first frame to its last id's last frame (FunASR pairs groups and pieces one to
one and raises IndexError); a target sequence that cannot fit into the frames yields no timestamps.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import sentencepiece as spm
import torch

from asr_engine.types import Word

__all__ = [
    "FRAME_MS",
    "ctc_forced_align",
    "merge_pieces",
    "piece_spans",
    "sensevoice_words",
]

log = logging.getLogger(__name__)

FRAME_MS = 60  # one LFR frame (6 x 10 ms)
_HALF_FRAME_MS = 30
# FunASR's id for a piece that encodes to nothing (a lone "▁"); an arbitrary id of the released vocabulary.
FUNASR_EMPTY_PIECE_ID = 124
_SPACE = "▁"


def ctc_forced_align(log_probs: np.ndarray, targets: Sequence[int], *, blank: int = 0) -> np.ndarray | None:
    """Trellis state per frame of the best CTC path through ``targets``, or None if none fits.

    log_probs: (T, S) float32 scores of the extended label sequence ``[blank, t1, blank, ..., tL, blank]``
    (S = 2L + 1), i.e. the emission matrix already gathered at those labels. State 2j+1 is target j.
    """
    t_len, s_len = log_probs.shape
    n = len(targets)
    if s_len != 2 * n + 1:
        raise ValueError(f"expected {2 * n + 1} trellis columns, got {s_len}")
    if t_len == 0:
        return None
    ext = np.full(s_len, blank, dtype=np.int64)
    ext[1::2] = np.asarray(targets, dtype=np.int64)
    # A skip from s-2 is allowed into a token that differs from the token two states back.
    can_skip = np.zeros(s_len, dtype=bool)
    can_skip[2:] = ext[2:] != ext[:-2]
    neg_inf = np.float32(-np.inf)
    score = np.full(s_len, neg_inf, dtype=np.float32)
    score[0] = log_probs[0, 0]
    if s_len > 1:
        score[1] = log_probs[0, 1]
    back = np.zeros((t_len, s_len), dtype=np.int8)
    prev = np.empty((3, s_len), dtype=np.float32)
    for t in range(1, t_len):
        prev[0] = score
        prev[1, 0] = neg_inf
        prev[1, 1:] = score[:-1]
        prev[2, :2] = neg_inf
        prev[2, 2:] = np.where(can_skip[2:], score[:-2], neg_inf)
        choice = prev.argmax(axis=0)  # first maximum: stay, then +1, then +2
        score = log_probs[t] + np.take_along_axis(prev, choice[None, :], axis=0)[0]
        back[t] = choice
    # Ending on the last token beats ending on the trailing blank when they tie.
    end = 2 * n - 1 if n and score[2 * n - 1] >= score[2 * n] else 2 * n
    if not np.isfinite(score[end]):
        return None
    path = np.empty(t_len, dtype=np.int64)
    path[-1] = end
    for t in range(t_len - 1, 0, -1):
        path[t - 1] = path[t] - back[t, path[t]]
    return path


def piece_spans(path: np.ndarray, counts: Sequence[int]) -> list[tuple[int, int]]:
    """Frame span [start, end) of each piece, piece ``k`` owning the next ``counts[k]`` targets.

    ``path`` is a complete alignment from ``ctc_forced_align``: monotone, every target visited.
    """
    frames = np.nonzero(path % 2 == 1)[0]
    target_of_frame = path[frames] // 2  # non-decreasing
    spans: list[tuple[int, int]] = []
    at = 0
    for count in counts:
        lo = int(np.searchsorted(target_of_frame, at, side="left"))
        hi = int(np.searchsorted(target_of_frame, at + count - 1, side="right"))
        spans.append((int(frames[lo]), int(frames[hi - 1]) + 1))
        at += count
    return spans


def _start_ms(frame: int) -> int:
    # Same float expressions as FunASR (seconds, then x1000 truncated).
    seconds = max((frame * FRAME_MS - _HALF_FRAME_MS) / 1000, 0)
    return int(seconds * 1000)


def _end_ms(frame: int, speech_frames: int) -> int:
    seconds = (frame * FRAME_MS - _HALF_FRAME_MS) / 1000
    # FunASR's cap is a float32 tensor; min() keeps it only when it compares smaller in float32.
    cap = np.float32(speech_frames * FRAME_MS - _HALF_FRAME_MS) / np.float32(1000)
    if cap < np.float32(seconds):
        return int(np.float32(cap * np.float32(1000)))
    return int(seconds * 1000)


def merge_pieces(entries: Sequence[tuple[str, int, int]]) -> list[Word]:
    """FunASR's piece-to-word merge: skip "▁", "▁x" starts a word, ASCII letters glue to ASCII letters.

    The very first entry is kept verbatim (a leading "▁" included), as FunASR does.
    """
    texts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    prev: str | None = None
    for i, (piece, start, end) in enumerate(entries):
        if piece == _SPACE:
            continue
        if i > 0 and piece.startswith(_SPACE):
            piece = piece[1:]
        elif i > 0 and prev is not None and _ascii_letters(prev) and _ascii_letters(piece):
            piece = prev + piece
            texts[-1] = piece
            ends[-1] = end
            prev = piece
            continue
        texts.append(piece)
        starts.append(start)
        ends.append(end)
        prev = piece
    return [Word(text=t, start_ms=s, end_ms=e) for t, s, e in zip(texts, starts, ends, strict=True)]


def _ascii_letters(text: str) -> bool:
    return text.isalpha() and text.isascii()


def sensevoice_words(
    codec: spm.SentencePieceProcessor,
    text: str,
    speech_log_probs: torch.Tensor,
    *,
    blank: int = 0,
    prompt_pieces: int = 4,
    empty_piece_id: int = FUNASR_EMPTY_PIECE_ID,
) -> tuple[Word, ...]:
    """Word timestamps (ms from the segment start) of SenseVoice's decoded ``text``.

    ``speech_log_probs`` (T_s, V): CTC log-probs of the speech frames only (the 4 prompt frames removed),
    any device, float32. The first ``prompt_pieces`` pieces of the re-tokenised text are dropped as tags.
    """
    pieces = codec.EncodeAsPieces(text)[prompt_pieces:]
    piece_ids = [codec.EncodeAsIds(p) or [empty_piece_id] for p in pieces]
    targets = [i for ids in piece_ids for i in ids]
    if not targets:
        return ()
    lp = speech_log_probs.float()
    best = lp.argmax(dim=-1)
    blank_col = torch.where(best == blank, torch.zeros_like(lp[:, blank]), lp[:, blank])
    ext = torch.full((2 * len(targets) + 1,), blank, dtype=torch.int64)
    ext[1::2] = torch.tensor(targets, dtype=torch.int64)
    ext = ext.to(lp.device)
    gathered = lp.index_select(1, ext)
    gathered[:, ext == blank] = blank_col[:, None]
    path = ctc_forced_align(gathered.cpu().numpy(), targets, blank=blank)
    if path is None:
        log.warning("no CTC alignment of %d pieces into %d frames; no timestamps", len(pieces), lp.shape[0])
        return ()
    speech_frames = int(lp.shape[0])
    spans = piece_spans(path, [len(ids) for ids in piece_ids])
    entries = [
        (piece, _start_ms(s), _end_ms(e, speech_frames)) for piece, (s, e) in zip(pieces, spans, strict=True)
    ]
    return tuple(merge_pieces(entries))
