"""The error analysis: its alignment counts what ``metrics`` counts; its sentence kinds fit the generators."""

from __future__ import annotations

import random

import pytest

from recipes.bundled_model import analyse_errors as ae
from recipes.bundled_model import metrics, text_en

PAIRS = [
    ("the cat sat on the mat", "the cat sat on mat"),
    ("call vasquez at noon", "call vas quez at noon today"),
    ("", "ghost words"),
    ("a b c", ""),
    ("one two three four", "won two tree for four"),
]


@pytest.mark.parametrize(("ref", "hyp"), PAIRS)
def test_alignment_cost_equals_edit_distance(ref: str, hyp: str) -> None:
    r, h = ref.split(), hyp.split()
    ops = ae.align(r, h)
    assert sum(o.kind != ae.OK for o in ops) == metrics.edit_distance(r, h)
    assert [o.ref for o in ops if o.kind != ae.INS] == r
    assert [o.hyp for o in ops if o.kind != ae.DEL] == h


def test_random_pairs_match_edit_distance() -> None:
    rng = random.Random(3)
    vocab = ["a", "b", "c", "d", "e"]
    for _ in range(200):
        r = [rng.choice(vocab) for _ in range(rng.randint(0, 7))]
        h = [rng.choice(vocab) for _ in range(rng.randint(0, 7))]
        assert sum(o.kind != ae.OK for o in ae.align(r, h)) == metrics.edit_distance(r, h)


def test_tally_rate_matches_metrics_error_rate() -> None:
    refs, hyps = [r for r, _ in PAIRS], [h for _, h in PAIRS]
    rows = ae.group(["x"] * len(PAIRS), [ae.align(r.split(), h.split()) for r, h in PAIRS])
    rate, errors, units = metrics.error_rate(refs, hyps, "en")
    assert (rows["x"]["errors"], rows["x"]["units"]) == (errors, units)
    assert rows["x"]["rate"] == round(rate, 2)


def test_boundary_split_is_recognised() -> None:
    ops = ae.align(["sometimes", "we", "go"], ["some", "times", "we", "go"])
    assert ae.splits_and_merges(ops) == 1
    ops = ae.align(["the", "news", "paper", "came"], ["the", "newspaper", "came"])
    assert ae.splits_and_merges(ops) == 1
    assert ae.splits_and_merges(ae.align(["cat"], ["dog"])) == 0


def test_kinds_of_generated_sentences() -> None:
    rng = random.Random(0)
    for template in text_en.NUMERIC:
        assert ae.sentence_kind(template(rng)).startswith("numeric"), template(rng)
    assert ae.sentence_kind("the giant pressures might hire patients") == "wsj frame"
    assert ae.sentence_kind("my phone number is four seven three five seven one four") == (
        "numeric: phone/order no."
    )
    assert ae.sentence_kind("it costs twelve dollars") == "numeric: money"
    assert ae.sentence_kind("she bought a possible white jacket") == "everyday"


def test_frequency_bands() -> None:
    assert [ae.freq_band(c) for c in (0, 5, 50, 500, 5000)] == [
        "0 (never)",
        "1-9",
        "10-99",
        "100-999",
        ">=1000",
    ]
