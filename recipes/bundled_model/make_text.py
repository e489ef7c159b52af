"""Write the corpus text: training sentences, held-out test sentences, hotword sentences, tokenizer.

The held-out test and hotword sentences are fixed files in ``heldout/`` (written by the session-1
generator), so that changing the training text never changes the test set; training sentences equal to
a held-out one are dropped. Run on the recipe machine (needs festival's poslex, the jieba dictionary and
``requirements.txt``):
    python -m recipes.bundled_model.make_text --out .dev/gpu/text

``--dev-only`` adds the tuning ("dev") split to a text folder written before, changing nothing there:
``hot_en_dev``/``hot_zh_dev`` (other rare names in the hotword test's sentence frames) and ``dev_en``
(sentences of run 3's training distribution) as the false-positive check. Hotword decoding is tuned on
these only. Like the test split they are fixed files in ``heldout/`` (session 3's, byte for byte), checked
against the folder's text: dev names absent from training and test text, dev_en absent from training.
    python -m recipes.bundled_model.make_text --out .dev/gpu/text --dev-only
"""

from __future__ import annotations

import argparse
import gzip
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
# The dev split's names: disjoint from RARE_NAMES_* and from the training and test text (checked on
# writing), of the same mix of origins and lengths; tuning on them keeps the test names unseen.
DEV_NAMES_EN = [
    "radoslaw",
    "eluned",
    "casimir",
    "sigourney",
    "ermengarde",
    "adebayo",
    "bronislaw",
    "yevgenia",
    "hieronymus",
    "peregrine",
    "seraphina",
    "fenwick",
    "blackwood",
    "ravensworth",
    "kowalczyk",
    "dabrowski",
    "oyelowo",
    "wolfenden",
    "fairweather",
    "pemberton",
    "quimby",
    "nwachukwu",
    "rasmussen",
    "ashbourne",
    "kilpatrick",
    "gwendolyn",
    "ximena",
    "abimbola",
    "przemyslaw",
    "eudora",
]
DEV_NAMES_ZH = [
    "长孙立新",
    "钟离春华",
    "太史文博",
    "闻人思远",
    "百里晓峰",
    "呼延德胜",
    "西门秀英",
    "长孙明月",
]


# Share of name slots filled from the Faker lists. Run 3 had 0.6 of fewer slots: the ~360 common names
# (those everyday speech and the test sentences use) were heard a median 59 times. Run 4's text has
# about twice the name slots (vocatives, more name frames, names in 75 % of person slots) and gives 40 %
# of them to Faker names: common names a median ~175 times, Faker-only name tokens +20 % on run 3
# (hotword recall needs them); counts in the recipe README, "Run 4 text".
WIDE_NAMES = 0.4


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
    # run 3: wsj 0.3, wide names 0.6 (common names heard a median 59 times); bench/bundled_model.md
    ap.add_argument("--wsj-share", type=float, default=0.4, help="English sentences from WSJ POS frames")
    ap.add_argument("--wide-names", type=float, default=WIDE_NAMES, help="name share from the Faker lists")
    ap.add_argument("--seed-en", type=int, default=11)
    ap.add_argument("--dev-only", action="store_true", help="add the dev split to --out's text; see above")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.dev_only:
        write_dev(args.out)
        return

    # neither the test's nor the dev split's rare names may be heard in training
    banned = set(RARE_NAMES_EN) | set(DEV_NAMES_EN)
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
    assert {n for n, _ in hot_en} == set(RARE_NAMES_EN), "held-out hotword names differ from RARE_NAMES_EN"
    first, sur = names_en.name_lists(banned)
    text_en.widen_names(first, sur, args.wide_names)
    log.info("names: %d first, %d surnames from Faker", len(first), len(sur))
    seen_en: set[str] = set(test_en) | {s for _, s in hot_en} | set(_read_jsonl(HELDOUT / "dev_en.jsonl"))
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


def _dump(path: Path, rows: list) -> None:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")


def write_dev(out: Path) -> None:
    """hot_en_dev, hot_zh_dev and dev_en beside the existing text in ``out`` (which is only read).

    The dev split is a fixed file set in ``heldout/`` (written by session 3's generator), like the test
    split: a later change of the training generator must not move the sentences the hotword settings
    were tuned on. It is checked against this folder's text: no dev name in the training or test text,
    no dev_en sentence among the training sentences, every dev name character in the vocabulary.
    """
    train_en = _read_gz_jsonl(out / "train_en.jsonl.gz", out / "train_en.jsonl")
    train_zh = _read_gz_jsonl(out / "train_zh.jsonl.gz", out / "train_zh.jsonl")
    test_en = _read_jsonl(out / "test_en.jsonl")
    test_zh = _read_jsonl(out / "test_zh.jsonl")
    hot_en = [tuple(r) for r in _read_jsonl(out / "hot_en.jsonl")]
    hot_en_dev = [tuple(r) for r in _read_jsonl(HELDOUT / "hot_en_dev.jsonl")]
    hot_zh_dev = [tuple(r) for r in _read_jsonl(HELDOUT / "hot_zh_dev.jsonl")]
    dev_en = _read_jsonl(HELDOUT / "dev_en.jsonl")
    assert {n for n, _ in hot_en_dev} == set(DEV_NAMES_EN), "held-out dev names differ from DEV_NAMES_EN"
    assert {n for n, _ in hot_zh_dev} == set(DEV_NAMES_ZH), "held-out dev names differ from DEV_NAMES_ZH"
    words = {w for s in train_en + test_en + [s for _, s in hot_en] for w in s.split()}
    clash = words.intersection(DEV_NAMES_EN) | set(RARE_NAMES_EN).intersection(DEV_NAMES_EN)
    assert not clash, f"dev names in the training/test text: {sorted(clash)}"
    zh_text = "\n".join(train_zh + test_zh)
    clash = {n for n in DEV_NAMES_ZH if n in zh_text or n in RARE_NAMES_ZH}
    assert not clash, f"dev names in the training/test text: {sorted(clash)}"
    overlap = set(dev_en) & set(train_en)
    assert not overlap, f"{len(overlap)} dev_en sentences in the training text"
    sp = spm.SentencePieceProcessor(model_file=str(out / "lingting_mini_en_zh.bpe.model"))
    unknown = {c for n in DEV_NAMES_ZH for c in n if sp.piece_to_id(c) == sp.unk_id()}
    assert not unknown, f"dev name characters outside the vocabulary: {sorted(unknown)}"
    _dump(out / "hot_en_dev.jsonl", hot_en_dev)
    _dump(out / "hot_zh_dev.jsonl", hot_zh_dev)
    _dump(out / "dev_en.jsonl", dev_en)
    log.info(
        "dev split: %d hot_en_dev, %d hot_zh_dev, %d dev_en", len(hot_en_dev), len(hot_zh_dev), len(dev_en)
    )


def _read_gz_jsonl(gz: Path, plain: Path) -> list:
    if gz.exists():
        text = gzip.decompress(gz.read_bytes()).decode("utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return _read_jsonl(plain)


if __name__ == "__main__":
    main()
