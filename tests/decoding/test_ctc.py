"""CTC greedy decoding and prefix beam search, checked against exhaustive enumeration on tiny inputs."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import pytest
import torch

from asr_engine.decoding.context_graph import ContextGraph
from asr_engine.decoding.ctc import greedy_decode, prefix_beam_search


def _collapse(path: tuple[int, ...], blank: int = 0) -> tuple[int, ...]:
    out: list[int] = []
    prev = None
    for token in path:
        if token != prev and token != blank:
            out.append(token)
        prev = token
    return tuple(out)


def _labelling_log_probs(lp: torch.Tensor) -> dict[tuple[int, ...], float]:
    """log P(labelling) summed over every alignment (T^V paths; tiny inputs only)."""
    t_len, vocab = lp.shape
    total: dict[tuple[int, ...], float] = defaultdict(lambda: float("-inf"))
    for path in itertools.product(range(vocab), repeat=t_len):
        score = float(sum(lp[t, c] for t, c in enumerate(path)))
        key = _collapse(path)
        total[key] = float(torch.logaddexp(torch.tensor(total[key]), torch.tensor(score)))
    return dict(total)


def _graph_bonus(graph: ContextGraph, tokens: tuple[int, ...]) -> float:
    state, bonus = graph.root, 0.0
    for token in tokens:
        delta, state = graph.forward_one_step(state, token)
        bonus += delta
    return bonus + graph.finalize(state)


def test_greedy_decode_batched_with_padding() -> None:
    ids = torch.tensor([[1, 1, 0, 2, 2, 0, 2, 3], [0, 3, 3, 3, 1, 0, 0, 0]])
    lp = torch.nn.functional.one_hot(ids, 4).float().log_softmax(-1)
    got = greedy_decode(lp, torch.tensor([8, 5]))
    assert got == [[1, 2, 2, 3], [3, 1]]
    assert greedy_decode(lp, torch.tensor([0, 1])) == [[], []]


def test_prefix_beam_search_finds_the_most_probable_labelling() -> None:
    gen = torch.Generator().manual_seed(3)
    for _ in range(6):
        lp = torch.randn(5, 4, generator=gen).mul(1.5).log_softmax(-1)
        table = _labelling_log_probs(lp)
        best = max(table, key=lambda k: table[k])
        result = prefix_beam_search(lp, 5, beam=64, token_topk=4)
        assert result.token_ids == best
        assert result.log_prob == pytest.approx(table[best], abs=1e-5)
        assert result.context_score == 0.0


def test_prefix_beam_search_with_context_adds_the_hotword_bonus() -> None:
    gen = torch.Generator().manual_seed(11)
    graph = ContextGraph.build([[2, 3]], [1.2])
    changed = 0
    for _ in range(6):
        lp = torch.randn(5, 4, generator=gen).mul(1.5).log_softmax(-1)
        table = _labelling_log_probs(lp)
        plain = max(table, key=lambda k: table[k])
        best = max(table, key=lambda k: table[k] + _graph_bonus(graph, k))
        result = prefix_beam_search(lp, 5, beam=64, context_graph=graph, token_topk=4)
        assert result.token_ids == best
        assert result.context_score == pytest.approx(_graph_bonus(graph, best))
        changed += best != plain
    assert changed >= 1  # the bonus decided at least one of these cases


def test_only_the_valid_frames_are_searched() -> None:
    ids = torch.tensor([1, 0, 2, 0, 3, 3])
    lp = torch.nn.functional.one_hot(ids, 4).float().mul(5).log_softmax(-1)
    assert prefix_beam_search(lp, 4, beam=4).token_ids == (1, 2)
    assert prefix_beam_search(lp, 0, beam=4).token_ids == ()
    with pytest.raises(ValueError, match="beam"):
        prefix_beam_search(lp, 4, beam=0)


def test_a_boost_can_lift_a_token_outside_the_top_k() -> None:
    # Token 3 is never among the top 2 of a frame, but a large boost makes it win.
    probs = torch.tensor([[0.5, 0.45, 0.01, 0.04]] * 3)
    lp = probs.log()
    assert 3 not in prefix_beam_search(lp, 3, beam=2).token_ids
    graph = ContextGraph.build([[3]], [6.0])
    assert 3 in prefix_beam_search(lp, 3, beam=2, context_graph=graph).token_ids
    assert math.isfinite(prefix_beam_search(lp, 3, beam=2, context_graph=graph).log_prob)


def test_failed_partial_matches_do_not_crowd_out_the_plain_path() -> None:
    # Frame 0 favours token 2, but token 1 starts a hotword: its provisional bonus ranks it first. With a
    # beam of 1 the plain prefix (2,) must survive, since the match never completes and its bonus goes.
    lp = torch.tensor([[1e-4, 0.4, 0.5998, 1e-4], [0.99, 0.005, 0.0025, 0.0025]]).log()
    graph = ContextGraph.build([[1, 2, 3]], [4.0])
    result = prefix_beam_search(lp, 2, beam=1, context_graph=graph, token_topk=3)
    assert result.token_ids == (2,)
    assert result.context_score == 0.0
    table = _labelling_log_probs(lp)
    assert result.log_prob == pytest.approx(table[(2,)], abs=1e-5)
