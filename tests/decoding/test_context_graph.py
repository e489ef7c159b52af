"""The hotword context graph: matching, back-off on a broken partial match, overlapping phrases."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from asr_engine.decoding.context_graph import ContextGraph


def _run(graph: ContextGraph, tokens: Sequence[int], *, finalize: bool = True) -> tuple[float, list[float]]:
    """Total bonus of a token sequence and the per-step deltas."""
    state = graph.root
    deltas = []
    for token in tokens:
        delta, state = graph.forward_one_step(state, token)
        deltas.append(delta)
    total = sum(deltas) + (graph.finalize(state) if finalize else 0.0)
    return total, deltas


def _count(haystack: Sequence[int], needle: Sequence[int]) -> int:
    n = len(needle)
    return sum(1 for i in range(len(haystack) - n + 1) if list(haystack[i : i + n]) == list(needle))


def test_a_full_match_earns_the_phrase_bonus_once() -> None:
    graph = ContextGraph.build([[1, 2, 3]], [2.0])
    total, deltas = _run(graph, [9, 1, 2, 3, 9])
    assert deltas[:4] == [0.0, 2.0, 2.0, 2.0 + 6.0]  # provisional per token, then the permanent payment
    assert deltas[4] == pytest.approx(-6.0)  # leaving the end node takes the provisional part back
    assert total == pytest.approx(6.0)


def test_a_broken_partial_match_is_taken_back() -> None:
    graph = ContextGraph.build([[1, 2, 3]], [1.5])
    total, deltas = _run(graph, [1, 2, 7])
    assert deltas == pytest.approx([1.5, 1.5, -3.0])
    assert total == pytest.approx(0.0)
    # An unfinished match at the end of the utterance is removed by finalize.
    total, _ = _run(graph, [1, 2])
    assert total == pytest.approx(0.0)
    assert _run(graph, [1, 2], finalize=False)[0] == pytest.approx(3.0)


def test_back_off_keeps_the_suffix_that_still_matches() -> None:
    # "1 2 1 2 3": the first "1 2" breaks at the second "1", which starts the real match.
    graph = ContextGraph.build([[1, 2, 3]], [1.0])
    total, deltas = _run(graph, [1, 2, 1, 2, 3])
    assert deltas[2] == pytest.approx(-1.0)  # back to the state after "1": keep 1, drop 2
    assert total == pytest.approx(3.0)
    # "1 1 2 3": a repeated first token
    assert _run(graph, [1, 1, 2, 3])[0] == pytest.approx(3.0)


def test_overlapping_and_nested_phrases_each_count() -> None:
    graph = ContextGraph.build([[1, 2, 3], [2, 3], [3, 4]], [1.0, 2.0, 0.5])
    seqs = [[1, 2, 3], [2, 3], [3, 4]]
    bonus = {(1, 2, 3): 3.0, (2, 3): 4.0, (3, 4): 1.0}
    for tokens in (
        [1, 2, 3, 4],
        [2, 3, 4],
        [1, 2, 3],
        [5, 1, 2, 5, 2, 3, 1],
        [3, 4, 3, 4],
        [1, 2, 3, 1, 2, 3],
    ):
        expected = sum(bonus[tuple(s)] * _count(tokens, s) for s in seqs)
        assert _run(graph, tokens)[0] == pytest.approx(expected), tokens


def test_every_prefix_gives_a_lift_until_resolved() -> None:
    graph = ContextGraph.build([[4, 5, 6, 7]], [1.0])
    state = graph.root
    running = 0.0
    for token in (4, 5, 6):
        delta, state = graph.forward_one_step(state, token)
        running += delta
        assert delta > 0
    assert running == pytest.approx(3.0)
    assert not graph.is_end(state)
    delta, state = graph.forward_one_step(state, 7)
    assert graph.is_end(state)
    assert running + delta + graph.finalize(state) == pytest.approx(4.0)


def test_shared_prefix_takes_the_larger_boost_and_graph_facts() -> None:
    graph = ContextGraph.build([[1, 2], [1, 3], []], [1.0, 3.0, 5.0])
    assert graph.tokens == (1, 2, 3)
    assert graph.max_token_score == 3.0
    assert graph.num_nodes == 4
    assert _run(graph, [1, 3])[0] == pytest.approx(6.0)
    assert _run(graph, [1, 2])[0] == pytest.approx(4.0)  # the shared arc carries 3.0
    assert ContextGraph.build([], []).empty
    with pytest.raises(ValueError, match="boosts"):
        ContextGraph.build([[1]], [])


def test_negative_boost_penalises_a_phrase() -> None:
    graph = ContextGraph.build([[1, 2]], [-1.0])
    assert _run(graph, [0, 1, 2, 0])[0] == pytest.approx(-2.0)
    assert _run(graph, [0, 1, 0])[0] == pytest.approx(0.0)


def test_continuations_are_the_tokens_that_can_earn_a_bonus() -> None:
    graph = ContextGraph.build([[1, 2], [2, 3]], [1.0, 1.0])
    assert graph.continuations(graph.root) == {1, 2}
    _, after_1 = graph.forward_one_step(graph.root, 1)
    _, after_12 = graph.forward_one_step(after_1, 2)
    assert graph.continuations(after_12) == {1, 2, 3}  # "2" is still a prefix of [2, 3]
    for state in (graph.root, after_1, after_12):
        for token in range(5):
            delta, _ = graph.forward_one_step(state, token)
            if token not in graph.continuations(state):
                assert delta <= 0.0
