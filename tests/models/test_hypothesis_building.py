"""Hypothesis building (ids -> token ids, text, word spans) against a straightforward reference.

The reference below is the per-token implementation that ``char_text``, ``timestamps`` and
``ParaformerModel.hypothesis`` had before they were made table-driven (session 7, bench/hypothesis_speed.py);
the fast code must give byte-identical results on every input, FunASR's quirks included.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from asr_engine.decoding.char_text import CharTable, assemble_text
from asr_engine.decoding.cif import cif_sequential
from asr_engine.decoding.timestamps import _fire_indices, token_spans_ms
from asr_engine.models.base import DecodeRequest, FrontendConfig, Hypothesis
from asr_engine.models.paraformer import ParaformerModel, ParaformerNet, parse_paraformer_dims
from asr_engine.tokens import Vocabulary
from asr_engine.types import Word

# ------------------------------------------------------------------------------------ reference (oracle)

_REF_SPECIAL = ("<s>", "</s>", "<unk>", "<OOV>")
_REF_SPACE = " "
Span = tuple[int, int]


def _ref_is_chinese_like(s: str) -> bool:
    return ("\u4e00" <= s <= "\u9fff") or ("0" <= s <= "9") or s == "@"


def _ref_clean(tok: str) -> str:
    for special in (" ", *_REF_SPECIAL):
        tok = tok.replace(special, "")
    return tok


def _ref_all_chinese_tokens(tokens: Sequence[str]) -> bool:
    return bool(tokens) and all(_ref_is_chinese_like(_ref_clean(t)) for t in tokens)


def _ref_all_alpha_tokens(tokens: Sequence[str]) -> bool:
    if not tokens:
        return False
    for tok in tokens:
        cur = _ref_clean(tok)
        if not cur.isalpha() and cur != "'":
            return False
        if cur.isalpha() and _ref_is_chinese_like(cur):
            return False
    return True


def _ref_chars_chinese(tok: str) -> bool:
    return bool(tok) and all(_ref_is_chinese_like(c) for c in tok)


def _ref_chars_alpha(tok: str) -> bool:
    return bool(tok) and all((c.isalpha() or c == "'") and not _ref_is_chinese_like(c) for c in tok)


def _ref_word_list(tokens: Sequence[str], spans: Sequence[Span] | None) -> tuple[list[str], list[Span]]:
    words: list[str] = []
    out_spans: list[Span] = []
    if _ref_all_chinese_tokens(tokens):
        words = [t.replace(" ", "") for t in tokens]
        if spans is not None:
            out_spans = list(spans[: len(words)])
        return words, out_spans
    if _ref_all_alpha_tokens(tokens):
        for i, tok in enumerate(tokens):
            words += [tok, _REF_SPACE]
            if spans is not None:
                out_spans.append(spans[i])
        return words, out_spans
    pending = ""
    after_alpha = False
    begin = end = 0
    span_open = True
    for i, tok in enumerate(tokens):
        if spans is not None and span_open:
            begin, end = spans[i]
        if _ref_chars_chinese(tok):
            if after_alpha:
                words.pop()
            words.append(tok)
            after_alpha = False
            span_open = True
            out_spans.append((begin, end))
            begin = end
        elif "@@" in tok:
            pending += tok.replace("@@", "")
            after_alpha = False
            span_open = False
            if spans is not None:
                end = spans[i][1]
        elif _ref_chars_alpha(tok):
            words += [pending + tok, _REF_SPACE]
            pending = ""
            after_alpha = True
            span_open = True
            if spans is not None:
                end = spans[i][1]
            out_spans.append((begin, end))
            begin = end
        else:
            words.append(tok)
            if spans is not None:
                out_spans.append(spans[i])
    return words, out_spans


def _ref_is_letter(w: str) -> bool:
    return len(w) == 1 and w.isascii() and w.isalpha()


def _ref_merge_abbreviations(words: list[str], spans: list[Span]) -> tuple[list[str], list[Span]]:
    out_words: list[str] = []
    out_spans: list[Span] = []
    span_index = 0
    i = 0
    n = len(words)
    while i < n:
        if (
            _ref_is_letter(words[i])
            and i + 2 < n
            and words[i + 1] == _REF_SPACE
            and _ref_is_letter(words[i + 2])
        ):
            j = i + 2
            while j + 2 < n and words[j + 1] == _REF_SPACE and _ref_is_letter(words[j + 2]):
                j += 2
            letters = words[i : j + 1 : 2]
            out_words.append("".join(letters).upper())
            if spans:
                out_spans.append((spans[span_index][0], spans[span_index + len(letters) - 1][1]))
            span_index += len(letters)
            i = j + 1
            continue
        out_words.append(words[i])
        if words[i] != _REF_SPACE:
            if spans:
                out_spans.append(spans[span_index])
            span_index += 1
        i += 1
    return out_words, out_spans


def ref_assemble_text(
    tokens: Sequence[str], spans: Sequence[Span] | None = None
) -> tuple[str, tuple[Word, ...]]:
    kept = [t for t in tokens if t not in _REF_SPECIAL]
    words, word_spans = _ref_word_list(kept, spans)
    words, word_spans = _ref_merge_abbreviations(words, word_spans if spans is not None else [])
    real = [w for w in words if w != _REF_SPACE]
    if spans is None:
        return "".join(words).strip(), ()
    text = " ".join(real).strip()
    return text, tuple(
        Word(text=w, start_ms=s, end_ms=e) for w, (s, e) in zip(real, word_spans, strict=False)
    )


_REF_FIRE_THRESHOLD = 1.0 - 1e-4


def _ref_fire_places(peaks: np.ndarray) -> np.ndarray:
    return np.nonzero(peaks >= np.float32(_REF_FIRE_THRESHOLD))[0] + -1.5


def ref_token_spans_ms(
    weights: torch.Tensor, peaks: torch.Tensor, num_tokens: int, *, upsample_rate: int = 1
) -> list[tuple[int, int]]:
    if num_tokens <= 0:
        return []
    unit = 10.0 * 6 / 1000 / upsample_rate
    w = weights.detach().float().cpu()
    p = peaks.detach().float().cpu().numpy()
    places = _ref_fire_places(p)
    if len(places) != num_tokens + 1:
        w = w / (w.sum() / (num_tokens + 1))
        p = cif_sequential(w.numpy(), _REF_FIRE_THRESHOLD)
        places = _ref_fire_places(p)
    n_frames = p.shape[0]
    if len(places) == 0:
        return [(0, 0)] * num_tokens
    spans: list[list[float]] = []
    is_token: list[bool] = []
    if places[0] > 5:
        spans.append([0.0, places[0] * unit])
        is_token.append(False)
    for i in range(len(places) - 1):
        is_token.append(True)
        if places[i + 1] - places[i] <= 12:
            spans.append([places[i] * unit, places[i + 1] * unit])
        else:
            split = places[i] + 12
            spans.append([places[i] * unit, split * unit])
            spans.append([split * unit, places[i + 1] * unit])
            is_token.append(False)
    if not spans:
        spans.append([places[0] * unit, places[0] * unit])
        is_token.append(True)
    if n_frames - places[-1] > 5:
        end = (n_frames + places[-1]) * 0.5
        spans[-1][1] = end * unit
        spans.append([end * unit, n_frames * unit])
        is_token.append(False)
    else:
        spans[-1][1] = n_frames * unit
    out = [(int(s * 1000), int(e * 1000)) for (s, e), tok in zip(spans, is_token, strict=True) if tok]
    if len(out) != num_tokens:
        out = (out + [out[-1]] * num_tokens)[:num_tokens]
    return out


def ref_hypothesis(
    tokens: Sequence[str],
    argmax_ids: torch.Tensor,
    timestamps: bool,
    always_spaced: bool,
    *,
    weights: torch.Tensor | None,
    peaks: torch.Tensor | None,
    rate: int,
    token_count: int,
    frame_count: int,
) -> Hypothesis:
    """``ParaformerModel.hypothesis`` as it was (host counts given)."""
    n = token_count
    if n < 1:
        return Hypothesis(token_ids=(), text="")
    kept = [t for t in argmax_ids[:n].tolist() if t not in (0, 1, 2)]
    toks = [tokens[i] for i in kept]
    spans: list[tuple[int, int]] | None = None
    if timestamps:
        assert weights is not None and peaks is not None
        length = frame_count + 1 if rate == 1 else frame_count * rate
        spans = ref_token_spans_ms(weights[:length], peaks[:length], len(kept), upsample_rate=rate)
    elif always_spaced:
        spans = [(0, 0)] * len(kept)
    text, words = ref_assemble_text(toks, spans)
    return Hypothesis(token_ids=tuple(kept), text=text, words=words if timestamps else ())


# ------------------------------------------------------------------------------------------- test inputs

# Every kind of token FunASR's assembly tells apart: CJK (single, multi, range edges), digits and "@"
# (Chinese-like by string comparison), BPE pieces ("@@" anywhere, alone), English words, single letters
# (abbreviation merging), apostrophes, punctuation (ASCII and full-width), other scripts (kana and Greek
# are alphabetic but not Chinese-like), tokens with spaces, special strings whole and inside tokens.
CJK = ["你", "好", "世", "界", "中文", "\u4e00", "\u9fff", "一二", "你 ", " 好"]
CHINESE_LIKE = ["0", "1", "9", "12", "5a", "@", "90", "你1"]
PIECES = ["welc@@", "qui@@", "@@", "a@@", "re@@", "@@ing", "thi@@s", "你@@", "1@@"]
WORDS = ["the", "tion", "dog", "it's", "'", "don't", "Hello", "café", "naïve", "ing", "ck", "a b", "o'"]
LETTERS = ["a", "b", "c", "d", "x", "I", "Z", "é", "ß"]
PUNCT = [",", ".", "?", "!", "，", "。", "？", "、", "-", "'s-", "a,", "你。", "ok!", "3.5"]
OTHER = ["の", "カタ", "αβ", "Ω", "한", "", " ", "  ", "\t", "a\u3000", "\u3000", "ǅ", "Ⅻ", "²", "٣"]
SPECIAL = ["<s>", "</s>", "<unk>", "<OOV>", "<unk>你", "a<unk>", "<s>b", "<OOV>@@", "<unk><unk>"]
ALL = CJK + CHINESE_LIKE + PIECES + WORDS + LETTERS + PUNCT + OTHER + SPECIAL
POOLS = {
    "cjk": CJK + CHINESE_LIKE,
    "cjk_special": CJK + CHINESE_LIKE + SPECIAL,
    "alpha": WORDS + LETTERS,
    "alpha_special": WORDS + LETTERS + ["<unk>", "<s>b", "a<unk>"],
    "letters": [*LETTERS, "a", "b", "c", "d", " ", "'"],
    "bpe": PIECES + WORDS + LETTERS,
    "mixed": ALL,
    "mixed_cjk_bpe": CJK + PIECES + WORDS + LETTERS + PUNCT,
}


def _sequences(seed: int, count: int) -> list[list[str]]:
    rng = random.Random(seed)
    out: list[list[str]] = [[], ["<unk>"], ["<s>", "</s>"], ["welc@@"], ["a", "b"], [" "], [""]]
    pools = list(POOLS.values())
    while len(out) < count:
        pool = pools[len(out) % len(pools)]
        out.append([rng.choice(pool) for _ in range(rng.randrange(0, 25))])
    return out


def _random_spans(rng: random.Random, n: int) -> list[Span]:
    return [(rng.randrange(-100, 5000), rng.randrange(-100, 5000)) for _ in range(n)]


# ----------------------------------------------------------------------------------------- text assembly


def test_assemble_text_matches_reference() -> None:
    rng = random.Random(1)
    for tokens in _sequences(7, 4000):
        for spans in (None, _random_spans(rng, len(tokens)), [(0, 0)] * len(tokens)):
            text, words = ref_assemble_text(tokens, spans)
            got = assemble_text(tokens, spans)
            assert (got.text, got.words) == (text, words), (tokens, spans)


def test_char_table_on_ids_matches_reference() -> None:
    vocab = ["<blank>", "<s>", "</s>", *dict.fromkeys(ALL)]
    table = CharTable(tuple(vocab))
    index = {t: i for i, t in enumerate(vocab)}
    rng = random.Random(2)
    for tokens in _sequences(8, 3000):
        ids = [index[t] for t in tokens]
        for spans in (None, _random_spans(rng, len(tokens))):
            text, words = ref_assemble_text(tokens, spans)
            got = table.assemble(ids, spans)
            assert (got.text, got.words) == (text, words), (tokens, spans)


def test_spans_must_pair_with_tokens() -> None:
    with pytest.raises(ValueError, match="spans"):
        assemble_text(["你", "好"], [(0, 1)])


def test_char_table_is_built_once_per_model_not_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model makes its vocabulary's table when it loads; building results makes none."""
    model = _tiny_model(["<blank>", "<s>", "</s>", "你", "好", "<unk>"])
    assert model.char_table.tokens == model.vocabulary.tokens
    built: list[CharTable] = []
    real_init = CharTable.__init__

    def counting_init(self: CharTable, tokens: tuple[str, ...]) -> None:
        built.append(self)
        real_init(self, tokens)

    monkeypatch.setattr(CharTable, "__init__", counting_init)
    ids = torch.tensor([[3, 4, 5, 0], [4, 3, 0, 0]])
    for _ in range(3):
        hyps = model.host_hypotheses(ids, [3, 2], [10, 10], [DecodeRequest(), DecodeRequest()])
    assert [h.text for h in hyps] == ["你好", "好你"]
    assert (
        model.hypothesis(ids[0], None, 0, False, weights=None, peaks=None, rate=1, token_count=2).text
        == "你好"
    )
    assert built == []


