"""CTC word spotting: find where a hotword's token sequence fits the frames better than the hypothesis.

A per-token boost inside the beam search cannot lift a rare word whose pieces score far below the
plain text at every step. The spotter instead compares whole spans after decoding: for each hotword it
finds, over the frame-level CTC log-probs, the frame window and alignment (tokens with optional blanks
between them) that maximise the hotword path's log-probability minus the decoded hypothesis path's over
the same frames. Where that difference plus the hotword's per-token bonus is positive, the words the
hypothesis put there are replaced by the hotword: the bonus has the meaning of the context graph's
(a log prior per token), but the comparison is exact over the span instead of pruned step by step.

The dynamic program runs over frames; each step is vectorised over the states of every target at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from asr_engine.decoding.ctc_timestamps import ctc_forced_align

__all__ = [
    "PieceClasses",
    "Spot",
    "SpotResult",
    "SpotTarget",
    "choose_spots",
    "hypothesis_path",
    "spot_hotwords",
    "spot_windows",
    "state_labels",
    "token_runs",
]

log = logging.getLogger(__name__)

NEG_INF = np.float32(-np.inf)


@dataclass(frozen=True)
class SpotTarget:
    """A token sequence to look for, its log bonus per token, and whether it may only start the text."""

    token_ids: tuple[int, ...]
    bonus: float
    text_start_only: bool = False


@dataclass(frozen=True)
class _Layout:
    """Targets packed into one state vector: ``t1, blank, t2, blank, ..., tL`` per target."""

    labels: np.ndarray  # (S,) token id of each state (blank for the states between tokens)
    advance: np.ndarray  # (S,) bool: may come from s-1 (not a target's first state)
    skip: np.ndarray  # (S,) bool: may come from s-2 (a token unlike the token two states back)
    first: np.ndarray  # (S,) bool: a target's first state, where a window may open
    last: np.ndarray  # (K,) index of each target's last state


def _layout(targets: Sequence[Sequence[int]], blank: int) -> _Layout:
    labels: list[int] = []
    advance: list[bool] = []
    skip: list[bool] = []
    first: list[bool] = []
    last: list[int] = []
    for seq in targets:
        if not seq:
            raise ValueError("a spotting target has no tokens")
        for j, token in enumerate(seq):
            if j:
                labels.append(blank)
                advance.append(True)
                skip.append(False)
                first.append(False)
            labels.append(int(token))
            advance.append(j > 0)
            skip.append(j > 0 and int(token) != int(seq[j - 1]))
            first.append(j == 0)
        last.append(len(labels) - 1)
    return _Layout(
        labels=np.asarray(labels, dtype=np.int64),
        advance=np.asarray(advance, dtype=bool),
        skip=np.asarray(skip, dtype=bool),
        first=np.asarray(first, dtype=bool),
        last=np.asarray(last, dtype=np.int64),
    )


def state_labels(targets: Sequence[Sequence[int]], blank: int) -> np.ndarray:
    """Token id of each packed state (the columns ``spot_windows`` expects in ``emissions``)."""
    return _layout(targets, blank).labels


def spot_windows(
    emissions: np.ndarray, reference: np.ndarray, targets: Sequence[Sequence[int]], *, blank: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Best window of each target ending at each frame, scored against the hypothesis path.

    emissions (T, S): log-probs of the packed states' labels (``state_labels(targets)``) per frame;
    reference (T,): the hypothesis path's log-prob per frame. Returns ``score`` (T, K) and ``start`` (T, K):
    for target k whose last token is emitted at frame t (the window's last frame), the largest
    ``sum(path log-prob - reference)`` over windows ``[start, t]`` that begin on its first token, and
    that window's first frame; -inf where no window fits. Ties keep the earlier-chosen predecessor
    (stay, then advance, then skip, then a fresh start), so the result is deterministic.
    """
    lay = _layout(targets, blank)
    t_len, s_len = emissions.shape
    if s_len != lay.labels.size:
        raise ValueError(f"expected {lay.labels.size} state columns, got {s_len}")
    rel = (emissions - reference[:, None]).astype(np.float32, copy=False)
    k_len = lay.last.size
    score_out = np.full((t_len, k_len), NEG_INF, dtype=np.float32)
    start_out = np.zeros((t_len, k_len), dtype=np.int64)
    score = np.full(s_len, NEG_INF, dtype=np.float32)
    start = np.zeros(s_len, dtype=np.int64)
    cand = np.empty((4, s_len), dtype=np.float32)
    starts = np.empty((4, s_len), dtype=np.int64)
    cols = np.arange(s_len)
    for t in range(t_len):
        cand[0] = score
        cand[1, 0] = NEG_INF
        cand[1, 1:] = score[:-1]
        cand[1, ~lay.advance] = NEG_INF
        cand[2, :2] = NEG_INF
        cand[2, 2:] = score[:-2]
        cand[2, ~lay.skip] = NEG_INF
        cand[3] = np.where(lay.first, np.float32(0.0), NEG_INF)
        starts[0] = start
        starts[1, 1:] = start[:-1]
        starts[2, 2:] = start[:-2]
        starts[3] = t
        choice = cand.argmax(axis=0)
        score = cand[choice, cols] + rel[t]
        start = starts[choice, cols]
        score_out[t] = score[lay.last]
        start_out[t] = start[lay.last]
    return score_out, start_out


