"""The word spotter's acceptance rules: the per-token log-prob floor, and spellings that would glue."""

from __future__ import annotations

import pytest
import torch

from asr_engine.decoding.word_spotter import SpotTarget, spot_hotwords
from asr_engine.engine import BUNDLED_DIR
from asr_engine.models.loader import load_model
from asr_engine.models.sensevoice import SenseVoiceModel
from asr_engine.types import Hotword
from tests.decoding.spotting import frame_log_probs, piece_classes


def test_the_floor_keeps_a_large_bonus_from_placing_an_absent_word() -> None:
    # hypothesis "<|x|> ▁a b ▁c ▁e"; over "▁c" (frames 5-7) the target ▁f ▁f is a weak runner-up in the
    # first clip (p 0.05 per token) and absent in the second (1e-4)
    labels = [1, 0, 2, 3, 0, 4, 0, 0, 6, 0]
    present = torch.from_numpy(frame_log_probs(labels, {5: {7: 0.05}, 7: {7: 0.05}}))
    absent = torch.from_numpy(frame_log_probs(labels))
    ids = [1, 2, 3, 4, 6]
    target = [SpotTarget(token_ids=(7, 7), bonus=12.0)]
    classes = piece_classes()
    replaced = (1, 2, 3, 7, 7, 6)
    # without a floor the bonus alone is enough in both
    assert spot_hotwords(present, ids, target, classes, first_frame=1).token_ids == replaced
    assert spot_hotwords(absent, ids, target, classes, first_frame=1).token_ids[-3:] == (7, 7, 6)
    # log(0.05) = -3.0 per token passes a floor of -5; log(1e-4) = -9.2 does not
    kept = spot_hotwords(absent, ids, target, classes, first_frame=1, min_token_log_prob=-5.0)
    found = spot_hotwords(present, ids, target, classes, first_frame=1, min_token_log_prob=-5.0)
    assert found.token_ids == replaced
    assert kept.token_ids == tuple(ids) and not kept.spots


@pytest.fixture(scope="module")
def bundled() -> SenseVoiceModel:
    model = load_model(BUNDLED_DIR / "lingting-mini", device=torch.device("cpu"))
    assert isinstance(model, SenseVoiceModel)
    return model


def test_a_name_spelled_after_a_lone_space_piece_keeps_its_word_break(bundled: SenseVoiceModel) -> None:
    # "ximena" after a space is "▁ x im en a": no "▁x" piece. The spotter must keep the "▁" (else the
    # name glues onto the word before it: "met ximena" -> "metximena"), and the bare spelling may only
    # open the text, where nothing precedes it.
    pieces = bundled.pieces
    spaced = [p for p in pieces.EncodeAsPieces("a ximena")][1:]
    assert spaced[0] == "▁" and not spaced[1].startswith("▁")  # the tokenizer case this is about
    targets = {
        (tuple(pieces.id_to_piece(i) for i in t.token_ids), t.text_start_only)
        for t in bundled.spot_targets((Hotword(phrase="ximena"),))
    }
    assert (tuple(spaced), False) in targets
    assert all(start_only for body, start_only in targets if body[0] != "▁")
    # a Mandarin phrase still drops the lone "▁" (nothing to hear) and may stand anywhere
    for t in bundled.spot_targets((Hotword(phrase="欧阳震华"),)):
        assert pieces.id_to_piece(t.token_ids[0]) != "▁"