# ------------------------------------------------------------------------------------------- timestamps


def _cif_weights(rng: np.random.Generator, frames: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(fires, alphas) shaped like Paraformer's: alphas in [0, scale), fires = FunASR's accumulator."""
    alphas = (rng.random(frames, dtype=np.float32) * np.float32(scale)).astype(np.float32)
    prefix = np.cumsum(alphas.astype(np.float64)).astype(np.float32)
    floor = np.floor(prefix)
    fired = (floor - np.concatenate([[0.0], floor[:-1]])) > 0
    fires = (fired.astype(np.float32) + prefix) - floor
    return torch.from_numpy(fires.astype(np.float32)), torch.from_numpy(alphas)


def _outcome(call: Callable[..., object], *args: object, **kwargs: object) -> object:
    """The call's result, or the type of what it raised (the reference fails on some degenerate input)."""
    try:
        return call(*args, **kwargs)
    except Exception as exc:
        return type(exc)


def test_token_spans_match_reference() -> None:
    rng = np.random.default_rng(3)
    checked = 0
    for case in range(1500):
        frames = int(rng.integers(1, 300))
        fires, alphas = _cif_weights(rng, frames, float(rng.choice([0.3, 0.6, 1.2, 3.0])))
        kind = case % 5
        if kind == 0:  # Paraformer: fires as weights, alphas as peaks (the re-fire path)
            weights, peaks, rate = fires, alphas, 1
        elif kind == 1:  # SeACo: peaks from the weights' own sequential CIF (usually no re-fire)
            weights = alphas.repeat_interleave(3) / 3
            peaks = torch.from_numpy(cif_sequential(weights.numpy(), 1.0 - 1e-4))
            rate = 3
        elif kind == 2:  # peaks that fire exactly: every 3rd frame at 1.0
            weights, peaks, rate = fires, (torch.arange(frames) % 3 == 2).float(), 1
        elif kind == 3:  # zeros, tiny and subnormal weights, a huge one
            weights = torch.tensor(
                rng.choice([0.0, 1e-40, 1e-7, 0.5, 0.9999, 1.0, 3e4], frames), dtype=torch.float32
            )
            peaks, rate = torch.zeros(frames), 1
        else:  # float64 and bfloat16 inputs are read as float32
            dtype = torch.float64 if case % 2 else torch.bfloat16
            weights, peaks, rate = fires.to(dtype), alphas.to(dtype), 1
        total = min(int(weights.double().sum()), 400)
        for num_tokens in {0, 1, 2, total, total + 1, int(rng.integers(0, 60)), -1}:
            want = _outcome(ref_token_spans_ms, weights, peaks, num_tokens, upsample_rate=rate)
            got = _outcome(token_spans_ms, weights, peaks, num_tokens, upsample_rate=rate)
            assert got == want, (case, num_tokens)
            w32, p32 = weights.float().numpy(), peaks.float().numpy()
            assert _outcome(token_spans_ms, w32, p32, num_tokens, upsample_rate=rate) == want
            checked += 1
    assert checked > 5000


def test_token_spans_non_finite_weights_match_reference() -> None:
    for weights in (
        torch.tensor([0.0, float("nan"), 0.5, 0.7]),
        torch.tensor([0.2, float("inf"), 0.5, 0.7]),
        torch.tensor([3e38, 3e38, 0.5, 0.7]),
        torch.zeros(6),
    ):
        peaks = torch.zeros_like(weights)
        for num_tokens in (1, 2, 5):
            want = _outcome(ref_token_spans_ms, weights, peaks, num_tokens)
            assert _outcome(token_spans_ms, weights, peaks, num_tokens) == want


def test_token_spans_refire_counts_the_weights_frames() -> None:
    # Peaks shorter than the weights (not a caller's shape, but the re-fire path reads the weights' length).
    fires, alphas = _cif_weights(np.random.default_rng(9), 120, 0.4)
    for num_tokens in (3, 10, 20):
        want = ref_token_spans_ms(fires, alphas[:60], num_tokens)
        assert token_spans_ms(fires, alphas[:60], num_tokens) == want


def _reference_fires(weights: np.ndarray) -> list[int]:
    threshold = 1.0 - 1e-4
    return np.flatnonzero(cif_sequential(weights, threshold) >= np.float32(threshold)).tolist()


def test_fire_loop_rounds_like_float32() -> None:
    thr = np.float32(1.0 - 1e-4)
    a, b = np.float32(thr - np.float32(2**-20)), np.float32(2**-20 - 2**-26)
    # The exact sum falls 2^-26 short of the threshold; float32 rounds it up onto the threshold.
    assert float(a) + float(b) < float(thr) <= float(np.float32(a + b))
    weights = np.array([a, b, 0.25, 0.75], dtype=np.float32)
    assert _fire_indices(weights.tolist()) == _reference_fires(weights) == [1, 3]


def test_fire_loop_matches_cif_sequential() -> None:
    rng = np.random.default_rng(6)
    special = np.array(
        [0.0, -0.0, 1e-45, 1e-40, 1.0, 0.9999, 3e38, -3e38, np.inf, -np.inf, np.nan], np.float32
    )
    for case in range(600):
        n = int(rng.integers(0, 400))
        if case % 3 == 0:
            weights = rng.random(n, dtype=np.float32) * np.float32(rng.choice([0.1, 0.5, 1.5]))
        elif case % 3 == 1:  # values spread over many binades: rounding on nearly every add
            weights = (rng.random(n) * 2.0 ** rng.integers(-30, 2, n)).astype(np.float32)
        else:
            weights = np.where(rng.random(n) < 0.1, rng.choice(special, n), rng.normal(0.3, 0.4, n)).astype(
                np.float32
            )
        with np.errstate(all="ignore"):
            assert _fire_indices(weights.tolist()) == _reference_fires(weights), case


# ---------------------------------------------------------------------------------- model hypotheses


def _tiny_model(tokens: Sequence[str]) -> ParaformerModel:
    """A real (random, 1-block) Paraformer over ``tokens``: hypothesis building never runs the net."""
    config = {
        "encoder_conf": {"output_size": 8, "attention_heads": 2, "linear_units": 8, "num_blocks": 1},
        "decoder_conf": {"attention_heads": 2, "linear_units": 8, "num_blocks": 1, "att_layer_num": 1},
        "predictor_conf": {"idim": 8},
    }
    vocabulary = Vocabulary(tuple(tokens))
    net = ParaformerNet(parse_paraformer_dims(config, vocab_size=len(vocabulary)))
    return ParaformerModel(net, vocabulary, FrontendConfig(), device=torch.device("cpu"), dtype=torch.float32)


def _check_host_hypotheses(model: ParaformerModel, seed: int, rounds: int) -> int:
    tokens = model.vocabulary.tokens
    v = len(tokens)
    gen = np.random.default_rng(seed)
    checked = 0
    for r in range(rounds):
        b = int(gen.integers(1, 9))
        width = int(gen.integers(1, 40))
        frames_max = int(gen.integers(1, 250))
        # Bias some rows towards blanks/sos/eos so that filtering matters.
        ids = torch.from_numpy(gen.integers(0, v, (b, width)))
        ids[gen.random((b, width)) < 0.15] = int(gen.integers(0, 3))
        counts = [int(c) for c in gen.integers(-1, width + 1, b)]
        frames = [int(f) for f in gen.integers(0, frames_max + 1, b)]
        weights = torch.empty(b, 2, frames_max + 1)
        for i in range(b):
            fires, alphas = _cif_weights(gen, frames_max + 1, float(gen.choice([0.3, 0.6])))
            weights[i, 0], weights[i, 1] = fires, alphas
        requests = [DecodeRequest(timestamps=bool(gen.random() < 0.5)) for _ in range(b)]
        with_weights = weights if any(q.timestamps for q in requests) or r % 2 else None
        for spaced in (False, True):
            model.always_spaced_text = spaced
            got = model.host_hypotheses(ids, counts, frames, requests, with_weights)
            want = [
                ref_hypothesis(
                    tokens,
                    ids[i],
                    q.timestamps,
                    spaced,
                    weights=weights[i, 0],
                    peaks=weights[i, 1],
                    rate=1,
                    token_count=counts[i],
                    frame_count=frames[i],
                )
                for i, q in enumerate(requests)
            ]
            assert got == want, (r, spaced)
            # The single-item entry point (SeACo's) on a tensor row, rate 3 included.
            i = int(gen.integers(0, b))
            for rate in (1, 3):
                ts = requests[i].timestamps
                w = weights[i, 0].repeat(rate) if rate == 3 else weights[i, 0]
                p = weights[i, 1].repeat(rate) if rate == 3 else weights[i, 1]
                one = model.hypothesis(
                    ids[i],
                    None,
                    i,
                    ts,
                    weights=w,
                    peaks=p,
                    rate=rate,
                    token_count=counts[i],
                    frame_count=frames[i] // rate,
                )
                assert one == ref_hypothesis(
                    tokens,
                    ids[i],
                    ts,
                    spaced,
                    weights=w,
                    peaks=p,
                    rate=rate,
                    token_count=counts[i],
                    frame_count=frames[i] // rate,
                )
            checked += b
    return checked


def test_host_hypotheses_match_reference_on_every_token_kind() -> None:
    model = _tiny_model(list(dict.fromkeys(["<blank>", "<s>", "</s>", *ALL])))
    assert _check_host_hypotheses(model, 4, 150) > 500


def test_host_hypotheses_match_reference_on_parity_vocabulary(parity_dir: Path) -> None:
    tokens = json.loads((parity_dir / "paraformer" / "model" / "tokens.json").read_text("utf-8"))
    model = _tiny_model(tokens)
    assert _check_host_hypotheses(model, 5, 100) > 300


def test_host_hypotheses_need_weights_for_timestamps() -> None:
    model = _tiny_model(["<blank>", "<s>", "</s>", "你", "<unk>"])
    with pytest.raises(ValueError, match="CIF weights"):
        model.host_hypotheses(torch.tensor([[3, 3]]), [2], [4], [DecodeRequest(timestamps=True)], None)
    assert model.host_hypotheses(torch.tensor([[3, 0, 4]]), [3], [4], [DecodeRequest()]) == [
        Hypothesis(token_ids=(3, 4), text="你")
    ]


def test_words_are_plain_word_objects() -> None:
    out = assemble_text(["hello", "你", "a", "b"], [(0, 10), (10, 20), (20, 30), (30, 40)])
    want = (
        Word(text="hello", start_ms=0, end_ms=10),
        Word(text="你", start_ms=10, end_ms=20),
        Word(text="AB", start_ms=20, end_ms=40),
    )
    assert out.words == want
    for got, ref in zip(out.words, want, strict=True):
        assert type(got) is Word
        assert (repr(got), hash(got), dataclasses.asdict(got)) == (
            repr(ref),
            hash(ref),
            dataclasses.asdict(ref),
        )
        assert pickle.loads(pickle.dumps(got)) == ref
        with pytest.raises(dataclasses.FrozenInstanceError):
            got.text = "x"  # type: ignore[misc]
