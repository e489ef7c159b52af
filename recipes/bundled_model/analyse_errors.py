"""Error analysis of the bundled model on the held-out test sets: where the errors are, to steer the next run.

Decodes ``test_en`` and ``test_zh`` with ``evaluate.decode`` (language given, no hotwords, so the totals
match ``eval_cpu.json``), aligns each hypothesis with its reference and breaks the errors down by engine,
voice, speaking rate, sentence kind, word class and how often the reference word occurs in the training
text. Prints markdown tables and writes everything (hypotheses included) as JSON.

    python -m recipes.bundled_model.analyse_errors --model asr_engine/bundled/lingting-mini \
        --corpus /tmp/testc --text .dev/gpu/text --out /tmp/errors.json

``--hyps`` reuses the hypotheses of an earlier ``--out`` instead of decoding again.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from recipes.bundled_model import metrics, spoken_en, text_en, text_en_wsj

OK, SUB, DEL, INS = "ok", "sub", "del", "ins"

# short words that carry grammar, not content (kept as one string: easier to read than a list)
_FUNCTION = """a an the to of in on at for with by from and or but so because as is are was were be been am
    do does did has have had will would can could should may might must i you he she it we they me him her us
    them my your his its our their this that these those there here what where when how who which not no if
    than then too very all some any up out about into over after before off just also let's i'm it's don't
    can't doesn't i'd i'll we're they're"""
FUNCTION_WORDS = frozenset(_FUNCTION.split())
NUMBER_WORDS = frozenset(
    spoken_en.ONES[1:]
    + spoken_en.TEENS
    + spoken_en.TENS[2:]
    + list(spoken_en.ORD_SPECIAL.values())
    + [w + "th" for w in ("four", "six", "seven", "ten", "eleven", "thirteen", "fourteen", "fifteen")]
    + [w + "th" for w in ("sixteen", "seventeen", "eighteen", "nineteen")]
    + [t[:-1] + "ieth" for t in spoken_en.TENS[2:]]
    + [
        "zero",
        "oh",
        "hundred",
        "thousand",
        "million",
        "hundredth",
        "thousandth",
        "point",
        "percent",
        "o'clock",
    ]
)
CURRENCY = frozenset(["dollars", "cents", "euros", "pounds", "pence", "yuan"])


@dataclass(frozen=True)
class Op:
    """One alignment step: ``ref``/``hyp`` are '' for an insertion/deletion."""

    kind: str
    ref: str
    hyp: str


def align(ref: Sequence[str], hyp: Sequence[str]) -> list[Op]:
    """Levenshtein alignment with the same cost as ``metrics.edit_distance`` (ties: match/sub first)."""
    n, m = len(ref), len(hyp)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    ops: list[Op] = []
    i, j = n, m
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            ops.append(Op(OK if ref[i - 1] == hyp[j - 1] else SUB, ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i and d[i][j] == d[i - 1][j] + 1:
            ops.append(Op(DEL, ref[i - 1], ""))
            i -= 1
        else:
            ops.append(Op(INS, "", hyp[j - 1]))
            j -= 1
    return ops[::-1]


def splits_and_merges(ops: Sequence[Op]) -> int:
    """Errors that are only a word boundary moved: a sub next to an ins/del whose letters join up equal."""
    n = 0
    for a, b in itertools.pairwise(ops):
        sub, other = (a, b) if a.kind == SUB else (b, a)
        if sub.kind != SUB or other.kind not in (INS, DEL):
            continue
        first, second = (a, b)
        if other.kind == INS:  # one reference word heard as two
            n += sub.ref == first.hyp + second.hyp
        else:  # two reference words heard as one
            n += sub.hyp == first.ref + second.ref
    return n


@dataclass
class Tally:
    """Errors over a group of utterances; ``rate`` is WER/CER in % as ``metrics.error_rate`` counts it."""

    n: int = 0
    units: int = 0
    sub: int = 0
    dele: int = 0
    ins: int = 0

    def add(self, ops: Sequence[Op]) -> None:
        self.n += 1
        for o in ops:
            self.units += o.kind != INS
            self.sub += o.kind == SUB
            self.dele += o.kind == DEL
            self.ins += o.kind == INS

    @property
    def errors(self) -> int:
        return self.sub + self.dele + self.ins

    def row(self) -> dict[str, float | int]:
        rate = 100.0 * self.errors / max(self.units, 1)
        return {"n": self.n, "units": self.units, "errors": self.errors, "rate": round(rate, 2),
                "sub": self.sub, "del": self.dele, "ins": self.ins}  # fmt: skip


def group(keys: Sequence[str], aligned: Sequence[list[Op]]) -> dict[str, dict[str, float | int]]:
    tallies: dict[str, Tally] = {}
    for k, ops in zip(keys, aligned, strict=True):
        tallies.setdefault(k, Tally()).add(ops)
    return {k: tallies[k].row() for k in sorted(tallies)}


def rate_band(meta: dict) -> str:
    """Thirds of the held-out rate range: espeak 165-185 wpm, flite/festival stretch 0.94-1.06."""
    r = float(meta["rate"])
    if meta["engine"] == "espeak":
        return (
            "espeak slow (165-171)"
            if r < 172
            else "espeak mid (172-178)"
            if r < 179
            else "espeak fast (179-185)"
        )
    # a stretch above 1 makes speech longer, i.e. slower
    return "stretch fast (<0.98)" if r < 0.98 else "stretch mid" if r <= 1.02 else "stretch slow (>1.02)"


def _frame_patterns() -> list[re.Pattern[str]]:
    return [re.compile("^" + re.sub(r"\{\w+\}", r"\\S+", f) + "$") for f in text_en_wsj.FRAMES]


_FRAMES = _frame_patterns()
_CLOCK = re.compile(r"\b[ap] m\b|\bo'clock\b|\b(?:half|quarter) (?:past|to)\b")
_PHONE = re.compile(r"(?:\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)\b ?){6,}")


def sentence_kind(text: str) -> str:
    """The generator's sentence family, recognised from the text (the held-out files carry no label)."""
    words = text.split()
    if _PHONE.search(text):
        return "numeric: phone/order no."
    if CURRENCY.intersection(words):
        return "numeric: money"
    if "percent" in words:
        return "numeric: percent"
    if "point" in words:
        return "numeric: decimal"
    if set(spoken_en.MONTHS).intersection(words) and NUMBER_WORDS.intersection(words):
        return "numeric: date"
    if _CLOCK.search(text):
        return "numeric: clock"
    if NUMBER_WORDS.intersection(words):
        return "numeric: other"
    # after the numeric checks: the frames' slots take any word ("the flight leaves at five twenty")
    if any(p.match(text) for p in _FRAMES):
        return "wsj frame"
    return "everyday"


