"""CTC forced alignment (against exhaustive search) and FunASR's piece-to-word timestamp rules."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm
import torch

from asr_engine.decoding.ctc_timestamps import (
    ctc_forced_align,
    merge_pieces,
    piece_spans,
    sensevoice_words,
)
from asr_engine.types import Word


def _trellis(lp: np.ndarray, targets: list[int]) -> np.ndarray:
    ext = [0]
    for t in targets:
        ext += [t, 0]
    return lp[:, ext]


def _collapse(path: tuple[int, ...]) -> list[int]:
    out, prev = [], None
    for token in path:
        if token != prev and token != 0:
            out.append(token)
        prev = token
    return out


def _best_alignment_score(lp: np.ndarray, targets: list[int]) -> float:
    best = -np.inf
    for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
        if _collapse(path) == targets:
            best = max(best, float(sum(np.float64(lp[t, c]) for t, c in enumerate(path))))
    return best


def _path_score(lp: np.ndarray, targets: list[int], states: np.ndarray) -> float:
    trellis = _trellis(lp, targets)
    return float(sum(np.float64(trellis[t, s]) for t, s in enumerate(states)))


def test_forced_alignment_is_the_best_path() -> None:
    rng = np.random.default_rng(5)
    for targets in ([1, 2], [2, 2], [1, 3, 1], [3]):
        lp = np.log(rng.dirichlet(np.ones(4), size=6)).astype(np.float32)
        states = ctc_forced_align(_trellis(lp, targets), targets)
        assert states is not None
        assert np.all(np.diff(states) >= 0) and states[0] in (0, 1)
        labels = [0 if s % 2 == 0 else targets[s // 2] for s in states]
        assert _collapse(tuple(labels)) == targets
        assert _path_score(lp, targets, states) == pytest.approx(_best_alignment_score(lp, targets), abs=1e-4)


def test_ties_prefer_staying_and_ending_on_the_token() -> None:
    lp = np.zeros((3, 3), dtype=np.float32)  # every path scores the same
    states = ctc_forced_align(_trellis(lp, [1]), [1])
    assert states is not None
    # staying wins every tie: token from frame 0 (start on it) to the end (token beats final blank)
    assert states.tolist() == [1, 1, 1]


def test_targets_that_do_not_fit_give_none() -> None:
    lp = np.zeros((2, 3), dtype=np.float32)
    assert ctc_forced_align(_trellis(lp, [1, 1]), [1, 1]) is None  # needs a blank between: 3 frames
    assert ctc_forced_align(np.zeros((0, 3), dtype=np.float32), [1]) is None
    with pytest.raises(ValueError, match="columns"):
        ctc_forced_align(np.zeros((2, 4), dtype=np.float32), [1])


def test_piece_spans_cover_multi_id_pieces() -> None:
    # targets t0 t1 t2 at frames 1, 2-3, 5; piece A = t0, piece B = t1 + t2
    states = np.array([0, 1, 3, 3, 4, 5, 6])
    assert piece_spans(states, [1, 2]) == [(1, 2), (2, 6)]


def test_merge_pieces_follows_funasr() -> None:
    entries = [
        ("▁hel", 0, 60),
        ("lo", 60, 120),
        ("▁", 120, 130),
        ("▁wor", 130, 200),
        ("ld", 200, 260),
        ("你", 260, 300),
        ("ab", 300, 320),
        ("c1", 320, 340),
        ("好", 340, 400),
    ]
    got = merge_pieces(entries)
    # the first entry keeps its "▁"; so it is not ASCII-alphabetic and "lo" does not glue to it
    assert got == [
        Word(text="▁hel", start_ms=0, end_ms=60),
        Word(text="lo", start_ms=60, end_ms=120),
        Word(text="world", start_ms=130, end_ms=260),
        Word(text="你", start_ms=260, end_ms=300),
        Word(text="ab", start_ms=300, end_ms=320),
        Word(text="c1", start_ms=320, end_ms=340),
        Word(text="好", start_ms=340, end_ms=400),
    ]
    assert merge_pieces([("▁", 0, 10), ("ab", 10, 20), ("cd", 20, 30)]) == [
        Word(text="abcd", start_ms=10, end_ms=30)
    ]


def test_sensevoice_words_on_a_hand_made_emission(parity_dir: Path) -> None:
    sp = spm.SentencePieceProcessor(
        model_file=str(parity_dir / "sensevoice" / "model" / "chn_jpn_yue_eng_ko_spectok.bpe.model")
    )
    text = "<|en|><|NEUTRAL|><|Speech|><|woitn|>下周 week"
    pieces = sp.EncodeAsPieces(text)[4:]
    assert pieces == ["下周", "▁week"]
    # "▁week" re-encodes to two ids ("w", "eek"): FunASR's path raises IndexError here; we give the
    # piece the span of both. 10 speech frames: 下周 on frames 2-3, w + eek from frame 6.
    ids = [sp.EncodeAsIds(p) for p in pieces]
    frame_labels = [0, 0, ids[0][0], ids[0][0], 0, 0] + [i for i in ids[1]] + [0] * (4 - len(ids[1]))
    lp = torch.full((10, sp.get_piece_size()), -20.0)
    lp[torch.arange(10), torch.tensor(frame_labels)] = -0.01
    words = sensevoice_words(sp, text, lp)
    week_end = 6 + len(ids[1])
    assert words == (
        Word(text="下周", start_ms=90, end_ms=210),
        Word(text="week", start_ms=6 * 60 - 30, end_ms=week_end * 60 - 30),
    )
    assert sensevoice_words(sp, "<|en|><|NEUTRAL|><|Speech|><|woitn|>", lp) == ()
