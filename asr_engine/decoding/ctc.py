"""CTC decoding: batched greedy search on the device, and prefix beam search with hotword biasing.

Greedy search is what FunASR does (argmax per frame, collapse repeats, drop blank) and is used whenever a
request has no hotwords. Prefix beam search runs on the CPU for one utterance and only when hotwords are
present; its scores are the usual blank / non-blank prefix probabilities (summed over alignments) plus
the context graph's bonus, which is a function of the prefix alone.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from asr_engine.decoding.context_graph import ContextGraph

__all__ = ["BeamResult", "greedy_decode", "prefix_beam_search"]

log = logging.getLogger(__name__)

NEG_INF = float("-inf")
# A frame whose blank probability exceeds this only extends existing prefixes (blank or a repeat of the
# last token); new tokens are not tried there. Between them they have probability < 1e-3.
BLANK_SKIP_PROB = 0.999
_BLANK_SKIP_LOGP = math.log(BLANK_SKIP_PROB)
# Besides the ``beam`` best by biased score, this many more prefixes that rank higher once unfinished
# hotword matches lose their provisional bonus survive each frame (a guard against truncation; more of
# them crowd out the hotword paths themselves: 2 measured best on the bundled model).
SETTLED_KEEP = 2


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, *, blank: int = 0) -> list[list[int]]:
    """Best-path decoding of a batch: per item, argmax ids with repeats collapsed and blanks removed.

    log_probs (B, T, V) on any device (argmax is taken there), lengths (B,) valid frames per item.
    """
    best = log_probs.argmax(dim=-1)  # (B, T)
    t = best.shape[1]
    valid = torch.arange(t, device=best.device)[None, :] < lengths.to(best.device)[:, None]
    changed = torch.ones_like(valid)
    changed[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = (valid & changed & (best != blank)).cpu()
    ids = best.cpu()
    return [ids[i][keep[i]].tolist() for i in range(ids.shape[0])]


@dataclass(frozen=True)
class BeamResult:
    """The best prefix: token ids, its CTC log-probability and its context (hotword) bonus."""

    token_ids: tuple[int, ...]
    log_prob: float
    context_score: float

    @property
    def score(self) -> float:
        return self.log_prob + self.context_score


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


class _Prefix:
    """Probabilities of one prefix ending in blank (``pb``) or in its last token (``pnb``)."""

    __slots__ = ("context_score", "context_state", "pb", "pnb")

    def __init__(self, context_state: int, context_score: float) -> None:
        self.pb = NEG_INF
        self.pnb = NEG_INF
        self.context_state = context_state
        self.context_score = context_score

    def total(self) -> float:
        return _logaddexp(self.pb, self.pnb)


def prefix_beam_search(
    log_probs: torch.Tensor,
    length: int,
    beam: int,
    context_graph: ContextGraph | None = None,
    *,
    blank: int = 0,
    token_topk: int | None = None,
) -> BeamResult:
    """CTC prefix beam search over one utterance's log-probs (T, V), biased by ``context_graph``.

    Per frame only the ``token_topk`` (default ``beam``) most likely tokens are tried as extensions,
    plus, for a prefix, any token that continues one of its hotword matches and whose log-probability
    plus the graph's largest boost reaches the k-th best (so a boost can lift a token the plain pruning
    would drop); frames whose blank probability exceeds ``BLANK_SKIP_PROB`` try none. The beam keeps the
    ``beam`` best by log-probability plus context bonus, and also up to ``SETTLED_KEEP`` more that rank higher
    once unfinished matches lose their provisional bonus (so failed partial matches cannot push out
    every plain prefix and truncate the text); at the end that provisional bonus is removed.
    """
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    topk = max(1, token_topk if token_topk is not None else beam)
    scores = log_probs[:length].detach().float()
    topk = min(topk, scores.shape[1])
    # top-k on the source device; the CPU copy stays float32 (each value read becomes a Python float)
    candidates = scores.topk(topk, dim=-1).indices.cpu().numpy()
    lp = scores.cpu().numpy()
    root = context_graph.root if context_graph is not None else 0
    beams: dict[tuple[int, ...], _Prefix] = {(): _Prefix(root, 0.0)}
    beams[()].pb = 0.0

    def final(hyp: _Prefix) -> float:
        bonus = hyp.context_score
        if context_graph is not None:
            bonus += context_graph.finalize(hyp.context_state)
        return bonus

    boost_room = context_graph.max_token_score if context_graph is not None else 0.0
    hot_tokens = np.asarray(context_graph.tokens if context_graph is not None else (), dtype=np.int64)
    for t in range(lp.shape[0]):
        frame = lp[t]
        p_blank = float(frame[blank])
        extend = p_blank <= _BLANK_SKIP_LOGP
        tokens: list[int] = []
        lifted: set[int] = set()
        if extend:
            chosen = candidates[t]
            tokens = [int(c) for c in chosen if c != blank]
            if boost_room > 0 and hot_tokens.size:
                kth = frame[chosen].min()
                lifted = {int(c) for c in hot_tokens[frame[hot_tokens] + boost_room >= kth]} - set(tokens)
                lifted.discard(blank)
        nxt: dict[tuple[int, ...], _Prefix] = {}
        for prefix, hyp in beams.items():
            total = hyp.total()
            # Stay on the same prefix: a blank, or a repeat of the last token without a blank between.
            same = nxt.get(prefix)
            if same is None:
                same = nxt[prefix] = _Prefix(hyp.context_state, hyp.context_score)
            same.pb = _logaddexp(same.pb, total + p_blank)
            if prefix:
                last = prefix[-1]
                same.pnb = _logaddexp(same.pnb, hyp.pnb + float(frame[last]))
            extra: list[int] = []
            if lifted and context_graph is not None:
                extra = [c for c in context_graph.continuations(hyp.context_state) if c in lifted]
            for c in (*tokens, *extra):
                p = float(frame[c])
                longer = (*prefix, c)
                entry = nxt.get(longer)
                if entry is None:
                    if context_graph is not None:
                        delta, state = context_graph.forward_one_step(hyp.context_state, c)
                        entry = _Prefix(state, hyp.context_score + delta)
                    else:
                        entry = _Prefix(root, 0.0)
                    nxt[longer] = entry
                # After a blank any token starts anew; without one, only a different token does.
                start = hyp.pb if prefix and c == prefix[-1] else total
                entry.pnb = _logaddexp(entry.pnb, start + p)
        ranked = sorted(nxt.items(), key=lambda kv: kv[1].total() + kv[1].context_score, reverse=True)
        if context_graph is None or len(ranked) <= beam:
            beams = dict(ranked[:beam])
        else:
            # Provisional bonuses of partial matches can fill the beam with prefixes that lose them
            # later; the best prefixes by settled score (bonus of unfinished matches taken back) stay too,
            # so the search cannot end with only failed partial matches left.
            beams = dict(ranked[:beam])
            settled = sorted(ranked[beam:], key=lambda kv: kv[1].total() + final(kv[1]), reverse=True)
            floor = min(hyp.total() + final(hyp) for hyp in beams.values())
            beams.update(kv for kv in settled[:SETTLED_KEEP] if kv[1].total() + final(kv[1]) > floor)

    best_prefix, best = max(beams.items(), key=lambda kv: kv[1].total() + final(kv[1]))
    return BeamResult(token_ids=best_prefix, log_prob=best.total(), context_score=final(best))