class WordClasser:
    """Function word, number, name, place or other content word (names: from the generator's lists)."""

    def __init__(self, train_words: Counter[str]) -> None:
        try:
            from recipes.bundled_model import names_en  # needs Faker

            first, sur = names_en.name_lists(set())
        except ImportError:
            first, sur = [], []
        names = set(text_en.FIRST_NAMES) | set(text_en.SURNAMES) | set(first) | set(sur)
        places = {w for c in text_en.CITY_LIST for w in c.split()}
        common = {
            w for lst in (text_en.THINGS, text_en.PLACES, text_en.TOPICS, text_en.TIME_WORDS) for w in lst
        }
        common |= {w for p in common for w in p.split()} | set(text_en.ADJ) | set(text_en.VERBS_T)
        # a "name" also spelt as a frequent ordinary word (will, may, bill) is counted as ordinary
        names -= FUNCTION_WORDS | NUMBER_WORDS | common | set(spoken_en.MONTHS)
        self.names = {w for w in names if train_words[w] < 3000}
        self.places = places - FUNCTION_WORDS

    def __call__(self, word: str) -> str:
        if word in FUNCTION_WORDS:
            return "function word"
        if word in NUMBER_WORDS or word in CURRENCY:
            return "number word"
        if word in self.places:
            return "city"
        if word in self.names:
            return "name"
        return "other content"


def freq_band(count: int) -> str:
    for hi, label in ((0, "0 (never)"), (9, "1-9"), (99, "10-99"), (999, "100-999")):
        if count <= hi:
            return label
    return ">=1000"


def word_table(aligned: Iterable[list[Op]], key: Callable[[str], str]) -> dict[str, dict[str, float | int]]:
    """Per reference-word group: count, substituted, deleted, and their share (insertions have no ref)."""
    tab: dict[str, Counter[str]] = {}
    for ops in aligned:
        for o in ops:
            if o.kind != INS:
                tab.setdefault(key(o.ref), Counter())[o.kind] += 1
    out = {}
    for k, c in sorted(tab.items()):
        words = sum(c.values())
        out[k] = {"words": words, "sub": c[SUB], "del": c[DEL],
                  "error_pct": round(100.0 * (c[SUB] + c[DEL]) / words, 2)}  # fmt: skip
    return out


