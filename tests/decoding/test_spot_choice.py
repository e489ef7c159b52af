"""Which spot the word spotter keeps when candidates compete, and which words a replacement takes whole."""

from __future__ import annotations

import numpy as np
import torch

from asr_engine.decoding.word_spotter import SpotTarget, spot_hotwords
from tests.decoding.spotting import frame_log_probs, piece_classes


def test_competing_spots_are_ranked_by_the_gain_they_are_accepted_on() -> None:
    # hypothesis "<|x|> ▁a ▁c" (as a biased beam search may leave it): "▁a" spans frames 1-3. "▁e" fits
    # frame 1 (p 0.45 against 0.9) but replacing the whole word charges frames 2-3 as blanks
    # (2 x -9.1); "▁f" fits all three frames a little better than "▁a" and is charged nothing. Before
    # the charge "▁e" leads (30 - 0.7 against 20 + 0.16); after it "▁f" does (20.16 against 11.1), and
    # only the gain after the charge is what a replacement is worth.
    classes = piece_classes()
    labels = [1, 2, 2, 2, 0, 4, 0]
    lp = torch.from_numpy(frame_log_probs(labels, {1: {6: 0.45, 7: 0.95}, 2: {7: 0.95}, 3: {7: 0.95}}))
    ids = [1, 2, 4]
    targets = [SpotTarget(token_ids=(6,), bonus=30.0), SpotTarget(token_ids=(7,), bonus=20.0)]
    # each alone replaces the word, with the gain that decides it
    alone = [spot_hotwords(lp, ids, [t], classes, first_frame=1, min_token_log_prob=-5.0) for t in targets]
    assert [r.token_ids for r in alone] == [(1, 6, 4), (1, 7, 4)]
    e_gain, f_gain = alone[0].spots[0].gain, alone[1].spots[0].gain
    assert f_gain > e_gain > 0.0
    both = spot_hotwords(lp, ids, targets, classes, first_frame=1, min_token_log_prob=-5.0)
    assert both.token_ids == (1, 7, 4)
    assert [s.gain for s in both.spots] == [f_gain]


def test_a_letter_after_a_lone_space_piece_is_one_word_with_it() -> None:
    # "▁ y" renders as the word " y": a replacement that takes the "▁" must take the "y" too, else the
    # letter glues onto the hotword put in its place ("dabrowski" + "y" -> "dabrowskiy")
    classes = piece_classes(["<unk>", "<|x|>", "▁", "y", "▁c", "d", "▁e", "▁f"])
    assert classes.word_ids(np.asarray([1, 4, 2, 3, 4])).tolist() == [0, 1, 2, 2, 3]
    # a lone "▁" before a piece that starts no word (a tag, another "▁" word) stays a word of its own
    assert classes.word_ids(np.asarray([2, 4, 2, 1])).tolist() == [0, 1, 2, 3]
    # hypothesis "<|x|> ▁c ▁ y": "▁f ▁e" fits the frames of "▁" (4-5) and no further
    labels = [1, 4, 0, 0, 2, 2, 3, 0]
    lp = torch.from_numpy(frame_log_probs(labels, {4: {7: 0.5}, 5: {6: 0.5}}))
    ids = [1, 4, 2, 3]
    target = [SpotTarget(token_ids=(7, 6), bonus=12.0)]
    res = spot_hotwords(lp, ids, target, classes, first_frame=1, min_token_log_prob=-5.0)
    assert res.token_ids == (1, 4, 7, 6)
