"""Write the corpus text: training sentences, held-out test sentences, hotword sentences, tokenizer.

The held-out test and hotword sentences are fixed files in ``heldout/`` (written by the session-1
generator), so that changing the training text never changes the test set; training sentences equal to
a held-out one are dropped. Run on the recipe machine (needs festival's poslex, the jieba dictionary and
``requirements.txt``):
    python -m recipes.bundled_model.make_text --out .dev/gpu/text
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from pathlib import Path

import sentencepiece as spm

from recipes.bundled_model import names_en, text_en, text_zh, tokenizer
from recipes.bundled_model.text_en_wsj import WsjFrames

log = logging.getLogger(__name__)

HELDOUT = Path(__file__).resolve().parent / "heldout"

# Names the training text never contains; the hotword test asks the model to find them.
RARE_NAMES_EN = [
    "zbigniew",
    "thorvald",
    "oluwaseun",
    "xiomara",
    "kazimierz",
    "ignatius",
    "philippa",
    "bartholomew",
    "wojciech",
    "anastasios",
    "leocadia",
    "evangeline",
    "ptolemy",
    "quenneville",
    "abernathy",
    "okonkwo",
    "villalobos",
    "thistlewood",
    "castellano",
    "haverford",
    "lindqvist",
    "marchetti",
    "brzezinski",
    "fitzwilliam",
    "mcallister",
    "oyelaran",
    "krishnamurthy",
    "vandermeer",
    "delacroix",
    "szymanski",
]
RARE_NAMES_ZH = [
    "欧阳震华",
    "司马相如",
    "东方俊凯",
    "上官秀清",
    "夏侯明辉",
    "公孙晓雪",
    "宇文浩宁",
    "南宫佳怡",
]


def _unique(gen, n: int, rng: random.Random, seen: set[str]) -> list[str]:
    out: list[str] = []
    tries = 0
    while len(out) < n and tries < n * 20:
        tries += 1
        s = gen(rng)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def _read_jsonl(path: Path) -> list:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n-en", type=int, default=170000)
    ap.add_argument("--n-zh", type=int, default=55000)
    ap.add_argument("--wsj-share", type=float, default=0.3, help="English sentences from WSJ POS frames")
    ap.add_argument("--wide-names", type=float, default=0.6, help="share of names from the Faker lists")
    ap.add_argument("--seed-en", type=int, default=11)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    args.out.mkdir(parents=True, exist_ok=True)

    banned = set(RARE_NAMES_EN)
    wsj = WsjFrames(banned)
    zh = text_zh.ZhGenerator()

    def en_sentence(rng: random.Random) -> str:
        s = wsj.sentence(rng) if rng.random() < args.wsj_share else text_en.sentence(rng)
        s = " ".join(
            ("an" if w == "a" and i + 1 < len(s.split()) and s.split()[i + 1][0] in "aeiou" else w)
            for i, w in enumerate(s.split())
        )
        return s

    test_en = _read_jsonl(HELDOUT / "test_en.jsonl")
    test_zh = _read_jsonl(HELDOUT / "test_zh.jsonl")
    hot_en = [tuple(r) for r in _read_jsonl(HELDOUT / "hot_en.jsonl")]
    hot_zh = [tuple(r) for r in _read_jsonl(HELDOUT / "hot_zh.jsonl")]
    assert {n for n, _ in hot_en} == banned, "held-out hotword names differ from RARE_NAMES_EN"
    first, sur = names_en.name_lists(banned)
    text_en.widen_names(first, sur, args.wide_names)
    log.info("names: %d first, %d surnames from Faker", len(first), len(sur))
    seen_en: set[str] = set(test_en) | {s for _, s in hot_en}
    seen_zh: set[str] = set(test_zh) | {s for _, s in hot_zh}
    train_en = _unique(en_sentence, args.n_en, random.Random(args.seed_en), seen_en)
    train_zh = _unique(zh.sentence, args.n_zh, random.Random(2), seen_zh)
    for s in train_en:
        assert not banned.intersection(s.split()), s

    def dump(name: str, rows: list) -> None:
        (args.out / name).write_text(
            "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
        )

    dump("train_en.jsonl", train_en)
    dump("train_zh.jsonl", train_zh)
    dump("test_en.jsonl", test_en)
    dump("test_zh.jsonl", test_zh)
    dump("hot_en.jsonl", hot_en)
    dump("hot_zh.jsonl", hot_zh)
    chars = zh.charset()
    missing = {c for s in train_zh + test_zh for c in s} - set(chars)
    assert not missing, missing
    model = tokenizer.train(train_en, chars, args.out / "lingting_mini_en_zh")
    sp = spm.SentencePieceProcessor(model_file=str(model))
    unk = sum(1 for s in train_en[:2000] for i in tokenizer.encode_target(sp, "en", s) if i == 0)
    log.info("vocab %d, %d zh chars, unk in en sample %d", sp.get_piece_size(), len(chars), unk)


if __name__ == "__main__":
    main()
