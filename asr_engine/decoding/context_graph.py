"""Hotword biasing graph: an Aho-Corasick automaton over token-id sequences (contextual biasing).

Each hotword is a token-id sequence with a per-token boost. While a hypothesis follows a hotword's
prefix, every matched token earns its boost provisionally. If the match breaks, the automaton falls back
(along failure links) to the longest hotword prefix that is still a suffix of the hypothesis, and the
provisional bonus of the abandoned part is taken back. When a whole hotword is matched, its full bonus
(plus that of hotwords ending at the same place, e.g. a shorter phrase that is a suffix) is paid once
more, permanently; ``finalize`` takes back what is still provisional at the end of the utterance. The net
effect: a hypothesis gains exactly the bonus of every hotword it contains, and partial matches give a
temporary lift that keeps hotword paths alive in the beam.

States are plain ints (node indices); node 0 is the root. Transitions are memoised, so decoding costs one
dict lookup per (state, token) after the first visit.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["ContextGraph"]

log = logging.getLogger(__name__)

ROOT = 0


@dataclass
class _Node:
    token: int
    depth: int
    token_score: float = 0.0  # bonus for taking the arc into this node
    node_score: float = 0.0  # provisional bonus held while sitting here (sum of token scores from root)
    output_score: float = 0.0  # paid on arrival: bonuses of every hotword ending here (incl. suffixes)
    is_end: bool = False
    fail: int = ROOT
    children: dict[int, int] = field(default_factory=dict)


class ContextGraph:
    """Aho-Corasick trie of hotword token sequences with boost and back-off scores (read-only once built)."""

    def __init__(self, nodes: list[_Node]) -> None:
        self._nodes = nodes
        self._cache: dict[tuple[int, int], tuple[float, int]] = {}
        self._next_cache: dict[int, frozenset[int]] = {}

    @classmethod
    def build(cls, token_id_seqs: Sequence[Sequence[int]], boosts: Sequence[float]) -> ContextGraph:
        """A graph of ``token_id_seqs``; ``boosts[i]`` is the per-token bonus of sequence ``i``.

        Empty sequences are ignored. Where sequences share a prefix, each shared arc takes the largest
        boost of the sequences through it.
        """
        if len(token_id_seqs) != len(boosts):
            raise ValueError(f"{len(token_id_seqs)} token sequences but {len(boosts)} boosts")
        nodes = [_Node(token=-1, depth=0)]
        for seq, boost in zip(token_id_seqs, boosts, strict=True):
            if not seq:
                continue
            at = ROOT
            for token in seq:
                child = nodes[at].children.get(int(token))
                if child is None:
                    child = len(nodes)
                    nodes.append(_Node(token=int(token), depth=nodes[at].depth + 1, token_score=float(boost)))
                    nodes[at].children[int(token)] = child
                else:
                    nodes[child].token_score = max(nodes[child].token_score, float(boost))
                at = child
            nodes[at].is_end = True
        cls._link(nodes)
        return cls(nodes)

    @staticmethod
    def _link(nodes: list[_Node]) -> None:
        """Breadth-first: node scores, failure links and the scores paid on completing hotwords."""
        queue: deque[int] = deque()
        for child in nodes[ROOT].children.values():
            nodes[child].node_score = nodes[child].token_score
            nodes[child].fail = ROOT
            nodes[child].output_score = nodes[child].node_score if nodes[child].is_end else 0.0
            queue.append(child)
        while queue:
            at = queue.popleft()
            for token, child in nodes[at].children.items():
                node = nodes[child]
                node.node_score = nodes[at].node_score + node.token_score
                back = nodes[at].fail
                while token not in nodes[back].children and back != ROOT:
                    back = nodes[back].fail
                target = nodes[back].children.get(token, ROOT)
                node.fail = target if target != child else ROOT
                own = node.node_score if node.is_end else 0.0
                node.output_score = own + nodes[node.fail].output_score
                queue.append(child)

    @property
    def root(self) -> int:
        return ROOT

    @property
    def num_nodes(self) -> int:
        return len(self._nodes)

    @property
    def tokens(self) -> tuple[int, ...]:
        """Every token id that appears in some hotword, ascending."""
        return tuple(sorted({node.token for node in self._nodes[1:]}))

    @property
    def max_token_score(self) -> float:
        """The largest per-token boost (0.0 for an empty graph)."""
        return max((node.token_score for node in self._nodes[1:]), default=0.0)

    @property
    def empty(self) -> bool:
        """True when no hotword was added."""
        return len(self._nodes) == 1

    def forward_one_step(self, state: int, token: int) -> tuple[float, int]:
        """Score change and next state after appending ``token`` to a hypothesis in ``state``."""
        key = (state, token)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        nodes = self._nodes
        child = nodes[state].children.get(token)
        if child is not None:
            score = nodes[child].token_score
        else:
            back = state
            while back != ROOT and token not in nodes[back].children:
                back = nodes[back].fail
            child = nodes[back].children.get(token, ROOT)
            score = nodes[child].node_score - nodes[state].node_score
        result = (score + nodes[child].output_score, child)
        self._cache[key] = result
        return result

    def continuations(self, state: int) -> frozenset[int]:
        """Tokens that extend some hotword match from ``state`` (its children and those along its
        failure links, root included): the only tokens whose step can earn a bonus there."""
        hit = self._next_cache.get(state)
        if hit is None:
            tokens: set[int] = set(self._nodes[ROOT].children)
            at = state
            while at != ROOT:
                tokens.update(self._nodes[at].children)
                at = self._nodes[at].fail
            hit = self._next_cache[state] = frozenset(tokens)
        return hit

    def finalize(self, state: int) -> float:
        """Score change at the end of the utterance: the provisional bonus of an unfinished match goes."""
        return -self._nodes[state].node_score

    def is_end(self, state: int) -> bool:
        """Whether a hotword ends at ``state``."""
        return self._nodes[state].is_end
