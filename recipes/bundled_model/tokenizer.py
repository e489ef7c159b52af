"""SenseVoice-style sentencepiece model: blank/unk 0, <s> 1, </s> 2, the 25 tags, English BPE, Chinese chars.

The tag order copies the SenseVoice parity model (shared/parity/sensevoice/README.md). Chinese characters
are user-defined symbols, so each is exactly one piece. ``add_dummy_prefix`` is off as in SenseVoice's own
model (FunASR's timestamp path re-encodes pieces and breaks otherwise); ``encode_target`` therefore
writes the word-boundary mark "▁" before every English word itself, so the first word of an utterance
uses the same pieces as any other.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

TAGS = [
    "<|zh|>",
    "<|en|>",
    "<|yue|>",
    "<|ja|>",
    "<|ko|>",
    "<|nospeech|>",
    "<|HAPPY|>",
    "<|SAD|>",
    "<|ANGRY|>",
    "<|NEUTRAL|>",
    "<|FEARFUL|>",
    "<|DISGUSTED|>",
    "<|SURPRISED|>",
    "<|EMO_UNKNOWN|>",
    "<|Speech|>",
    "<|BGM|>",
    "<|Applause|>",
    "<|Laughter|>",
    "<|Cry|>",
    "<|Sneeze|>",
    "<|Breath|>",
    "<|Cough|>",
    "<|Event_UNK|>",
    "<|withitn|>",
    "<|woitn|>",
]
WB = "\u2581"


def train(en_lines: Iterable[str], zh_chars: Sequence[str], out_prefix: Path, en_pieces: int = 500) -> Path:
    """Train on English text only; Chinese characters and tags come in as user-defined symbols."""
    data = "\n".join(en_lines).encode("utf-8")
    model = io.BytesIO()
    user = TAGS + list(zh_chars)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(data.decode("utf-8").splitlines()),
        model_writer=model,
        model_type="bpe",
        vocab_size=3 + len(user) + en_pieces,
        user_defined_symbols=user,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        unk_piece="<unk>",
        bos_piece="<s>",
        eos_piece="</s>",
        add_dummy_prefix=False,
        character_coverage=1.0,
        normalization_rule_name="identity",
        byte_fallback=False,
        num_threads=2,
        minloglevel=2,
    )
    path = out_prefix.with_suffix(".bpe.model")
    path.write_bytes(model.getvalue())
    return path


def encode_target(sp: spm.SentencePieceProcessor, lang: str, text: str) -> list[int]:
    """Ids the model learns to emit: <|lang|><|NEUTRAL|><|Speech|><|woitn|> then the spoken-form text."""
    ids = [sp.piece_to_id(t) for t in (f"<|{lang}|>", "<|NEUTRAL|>", "<|Speech|>", "<|woitn|>")]
    if lang == "zh":
        ids += [sp.piece_to_id(c) for c in text if not c.isspace()]
    else:
        for word in text.split():
            ids += sp.encode(WB + word)
    return ids
