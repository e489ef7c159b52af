"""Punctuation restoration: FunASR's CT-Transformer text handling, and a rule fallback.

``Punctuator`` reproduces FunASR's ``CTTransformer.inference``: split the text into words (with jieba
when the model directory lists a jieba user dictionary), map them to ids, cut them into mini-sentences
of ``split_size`` words, run each with the words carried over from the previous one, keep everything up
to the last predicted 。/？ (words after it are carried over), and assemble the text with FunASR's spacing,
capitalisation and mark conversion rules. ``punctuate_batch`` runs the i-th mini-sentences of many texts
as one padded batch on the device; each text's result is the same as alone.

``RulePunctuator`` is what the engine uses when no CT-punc directory is configured: it only makes sure a
text ends with a sentence mark ("." after ASCII, "。" after other characters).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from asr_engine.errors import ModelLoadError
from asr_engine.models.ct_punc import CtTransformer, parse_ct_punc_dims

if TYPE_CHECKING:
    from asr_engine.models.loader import ModelDir

__all__ = [
    "PunctuationResult",
    "Punctuator",
    "RulePunctuator",
    "split_mini_sentences",
    "split_words",
]

log = logging.getLogger(__name__)

_ENGLISH_CHUNK = re.compile(r"^[a-zA-Z']+$")
_ASCII_MARKS = {"，": ",", "。": ".", "？": "?"}
CACHE_POP_TRIGGER_LIMIT = 200  # carried words beyond which a comma may end a sentence


@dataclass(frozen=True)
class PunctuationResult:
    """Punctuated text and FunASR's ``punc_array`` (None for empty input or the rule fallback)."""

    text: str
    punc_ids: tuple[int, ...] | None = field(default=None)


def _ascii_initial(word: str) -> bool:
    return len(word[0].encode("utf-8")) == 1


def split_words(text: str, jieba_tokenizer: Any | None = None) -> list[str]:
    """FunASR's word split: jieba on non-English runs with a tokenizer, else ASCII runs and characters."""
    chunks = text.split()
    if jieba_tokenizer is None:
        words: list[str] = []
        for chunk in chunks:
            run = ""
            for ch in chunk:
                if len(ch.encode("utf-8")) == 1:
                    run += ch
                    continue
                if run:
                    words.append(run)
                    run = ""
                words.append(ch)
            if run:
                words.append(run)
        return words
    words = []
    group: list[str] = []
    group_english = False
    for index in range(len(chunks) + 1):
        at_end = index == len(chunks)
        english = not at_end and bool(_ENGLISH_CHUNK.match(chunks[index]))
        if group and (at_end or english != group_english):
            if group_english:
                words.extend(group)
            else:
                words.extend(jieba_tokenizer.cut("".join(group).strip(), HMM=False))
            group = []
        if not at_end:
            group.append(chunks[index])
            group_english = english
    return words


def split_mini_sentences(items: Sequence[Any], size: int) -> list[list[Any]]:
    """Consecutive pieces of ``size`` items (the last may be shorter); one piece when it all fits."""
    if size < 2:
        raise ValueError(f"split_size must be > 1, got {size}")
    if len(items) <= size:
        return [list(items)]
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class _TextState:
    """One text's progress through its mini-sentences."""

    def __init__(self, words: list[str], ids: list[int], split_size: int) -> None:
        self.words = words
        self.pieces = split_mini_sentences(words, split_size)
        self.id_pieces = split_mini_sentences(ids, split_size)
        self.index = 0
        self.cache_words: list[str] = []
        self.cache_ids: list[int] = []
        self.text = ""
        self.labels: list[int] = []

    @property
    def done(self) -> bool:
        return self.index >= len(self.pieces)

    def current(self) -> tuple[list[str], list[int]]:
        return self.cache_words + self.pieces[self.index], self.cache_ids + self.id_pieces[self.index]