def token_runs(path: np.ndarray, *, blank: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokens of a CTC frame path with their frame spans: ``(ids, first, last)``, last inclusive.

    A token is a run of one non-blank label (a repeat needs a blank between, as CTC collapses it).
    """
    path = np.asarray(path, dtype=np.int64)
    if path.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    new = np.ones(path.size, dtype=bool)
    new[1:] = path[1:] != path[:-1]
    heads = np.nonzero(new & (path != blank))[0]
    ends = np.ones(path.size, dtype=bool)
    ends[:-1] = path[1:] != path[:-1]
    tails = np.nonzero(ends & (path != blank))[0]
    return path[heads], heads, tails


@dataclass(frozen=True)
class PieceClasses:
    """Per vocabulary id: how pieces group into words, and which ids may never be replaced.

    A piece ``continues`` the word before it when it has no ``▁`` and begins with an ASCII letter or
    digit, and the piece before it ends with one or is a lone ``▁`` (``open_end``: "▁ y" is the word
    " y", so a replacement that takes the ``▁`` takes the letter too); anything else (a ``▁`` piece, a
    CJK character) starts a new word. ``protected`` ids (tags, control pieces) are never part of a
    replacement.
    """

    continues: np.ndarray  # (V,) bool
    open_end: np.ndarray  # (V,) bool
    protected: np.ndarray  # (V,) bool

    @classmethod
    def from_pieces(cls, pieces: Sequence[str], protected_ids: Sequence[int]) -> PieceClasses:
        def alnum(ch: str) -> bool:
            return ch.isascii() and ch.isalnum()

        continues = np.asarray([bool(p) and p[0] != "▁" and alnum(p[0]) for p in pieces], dtype=bool)
        open_end = np.asarray([bool(p) and (alnum(p[-1]) or p == "▁") for p in pieces], dtype=bool)
        protected = np.zeros(len(pieces), dtype=bool)
        protected[np.asarray(list(protected_ids), dtype=np.int64)] = True
        open_end &= ~protected
        return cls(continues=continues, open_end=open_end, protected=protected)

    def word_ids(self, ids: np.ndarray) -> np.ndarray:
        """Word index of each token of ``ids`` (tokens of one word share it)."""
        if ids.size == 0:
            return np.zeros(0, dtype=np.int64)
        joins = np.zeros(ids.size, dtype=bool)
        joins[1:] = self.continues[ids[1:]] & self.open_end[ids[:-1]]
        return np.cumsum(~joins) - 1


@dataclass(frozen=True)
class Spot:
    """One accepted replacement: target ``target`` spans frames ``[start, end]`` (inclusive) and takes the
    place of tokens ``[first_token, end_token)`` of the hypothesis; ``gain`` is its log-score advantage
    (bonus included) over what it replaces."""

    target: int
    start: int
    end: int
    first_token: int
    end_token: int
    gain: float


@dataclass(frozen=True)
class SpotResult:
    token_ids: tuple[int, ...]
    spots: tuple[Spot, ...]


def _span(lo: int, hi: int, word: np.ndarray, *, whole_words: bool) -> tuple[int, int]:
    """Token range [lo, hi) widened so that no word is cut at its end, nor, with ``whole_words``, at its
    start. Without it, the leading pieces of a word before the range stay: the replacement starts a new
    word there (``please call|l w`` -> ``please call thorvald``). An empty range (an insertion) inside a
    word takes the rest of that word."""
    n = word.size
    if lo == hi:
        if not 0 < lo < n or word[lo - 1] != word[lo]:
            return lo, hi
        hi = lo + 1
    if whole_words:
        lo = int(np.searchsorted(word, word[lo], side="left"))
    hi = int(np.searchsorted(word, word[hi - 1], side="right"))
    return lo, hi


def choose_spots(
    ids: Sequence[int],
    path: np.ndarray,
    reference: np.ndarray,
    blank_log_probs: np.ndarray,
    score: np.ndarray,
    start: np.ndarray,
    targets: Sequence[SpotTarget],
    classes: PieceClasses,
    *,
    first_frame: int = 0,
    margin: float = 0.0,
    min_token_log_prob: float | None = None,
    blank: int = 0,
) -> SpotResult:
    """Replace hypothesis words by the spotted targets that beat them by more than ``margin``.

    ``path`` (T,) is the hypothesis' frame path (its tokens are ``ids``), ``reference`` (T,) its
    log-prob per frame and ``blank_log_probs`` (T,) the blank's; ``score``/``start`` come from
    ``spot_windows`` over frames ``first_frame:``. Every hypothesis word that a window touches is
    replaced whole; frames of those words outside the window are charged as blanks. Candidates are taken
    best first by that charged gain (``Spot.gain``); one that overlaps an accepted one (in frames or
    tokens) is dropped.

    ``min_token_log_prob``: a window is a candidate only where the target's own alignment there averages
    at least this log-prob per token. The comparison with the hypothesis is relative, so a large bonus
    alone can place a name over confident speech that sounds nothing like it; the floor asks for some
    absolute acoustic evidence, which keeps a strong boost from turning into false insertions.
    """
    tokens, first, last = token_runs(path, blank=blank)
    ids_arr = np.asarray(list(ids), dtype=np.int64)
    if not np.array_equal(tokens, ids_arr):
        log.warning("the frame path has %d tokens, the hypothesis %d; no spotting", tokens.size, len(ids))
        return SpotResult(tuple(int(i) for i in ids), ())
    word = classes.word_ids(ids_arr)
    protected = classes.protected[ids_arr] if ids_arr.size else np.zeros(0, dtype=bool)
    text_start = int(np.argmin(protected)) if not protected.all() else ids_arr.size
    lengths = np.asarray([len(t.token_ids) for t in targets], dtype=np.float32)
    bonuses = np.asarray([t.bonus for t in targets], dtype=np.float32)
    gains = score + bonuses * lengths
    if min_token_log_prob is not None and score.size:
        # the target path's absolute log-prob over its window: score is relative to the reference
        cum = np.concatenate([[0.0], np.cumsum(reference[first_frame:], dtype=np.float64)])
        ends = np.arange(score.shape[0])[:, None] + 1
        absolute = score + (cum[ends] - cum[start]).astype(np.float32)
        with np.errstate(invalid="ignore"):
            gains = np.where(absolute >= min_token_log_prob * lengths, gains, NEG_INF)
    # a target that begins without a word break would glue onto the piece before it: replace whole words
    glues = np.asarray([classes.continues[t.token_ids[0]] for t in targets], dtype=bool)
    t_idx, k_idx = np.nonzero(gains > margin)
    cost = blank_log_probs - reference  # charge for turning a hypothesis frame into a blank
    # every candidate's gain is settled (the charge for the frames outside its window included) before
    # any is taken: ranked by the window's score alone, a window that fits well but leaves much of the
    # words it replaces uncovered would go first and shut out a better replacement of the same words
    cands: list[tuple[float, int, int, Spot, int, int]] = []
    for t, k in zip(t_idx.tolist(), k_idx.tolist(), strict=True):
        s, e = int(start[t, k]) + first_frame, t + first_frame
        lo = int(np.searchsorted(last, s, side="left"))
        hi = int(np.searchsorted(first, e, side="right"))
        lo, hi = _span(lo, max(lo, hi), word, whole_words=bool(glues[k]))
        if protected[lo:hi].any() or (targets[k].text_start_only and lo != text_start):
            continue
        lo_frame = min(s, int(first[lo])) if hi > lo else s
        hi_frame = max(e, int(last[hi - 1])) if hi > lo else e
        outside = np.zeros(cost.size, dtype=bool)
        for i in range(lo, hi):
            outside[first[i] : last[i] + 1] = True
        outside[s : e + 1] = False
        gain = float(gains[t, k] + cost[outside].sum())
        if gain > margin:
            spot = Spot(target=k, start=s, end=e, first_token=lo, end_token=hi, gain=gain)
            cands.append((gain, t, k, spot, lo_frame, hi_frame))
    taken: list[Spot] = []
    covers: list[tuple[int, int, int, int]] = []  # token range and frame span of each accepted spot
    for _, _, _, spot, lo_frame, hi_frame in sorted(cands, key=lambda c: (-c[0], c[1], c[2])):
        lo, hi = spot.first_token, spot.end_token
        if any(
            (a_lo_frame <= hi_frame and lo_frame <= a_hi_frame) or (hi > lo and a_lo < hi and lo < a_hi)
            for a_lo, a_hi, a_lo_frame, a_hi_frame in covers
        ):
            continue
        covers.append((lo, hi, lo_frame, hi_frame))
        taken.append(spot)
    out: list[int] = []
    at = 0
    for spot in sorted(taken, key=lambda p: (p.first_token, p.start)):
        out.extend(int(i) for i in ids_arr[at : spot.first_token])
        out.extend(targets[spot.target].token_ids)
        at = max(at, spot.end_token)
    out.extend(int(i) for i in ids_arr[at:])
    return SpotResult(tuple(out), tuple(taken))


def hypothesis_path(log_probs: torch.Tensor, ids: Sequence[int], *, blank: int = 0) -> np.ndarray | None:
    """The best frame path (T,) of the token sequence ``ids`` (its Viterbi alignment), or None if none fits.

    For a greedy hypothesis this is the per-frame argmax; for a beam search result, its forced alignment.
    """
    if not ids:
        return np.full(log_probs.shape[0], blank, dtype=np.int64)
    ext = torch.full((2 * len(ids) + 1,), blank, dtype=torch.int64)
    ext[1::2] = torch.tensor(list(ids), dtype=torch.int64)
    gathered = log_probs.index_select(1, ext.to(log_probs.device)).float().cpu().numpy()
    states = ctc_forced_align(gathered, ids, blank=blank)
    return None if states is None else ext.numpy()[states]


def spot_hotwords(
    log_probs: torch.Tensor,
    ids: Sequence[int],
    targets: Sequence[SpotTarget],
    classes: PieceClasses,
    *,
    path: np.ndarray | None = None,
    first_frame: int = 0,
    margin: float = 0.0,
    min_token_log_prob: float | None = None,
    blank: int = 0,
) -> SpotResult:
    """Hypothesis ``ids`` with its words replaced where a target fits the frames better (``choose_spots``).

    log_probs (T, V) of one utterance, any device: only the columns the targets use, the blank and the
    hypothesis path's values leave it. ``path`` is the hypothesis' frame path if known (the argmax for a
    greedy result), else its forced alignment is computed. Frames before ``first_frame`` (a prompt) are
    not searched.
    """
    if not targets:
        return SpotResult(tuple(int(i) for i in ids), ())
    if path is None:
        path = hypothesis_path(log_probs, ids, blank=blank)
        if path is None:
            return SpotResult(tuple(int(i) for i in ids), ())
    seqs = [t.token_ids for t in targets]
    labels = torch.from_numpy(state_labels(seqs, blank)).to(log_probs.device)
    path_t = torch.from_numpy(path).to(log_probs.device)
    emissions = log_probs.index_select(1, labels).float().cpu().numpy()
    reference = log_probs.gather(1, path_t[:, None])[:, 0].float().cpu().numpy()
    blank_lp = log_probs[:, blank].float().cpu().numpy()
    score, start = spot_windows(emissions[first_frame:], reference[first_frame:], seqs, blank=blank)
    return choose_spots(
        ids,
        path,
        reference,
        blank_lp,
        score,
        start,
        targets,
        classes,
        first_frame=first_frame,
        margin=margin,
        min_token_log_prob=min_token_log_prob,
        blank=blank,
    )