def top_ops(aligned: Iterable[list[Op]], top: int) -> dict[str, list[tuple[str, int]]]:
    subs: Counter[str] = Counter()
    dels: Counter[str] = Counter()
    ins: Counter[str] = Counter()
    for ops in aligned:
        for o in ops:
            if o.kind == SUB:
                subs[f"{o.ref} -> {o.hyp}"] += 1
            elif o.kind == DEL:
                dels[o.ref] += 1
            elif o.kind == INS:
                ins[o.hyp] += 1
    return {"sub": subs.most_common(top), "del": dels.most_common(top), "ins": ins.most_common(top)}


def concentration(aligned: Sequence[list[Op]]) -> dict[str, float | int]:
    """How the errors spread over utterances: a few wrecked ones or many with one slip."""
    errs = sorted((sum(o.kind != OK for o in ops) for ops in aligned), reverse=True)
    total = max(sum(errs), 1)
    tenth = max(1, len(errs) // 10)
    return {
        "utterances_with_errors_pct": round(100.0 * sum(e > 0 for e in errs) / len(errs), 1),
        "errors_in_worst_10pct_of_utts_pct": round(100.0 * sum(errs[:tenth]) / total, 1),
        "utts_with_1_error": sum(e == 1 for e in errs),
        "utts_with_4plus_errors": sum(e >= 4 for e in errs),
    }


def read_train(text_dir: Path, lang: str) -> list[str]:
    path = text_dir / f"train_{lang}.jsonl"
    raw = (
        path.read_text("utf-8")
        if path.exists()
        else gzip.decompress(Path(f"{path}.gz").read_bytes()).decode()
    )
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def analyse_en(metas: list[dict], hyps: list[str], train: list[str], top: int) -> dict:
    refs = [metrics.units(m["text"], "en") for m in metas]
    aligned = [align(r, metrics.units(h, "en")) for r, h in zip(refs, hyps, strict=True)]
    train_words: Counter[str] = Counter(w for s in train for w in s.split())
    classer = WordClasser(train_words)
    hyp_words = [o.hyp for ops in aligned for o in ops if o.kind in (SUB, INS)]
    espeak = [i for i, m in enumerate(metas) if m["engine"] == "espeak"]
    subs = [o for ops in aligned for o in ops if o.kind == SUB]
    return {
        "total": group(["all"] * len(metas), aligned)["all"],
        "by_engine": group([m["engine"] for m in metas], aligned),
        "by_voice": group([m["voice"] for m in metas], aligned),
        "by_espeak_base": group(
            [metas[i]["voice"].split("+")[0] for i in espeak], [aligned[i] for i in espeak]
        ),
        "by_espeak_variant": group(
            [metas[i]["voice"].split("+")[1] for i in espeak], [aligned[i] for i in espeak]
        ),
        "by_rate_band": group([rate_band(m) for m in metas], aligned),
        "by_kind": group([sentence_kind(m["text"]) for m in metas], aligned),
        "by_word_class": word_table(aligned, classer),
        # the same per engine: function and number words are frequent everywhere, so their errors are acoustic
        "by_engine_word_class": word_table(
            [
                [Op(o.kind, f"{m['engine']} / {classer(o.ref)}" if o.ref else "", o.hyp) for o in ops]
                for m, ops in zip(metas, aligned, strict=True)
            ],
            lambda key: key,
        ),
        "by_engine_kind": group(
            [f"{m['engine']} / {sentence_kind(m['text']).split(':')[0]}" for m in metas], aligned
        ),
        "by_train_freq": word_table(aligned, lambda w: freq_band(train_words[w])),
        "oov": {
            "test_tokens_never_in_train": sum(train_words[w] == 0 for r in refs for w in r),
            "test_types_never_in_train": len({w for r in refs for w in r if train_words[w] == 0}),
            "test_tokens": sum(map(len, refs)),
            "hyp_error_words_not_in_train_pct": round(
                100.0 * sum(train_words[w] == 0 for w in hyp_words) / max(len(hyp_words), 1), 1
            ),
            "never_in_train_examples": sorted({w for r in refs for w in r if train_words[w] == 0})[:40],
        },
        "substitutions_within_2_letters_pct": round(
            100.0 * sum(metrics.edit_distance(o.ref, o.hyp) <= 2 for o in subs) / max(len(subs), 1), 1
        ),
        "boundary_splits_merges": sum(splits_and_merges(ops) for ops in aligned),
        "concentration": concentration(aligned),
        "top": top_ops(aligned, top),
    }


def analyse_zh(metas: list[dict], hyps: list[str], train: list[str], top: int) -> dict:
    refs = [metrics.units(m["text"], "zh") for m in metas]
    aligned = [align(r, metrics.units(h, "zh")) for r, h in zip(refs, hyps, strict=True)]
    train_chars: Counter[str] = Counter(c for s in train for c in s if not c.isspace())
    digits = set("零一二三四五六七八九十百千万亿点两")
    return {
        "total": group(["all"] * len(metas), aligned)["all"],
        "by_variant": group([m["voice"].split("+")[-1] for m in metas], aligned),
        "by_rate_band": group([rate_band(m) for m in metas], aligned),
        "by_char_class": word_table(aligned, lambda c: "number char" if c in digits else "other char"),
        "by_train_freq": word_table(aligned, lambda c: freq_band(train_chars[c])),
        "concentration": concentration(aligned),
        "top": top_ops(aligned, top),
    }


def _table(title: str, rows: dict[str, dict[str, float | int]], cols: Sequence[str]) -> str:
    lines = [f"\n### {title}\n", "| | " + " | ".join(cols) + " |", "| --- " * (len(cols) + 1) + "|"]
    lines += [f"| {k} | " + " | ".join(str(v[c]) for c in cols) + " |" for k, v in rows.items()]
    return "\n".join(lines)


def report(res: dict) -> str:
    utt = ("n", "units", "errors", "rate", "sub", "del", "ins")
    word = ("words", "sub", "del", "error_pct")
    en, zh = res["en"], res["zh"]
    groups = ("by_engine", "by_espeak_base", "by_espeak_variant", "by_rate_band", "by_kind", "by_engine_kind")
    parts = [_table(f"en {k}", en[k], utt) for k in groups]
    parts += [
        _table(f"en {k}", en[k], word) for k in ("by_word_class", "by_engine_word_class", "by_train_freq")
    ]
    parts.append("\nen: " + json.dumps({k: en[k] for k in ("oov", "concentration")}, ensure_ascii=False))
    parts.append(f"en: near-miss substitutions (<= 2 letters) {en['substitutions_within_2_letters_pct']} %, "
                 f"boundary splits/merges {en['boundary_splits_merges']}")  # fmt: skip
    parts.append("en top: " + json.dumps(en["top"], ensure_ascii=False))
    parts += [_table(f"zh {k}", zh[k], utt) for k in ("by_variant", "by_rate_band")]
    parts += [_table(f"zh {k}", zh[k], word) for k in ("by_char_class", "by_train_freq")]
    parts.append(
        "\nzh: " + json.dumps(zh["concentration"]) + "\nzh top: " + json.dumps(zh["top"], ensure_ascii=False)
    )
    return "\n".join(parts)


def decode_tests(model_dir: Path, corpus: Path) -> dict[str, tuple[list[dict], list[str]]]:
    """Hypotheses exactly as ``evaluate`` makes them for ``test_{lang}/{lang}`` (CPU, fp32, 2 threads)."""
    import torch

    from asr_engine.features import Frontend
    from asr_engine.models.base import DecodeRequest
    from asr_engine.models.loader import load_model
    from asr_engine.models.sensevoice import SenseVoiceModel
    from recipes.bundled_model.data import load_eval_split
    from recipes.bundled_model.evaluate import decode

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    model = load_model(model_dir, device=torch.device("cpu"))
    assert isinstance(model, SenseVoiceModel), type(model)
    frontend = Frontend(model.frontend, torch.device("cpu"))
    out = {}
    for lang in ("en", "zh"):
        waves, metas = load_eval_split(corpus, f"test_{lang}")
        out[lang] = (metas, decode(model, frontend, waves, [DecodeRequest(language=lang)] * len(waves)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=Path("asr_engine/bundled/lingting-mini"))
    ap.add_argument("--corpus", type=Path, default=Path("/tmp/testc"))
    ap.add_argument(
        "--text", type=Path, default=Path(".dev/gpu/text"), help="folder with train_{en,zh}.jsonl[.gz]"
    )
    ap.add_argument("--hyps", type=Path, default=None, help="reuse the hypotheses of an earlier --out")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    if args.hyps:
        old = json.loads(args.hyps.read_text("utf-8"))["decoded"]
        decoded = {lang: (old[lang]["metas"], old[lang]["hyps"]) for lang in ("en", "zh")}
    else:
        decoded = decode_tests(args.model, args.corpus)
    res = {
        "en": analyse_en(*decoded["en"], read_train(args.text, "en"), args.top),
        "zh": analyse_zh(*decoded["zh"], read_train(args.text, "zh"), args.top),
    }
    print(report(res))
    if args.out:
        res["decoded"] = {lang: {"metas": m, "hyps": h} for lang, (m, h) in decoded.items()}
        args.out.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
