"""The CTC word spotter: its dynamic program on hand-built log-probs, and a rare name on the bundled model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from asr_engine.audio import decode_audio
from asr_engine.decoding.word_spotter import (
    SpotTarget,
    spot_hotwords,
    spot_windows,
    state_labels,
    token_runs,
)
from asr_engine.engine import BUNDLED_DIR
from asr_engine.features import Frontend
from asr_engine.models.base import DecodeRequest
from asr_engine.models.loader import load_model
from asr_engine.models.sensevoice import PROMPT_FRAMES, SPOT_BONUS_SCALE, SenseVoiceModel
from asr_engine.types import Hotword
from tests.decoding.spotting import LOW, frame_log_probs, piece_classes

BLANK = 0


def _spot(lp: np.ndarray, seqs: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    path = lp.argmax(axis=1)
    reference = lp[np.arange(lp.shape[0]), path]
    return spot_windows(lp[:, state_labels(seqs, BLANK)], reference, seqs, blank=BLANK)


def test_a_planted_sequence_is_found_with_its_span() -> None:
    # tokens 3 4 5 planted at frames 5, 6-7, 9 (4 repeated over two frames, a blank between 4 and 5)
    lp = frame_log_probs([0, 1, 0, 2, 0, 3, 4, 4, 0, 5, 0, 0, 6, 0])
    score, start = _spot(lp, [(3, 4, 5), (3, 5)])
    t = int(np.argmax(score[:, 0]))
    assert (int(start[t, 0]), t) == (5, 9)
    assert score[t, 0] == pytest.approx(0.0, abs=1e-5)  # it is the hypothesis itself over those frames
    # 3 then 5 without the 4: cheapest is a 5 at the 4's first frame (one unlikely frame), not blanks
    # over both of the 4's frames
    t2 = int(np.argmax(score[:, 1]))
    assert (int(start[t2, 1]), t2) == (5, 6)
    assert score[t2, 1] == pytest.approx(LOW - np.log(0.9), abs=1e-4)


def test_an_absent_sequence_scores_far_below_and_a_weak_one_in_between() -> None:
    # the hypothesis says 1 2 at frames 3 and 5; token 6 is a runner-up (p 0.05) at frame 3, 7 is nowhere
    lp = frame_log_probs([0, 0, 0, 1, 0, 2, 0, 0], {3: {6: 0.05}, 5: {7: 1e-4}})
    score, start = _spot(lp, [(6, 2), (7, 7)])
    t = int(np.argmax(score[:, 0]))
    assert (int(start[t, 0]), t) == (3, 5)
    assert score[t, 0] == pytest.approx(np.log(0.05) - np.log(0.9), abs=1e-4)
    assert score[:, 1].max() < 2 * (LOW - np.log(0.9)) + 1.0  # two tokens at 1e-4: far below


def test_token_runs_and_repeats() -> None:
    ids, first, last = token_runs(np.array([0, 3, 3, 0, 3, 4, 4, 0]), blank=BLANK)
    assert ids.tolist() == [3, 3, 4]
    assert first.tolist() == [1, 4, 5]
    assert last.tolist() == [2, 4, 6]


def test_replacement_takes_whole_words_and_keeps_the_rest() -> None:
    # hypothesis "<|x|> ▁a b ▁c ▁e": the target (▁f ▁f) fits the frames of "▁c" only weakly;
    # a bonus makes it win there
    labels = [1, 0, 2, 3, 0, 4, 0, 0, 6, 0]
    lp = torch.from_numpy(frame_log_probs(labels, {5: {7: 0.05}, 7: {7: 0.05}}))
    ids = [1, 2, 3, 4, 6]
    weak = SpotTarget(token_ids=(7, 7), bonus=0.5)
    strong = SpotTarget(token_ids=(7, 7), bonus=6.0)
    classes = piece_classes()
    assert spot_hotwords(lp, ids, [weak], classes, first_frame=1).token_ids == tuple(ids)
    result = spot_hotwords(lp, ids, [strong], classes, first_frame=1)
    assert result.token_ids == (1, 2, 3, 7, 7, 6)
    (spot,) = result.spots
    assert (spot.start, spot.end, spot.first_token, spot.end_token) == (5, 7, 3, 4)
    # no targets: nothing computed, nothing changed
    assert spot_hotwords(lp, ids, [], classes).token_ids == tuple(ids)


# ------------------------------------------------------------------------------------------ bundled model

MODEL_DIR = BUNDLED_DIR / "lingting-mini"
SAMPLES = json.loads((MODEL_DIR / "samples" / "samples.json").read_text(encoding="utf-8"))
# the hotword clip: a rare name the model misses on its own (samples.json says which;
# run 6: "haverford", as with run 3; run 5: "castellano")
HOT_SAMPLE = next(s for s in SAMPLES if s.get("hotwords"))
SAMPLE = MODEL_DIR / "samples" / HOT_SAMPLE["file"]
NAME = HOT_SAMPLE["hotwords"][0]


@pytest.fixture(scope="module")
def bundled() -> tuple[SenseVoiceModel, torch.Tensor, torch.Tensor]:
    model = load_model(MODEL_DIR, device=torch.device("cpu"))
    assert isinstance(model, SenseVoiceModel)
    wave = decode_audio(Path(SAMPLE).read_bytes()).samples
    feats, lengths = Frontend(model.frontend, torch.device("cpu"))([torch.from_numpy(wave)])
    return model, feats, lengths


def test_the_spotter_recovers_a_rare_name_the_greedy_output_misses(
    bundled: tuple[SenseVoiceModel, torch.Tensor, torch.Tensor],
) -> None:
    model, feats, lengths = bundled
    lp, n = model.log_probs(feats, lengths, [DecodeRequest(language="en")])
    lp = lp[0, : int(n[0])]
    path = lp.argmax(dim=-1).numpy()
    greedy, _, _ = token_runs(path, blank=0)
    plain = model.pieces.DecodeIds(greedy.tolist()).split()
    assert NAME not in plain and "tomorrow" in plain
    found = {}
    weak = 2.0 / SPOT_BONUS_SCALE  # a spotter bonus of 2 per token
    for boost in (weak, 6.0):
        targets = model.spot_targets((Hotword(phrase=NAME, boost=boost),))
        result = spot_hotwords(
            lp, greedy.tolist(), targets, model.piece_classes, path=path, first_frame=PROMPT_FRAMES
        )
        found[boost] = (model.pieces.DecodeIds(list(result.token_ids)).split(), result.spots)
    assert NAME not in found[weak][0]  # too weak a bonus: the greedy words stay
    words, spots = found[6.0]
    reference = HOT_SAMPLE["text"].split()
    assert words[-len(reference) :] == reference
    (spot,) = spots
    # the replaced (misheard) words lie inside the spotted frames, the kept ones outside
    ids = greedy.tolist()
    replaced = model.pieces.DecodeIds(ids[spot.first_token : spot.end_token]).split()
    misheard = [w for w in plain if w not in reference and not w.startswith("<|")]
    assert replaced and replaced == misheard
    # through the model's own decode: the name's timestamps fall inside the spotted frames
    request = DecodeRequest(language="en", hotwords=(Hotword(phrase=NAME),), timestamps=True)
    hyp = model.decode_batch(feats, lengths, [request])[0]
    (word,) = [w for w in hyp.words if w.text == NAME]
    lo_ms = (spot.start - PROMPT_FRAMES) * 60 - 30
    hi_ms = (spot.end - PROMPT_FRAMES + 1) * 60 - 30
    assert lo_ms <= word.start_ms < word.end_ms <= hi_ms
