"""Hotword spellings of the context graph keep the word break of names spelled after a lone '▁' piece.

The bundled model's tokenizer has no ``▁x`` piece: "ximena" after a space is ``▁ x im en a``. Its bare
spelling ``x im en a`` continues whatever word stands before it, so the context graph may offer it only
where the text starts (behind the tag prefix); elsewhere the beam glues the name on ("metximena").
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr_engine.decoding.ctc import prefix_beam_search
from asr_engine.engine import BUNDLED_DIR
from asr_engine.models.loader import load_model
from asr_engine.models.sensevoice import BLANK_ID, SenseVoiceModel
from asr_engine.types import Hotword

NAME = "ximena"


@pytest.fixture(scope="module")
def bundled() -> SenseVoiceModel:
    model = load_model(BUNDLED_DIR / "lingting-mini", device=torch.device("cpu"))
    assert isinstance(model, SenseVoiceModel)
    return model


def _spaced(model: SenseVoiceModel, phrase: str) -> list[str]:
    return model.pieces.EncodeAsPieces("a " + phrase)[1:]


def test_the_tokenizer_spells_the_name_after_a_lone_space_piece(bundled: SenseVoiceModel) -> None:
    spaced = _spaced(bundled, NAME)
    assert spaced[0] == "▁" and not spaced[1].startswith("▁")  # the case this file is about


def test_bare_spellings_are_pinned_to_the_text_start(bundled: SenseVoiceModel) -> None:
    pieces = bundled.pieces
    tags = {pieces.piece_to_id(t) for t in ("<|woitn|>", "<|withitn|>")}
    seqs = [tuple(pieces.id_to_piece(i) for i in s) for s in bundled.hotword_token_ids(NAME)]
    spaced = tuple(_spaced(bundled, NAME))
    bare = tuple(pieces.EncodeAsPieces(NAME))
    bare = bare[1:] if bare[0] == "▁" else bare
    assert seqs[0] == spaced
    # every other spelling opens with a tag of the prefix: the bare one may start the text only
    assert sorted(seqs[1:]) == sorted((pieces.id_to_piece(t), *bare) for t in tags)
    for seq in bundled.hotword_token_ids(NAME):
        first = seq[0] if seq[0] not in tags else seq[1]
        assert seq[0] in tags or pieces.id_to_piece(first).startswith("▁")
    # a Mandarin phrase (no word break in the text) is still offered unpinned, without the lone '▁'
    zh = bundled.hotword_token_ids("欧阳震华")
    assert any(pieces.id_to_piece(s[0]) != "▁" and s[0] not in tags for s in zh)


def _frames(model: SenseVoiceModel, plan: list[tuple[str, float, float]]) -> torch.Tensor:
    """Log-probs (T, V): per frame, ``piece`` at probability p, a lone "▁" at q, blank taking the rest;
    every other piece (the tags too) at 1e-9, about what a trained model gives them."""
    v = model.pieces.get_piece_size()
    lp = np.full((len(plan), v), np.log(1e-9), dtype=np.float32)
    space = model.pieces.piece_to_id("▁")
    for t, (piece, p, q) in enumerate(plan):
        lp[t, space] = np.log(q)
        if piece:
            lp[t, model.pieces.piece_to_id(piece)] = np.log(p)
        lp[t, BLANK_ID] = np.log(1.0 - p - q)
    return torch.from_numpy(lp)


def test_the_context_graph_beam_keeps_the_space_before_the_name(bundled: SenseVoiceModel) -> None:
    # "▁please ▁call" clearly, then the name's letters with no "▁" heard between (greedy glues them:
    # "please callximena"). The hotword is a word of its own: the graph must pay for the "▁" that
    # separates it, and must not reward the glued spelling.
    # the "▁" only at 1e-6 under the name's first letter (1e-9 elsewhere): the spaced spelling pays
    # ~13 for it, against a full match's bonus of twice 6 per token
    spaced = _spaced(bundled, NAME)
    plan = [("▁please", 0.95, 1e-9), ("", 0.0, 1e-9), ("▁call", 0.95, 1e-9), ("", 0.0, 1e-9)]
    plan += [(p, 0.6, 1e-6 if i == 0 else 1e-9) for i, p in enumerate(x for x in spaced[1:] for _ in "ab")]
    plan += [("", 0.0, 1e-9)]
    lp = _frames(bundled, plan)
    greedy = prefix_beam_search(lp, lp.shape[0], bundled.beam_size, None, blank=BLANK_ID)
    assert bundled.pieces.DecodeIds(list(greedy.token_ids)).split() == ["please", "call" + NAME]
    graph = bundled.context_graph((Hotword(phrase=NAME),))
    assert graph is not None
    result = prefix_beam_search(lp, lp.shape[0], bundled.beam_size, graph, blank=BLANK_ID)
    assert bundled.pieces.DecodeIds(list(result.token_ids)).split() == ["please", "call", NAME]