class Punctuator:
    """FunASR's CT-Transformer punctuation for one loaded model (thread-safe: no per-call state kept)."""

    kind = "ct-transformer"

    def __init__(
        self,
        net: CtTransformer,
        vocab: dict[str, int],
        *,
        unk_id: int,
        device: torch.device,
        jieba_tokenizer: Any | None = None,
        split_size: int = 20,
    ) -> None:
        self.net = net
        self.vocab = vocab
        self.unk_id = unk_id
        self.device = device
        self.jieba = jieba_tokenizer
        self.split_size = split_size
        marks = net.dims.punc_list
        self.marks = marks
        self.sentence_end_id = net.dims.sentence_end_id
        self._blank = marks.index("_")
        self._ends = {i for i, m in enumerate(marks) if m in ("。", "？")}
        self._commas = {i for i, m in enumerate(marks) if m == "，"}

    @classmethod
    def from_model_dir(
        cls, model_dir: ModelDir, *, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> Punctuator:
        from asr_engine.models.loader import assign_weights, load_checkpoint

        tokens = _read_tokens(model_dir.require("token_list"))
        vocab = {tok: i for i, tok in enumerate(tokens)}
        unk = str((model_dir.config.get("tokenizer_conf") or {}).get("unk_symbol", "<unk>"))
        if unk not in vocab:
            raise ModelLoadError(f"{model_dir.path}: the token list has no {unk!r}")
        dims = parse_ct_punc_dims(model_dir.config, vocab_size=len(tokens))
        net = CtTransformer(dims, dict(model_dir.config.get("encoder_conf") or {}))
        assign_weights(net, load_checkpoint(model_dir.require("checkpoint")))
        net = net.to(device=device, dtype=dtype).eval().requires_grad_(False)
        tokenizer = _jieba_tokenizer(model_dir.jieba_usr_dict) if model_dir.jieba_usr_dict else None
        log.info(
            "CT-punc loaded from %s (%d words, jieba=%s)", model_dir.path, len(tokens), tokenizer is not None
        )
        return cls(net, vocab, unk_id=vocab[unk], device=device, jieba_tokenizer=tokenizer)

    # ------------------------------------------------------------------ public face
    def punctuate(self, text: str, *, split_size: int | None = None) -> PunctuationResult:
        return self.punctuate_batch([text], split_size=split_size)[0]

    @torch.inference_mode()
    def punctuate_batch(
        self, texts: Sequence[str], *, split_size: int | None = None
    ) -> list[PunctuationResult]:
        """Punctuate many texts; round r batches the r-th mini-sentence of every text still going."""
        size = split_size or self.split_size
        states: list[_TextState | None] = []
        for text in texts:
            words = split_words(text, self.jieba)
            ids = [self.vocab.get(w, self.unk_id) for w in words]
            states.append(_TextState(words, ids, size) if words else None)
        while True:
            active = [s for s in states if s is not None and not s.done]
            if not active:
                break
            inputs = [s.current() for s in active]
            for state, (words, labels) in zip(active, self._predict(inputs), strict=True):
                self._consume(state, words, labels)
        return [self._result(s) for s in states]

    # ------------------------------------------------------------------ steps
    def _predict(self, inputs: list[tuple[list[str], list[int]]]) -> list[tuple[list[str], list[int]]]:
        lengths = [len(ids) for _, ids in inputs]
        batch = torch.zeros(len(inputs), max(lengths), dtype=torch.long)
        for row, (_, ids) in enumerate(inputs):
            batch[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        logits = self.net(batch.to(self.device), torch.tensor(lengths, device=self.device))
        best = logits.argmax(dim=-1).cpu().tolist()
        return [(words, best[row][: lengths[row]]) for row, (words, _) in enumerate(inputs)]

    def _consume(self, state: _TextState, words: list[str], labels: list[int]) -> None:
        """Keep words up to the last sentence end (carry the rest), then assemble that piece."""
        ids = state.current()[1]
        last = state.index == len(state.pieces) - 1
        if not last:
            end = -1
            comma = -1
            for i in range(len(labels) - 2, 1, -1):
                if labels[i] in self._ends:
                    end = i
                    break
                if comma < 0 and labels[i] in self._commas:
                    comma = i
            if end < 0 and len(words) > CACHE_POP_TRIGGER_LIMIT and comma >= 0:
                end = comma
                labels[end] = self.sentence_end_id
            state.cache_words, state.cache_ids = words[end + 1 :], ids[end + 1 :]
            words, labels = words[: end + 1], labels[: end + 1]
        state.labels.extend(labels)
        state.text += self._assemble(words, labels)
        state.index += 1
        if last:
            self._finish(state)

    def _assemble(self, words: list[str], labels: list[int]) -> str:
        out: list[str] = []
        prev_ascii = False
        for i, (word, label) in enumerate(zip(words, labels, strict=True)):
            ascii_word = _ascii_initial(word)
            if ascii_word and (i == 0 or labels[i - 1] in self._ends):
                word = word.capitalize()
            if ascii_word and (i == 0 or prev_ascii):
                word = " " + word
            out.append(word)
            if label != self._blank:
                mark = self.marks[label]
                out.append(_ASCII_MARKS.get(mark, mark) if ascii_word else mark)
            prev_ascii = ascii_word
        return "".join(out)

    def _finish(self, state: _TextState) -> None:
        """FunASR's forced final mark; the last label then reads as a sentence end."""
        text = state.text
        tail = text[-1]
        if tail in ("，", "、"):
            text = text[:-1] + "。"
        elif tail == ",":
            text = text[:-1] + "."
        elif len(tail.encode("utf-8")) != 1 and tail not in ("。", "？"):
            text += "。"
        elif len(tail.encode("utf-8")) == 1 and tail not in (".", "?"):
            text += "."
        else:
            state.text = text
            return
        state.text = text
        state.labels[-1] = self.sentence_end_id

    def _result(self, state: _TextState | None) -> PunctuationResult:
        if state is None:
            return PunctuationResult("", None)
        labels = state.labels
        if self.jieba is not None:  # one entry per character for multi-character CJK words
            expanded: list[int] = []
            for word, label in zip(state.words, labels, strict=True):
                if "\u0e00" <= word[0] <= "\u9fa5" and len(word) > 1:
                    expanded.extend([self._blank] * (len(word) - 1))
                expanded.append(label)
            labels = expanded
        return PunctuationResult(state.text, tuple(labels))


class RulePunctuator:
    """Fallback without a punctuation model: end each text with "." (after ASCII) or "。" (otherwise).

    A trailing comma-like mark is replaced by the full stop; text already ending a sentence is kept.
    """

    kind = "rule"
    _ENDS = frozenset("。？！.?!…")
    _PAUSES = frozenset("，、；：,;:")

    def punctuate(self, text: str) -> PunctuationResult:
        stripped = text.strip()
        if not stripped:
            return PunctuationResult("", None)
        tail = stripped[-1]
        if tail in self._ENDS:
            return PunctuationResult(stripped, None)
        if tail in self._PAUSES:
            stripped = stripped[:-1].rstrip()
            if not stripped:
                return PunctuationResult("", None)
            tail = stripped[-1]
        return PunctuationResult(stripped + ("." if len(tail.encode("utf-8")) == 1 else "。"), None)

    def punctuate_batch(self, texts: Sequence[str]) -> list[PunctuationResult]:
        return [self.punctuate(t) for t in texts]


def _read_tokens(path: Path) -> list[str]:
    """tokens.json (JSON array) or tokens.txt (one per line), id = position; duplicates are an error."""
    try:
        if path.suffix == ".json":
            tokens = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(tokens, list):
                raise ModelLoadError(f"{path}: expected a JSON array of tokens")
            tokens = [str(t) for t in tokens]
        else:
            tokens = [line.rstrip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read token list {path}: {exc}") from exc
    if len(set(tokens)) != len(tokens):
        raise ModelLoadError(f"{path}: duplicate tokens")
    return tokens


def _jieba_tokenizer(user_dict: Path) -> Any:
    """A private jieba tokenizer with the model's user dictionary (jieba's global one stays untouched)."""
    try:
        import jieba
    except ImportError as exc:
        raise ModelLoadError("the model lists a jieba user dictionary but jieba is not installed") from exc
    logging.getLogger("jieba").setLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.load_userdict(str(user_dict))
    return tokenizer
