"""apply_itn against the shared upstream ITN suites, plus the brief's must-convert / must-keep cases."""

from __future__ import annotations

import fnmatch
import io
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from asr_engine.text.itn import apply_itn, attach_punctuation
from asr_engine.text.itn_cli import run
from asr_engine.text.itn_options import DEFAULT_OPTIONS, WETEXT_ZH_OPTIONS, ItnOptions

REPO_ROOT = Path(__file__).resolve().parents[2]
SUITES = Path(os.environ.get("LINGTING_SHARED_DIR", REPO_ROOT.parent / "shared")).resolve() / "itn-suites"

# Exact-match accuracy measured when this was written (bench/ITN.md), minus a small margin.
HOUSE_FLOORS = {
    "wetextprocessing_zh": 0.86,
    "wetextprocessing_en": 1.0,  # the issue's target: every line
    "nemo_en": 0.99,
    "cn2an_zh": 0.80,
}
UPSTREAM_FLOORS = {"wetextprocessing_zh": 0.93}
# The issue's measure: WeTextProcessing zh files written for its default configuration
# (not *_disable_*), leaving out lines whose expected form writes a date with slashes.
ZH_TARGET_FLOOR = 0.99
_SLASH_DATE_RE = re.compile(r"\d{2,4}/\d{2}(?!\d)")


def _rows(prefix: str) -> Iterator[tuple[str, str, list[str]]]:
    if not SUITES.is_dir():
        pytest.skip(f"ITN suites not found at {SUITES} (set LINGTING_SHARED_DIR)")
    for path in sorted(SUITES.glob(f"{prefix}_*.tsv")):
        if "_cased" in path.name:
            continue
        for line in path.read_text(encoding="utf-8").split("\n"):
            if line == "":
                continue
            cols = line.split("\t")
            yield path.name, cols[0], cols[1:]


def _options_for(name: str, upstream: bool) -> ItnOptions:
    if not upstream or not name.startswith("wetextprocessing_zh"):
        return DEFAULT_OPTIONS
    opts = WETEXT_ZH_OPTIONS
    if "disable_0_to_9" in name:
        opts = replace(opts, zh_single_digits=False)
    if "disable_standalone_number" in name:
        opts = replace(opts, zh_standalone_numbers=False)
    return opts


def _accuracy(prefix: str, upstream: bool = False) -> tuple[float, list[str]]:
    lang = prefix.split("_")[1]
    total = ok = 0
    misses = []
    for name, spoken, written in _rows(prefix):
        got = apply_itn(spoken, lang, options=_options_for(name, upstream))
        total += 1
        if got in written:
            ok += 1
        else:
            misses.append(f"{name}: {spoken!r} -> {got!r}, want {written[0]!r}")
    return ok / total, misses


@pytest.mark.parametrize("group", sorted(HOUSE_FLOORS))
def test_suite_accuracy_house_style(group: str) -> None:
    acc, misses = _accuracy(group)
    assert acc >= HOUSE_FLOORS[group], f"{group}: {acc:.3f}\n" + "\n".join(misses[:30])


def test_issue_target_wetextprocessing_zh_default_files() -> None:
    total = ok = 0
    misses = []
    for name, spoken, written in _rows("wetextprocessing_zh"):
        if fnmatch.fnmatch(name, "*_disable_*") or _SLASH_DATE_RE.search(written[0]):
            continue
        got = apply_itn(spoken, "zh")
        total += 1
        if got in written:
            ok += 1
        else:
            misses.append(f"{name}: {spoken!r} -> {got!r}, want {written[0]!r}")
    assert total > 180
    assert ok / total >= ZH_TARGET_FLOOR, f"{ok}/{total}\n" + "\n".join(misses)


@pytest.mark.parametrize("group", sorted(UPSTREAM_FLOORS))
def test_suite_accuracy_upstream_conventions(group: str) -> None:
    acc, misses = _accuracy(group, upstream=True)
    assert acc >= UPSTREAM_FLOORS[group], f"{group}: {acc:.3f}\n" + "\n".join(misses[:30])


@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        ("二零二五年三月五号", "2025年3月5号"),
        ("我捡了一百块钱", "我捡了100块钱"),
        ("百分之八", "8%"),
        ("二分之一", "1/2"),
        ("今天是十月一日，天气很好。", "今天是10月1日，天气很好。"),
        ("现在是下午三点二十分。", "现在是3:20p.m.。"),  # WeTextProcessing's time convention (suite target)
        ("电话是一三八一二三四五六七八，请回拨。", "电话是13812345678，请回拨。"),
        ("我有三个苹果和两个梨。", "我有3个苹果和2个梨。"),
        ("大约五六个人", "大约5~6个人"),
        ("负三点五", "-3.5"),
        ("第二十三章", "第23章"),
        ("我用iphone打电话", "我用iphone打电话"),
    ],
)
def test_zh_examples(spoken: str, written: str) -> None:
    assert apply_itn(spoken, "zh") == written


@pytest.mark.parametrize(
    "text",
    [
        "一些人一起去",
        "他们一样高",
        "万一下雨呢",
        "我们要统一思想",
        "这部电影十分好看",
        "一个人在家",
        "有一点累",
        "一点一点地进步",
        "第一名",
        "星期一见",
        "三心二意",
        "千万不要",
        "五一劳动节",
        "十几万人",
        "一定要来",
        "唯一的办法",
        "三七二十一",
    ],
)
def test_zh_words_that_must_not_change(text: str) -> None:
    assert apply_itn(text, "zh") == text


@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        ("twenty five dollars", "$25"),
        ("three thirty p m", "03:30 p.m."),
        ("nineteen ninety nine", "1999"),
        ("two hundred and fifty four", "254"),
        ("it costs five dollars and twenty cents.", "it costs $5.20 ."),  # marks by a rewrite: own token
        ("we met at eleven thirty", "we met at 11:30"),
        ("i was born on march third nineteen ninety", "i was born on march 3 1990"),
        ("call five five five one two three four five six seven", "call 555-123-4567"),
        ("the twenty first century", "the 21st century"),
        ("we sold two point five million units", "we sold 2.5 million units"),
        ("go to google dot com", "go to google.com"),
    ],
)
def test_en_examples(spoken: str, written: str) -> None:
    assert apply_itn(spoken, "en") == written


@pytest.mark.parametrize(
    "text",
    [
        "one of them said so",
        "someone is here",
        "that is one thing",
        "i am at home",
        "oh no",
        "may i go",
        "wait a second please",
        "at first i was two steps behind",
        "a b c",
    ],
)
def test_en_words_that_must_not_change(text: str) -> None:
    assert apply_itn(text, "en") == text


@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        ("twenty!", "20 !"),
        ("yahoo!", "yahoo!"),  # a word left as it was keeps its mark
        ("(twenty) people, one", "( 20 ) people, one"),
        ("so, twenty five dollars? ok.", "so, $25 ? ok."),
    ],
)
def test_en_marks_next_to_a_rewrite_become_tokens(spoken: str, written: str) -> None:
    assert apply_itn(spoken, "en") == written


@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        ("twenty!", "20!"),
        ("(twenty) people, twenty.", "(20) people, 20."),
        ("at nine thirty a m.", "at 09:30 a.m.."),  # the engine drops the doubled stop after this
        ("现在是下午三点二十分。", "现在是3:20p.m.。"),
        ("one , two", "one, two"),
    ],
)
def test_attach_punctuation_joins_marks_again(spoken: str, written: str) -> None:
    lang = "zh" if re.search(r"[\u4e00-\u9fff]", spoken) else "en"
    assert attach_punctuation(apply_itn(spoken, lang)) == written


@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        # 14, 15 and 16 digits are grouped as card numbers (NeMo / WeTextProcessing).
        ("one two three four five six seven eight nine zero one two three four", "1234 567890 1234"),
        ("one two three four five six seven eight nine zero one two three four five", "1234 567890 12345"),
        (
            "four one two three one two three five six seven eight one two three four five",
            "4123 1235 6781 2345",
        ),
        # A 17-digit reading: plain digits before the first "double" are a code, the rest a card number.
        (
            "four three two double seven three two one four three two one four three double zero five",
            "432 7732 143214 3005",
        ),
        # ... or a telephone number.
        ("nine eight seven double five one two three four five six seven eight", "987 551-234-5678"),
        # Nothing fits: the digits stay whole (two plain digits are no code; a 9-digit rest is no number).
        ("one two three four five six seven eight nine zero one two", "123456789012"),
        ("one two double three four five six seven eight nine zero one two", "1233456789012"),
        ("nine eight seven double five one two three four five six seven", "987551234567"),
    ],
)
def test_en_long_digit_strings(spoken: str, written: str) -> None:
    assert apply_itn(spoken, "en") == written


def test_mixed_text_and_other_languages() -> None:
    assert apply_itn("我买了twenty five dollars的东西", "zh") == "我买了$25的东西"
    assert apply_itn("一百块", "ja") == "一百块"
    assert apply_itn("", "zh") == ""


def test_never_loses_text() -> None:
    # wetext removes interjections and returns nothing for a filler-only input: keep the input.
    assert apply_itn("呃呃啊", "zh") == "呃呃啊"
    # wetext's 0-to-9 graph has no path for these; the fallback still converts them.
    assert apply_itn("三百九十九三盒", "zh") == "3993盒"
    assert apply_itn("2025年3月5号，我有三个苹果。", "zh") == "2025年3月5号，我有3个苹果。"
    assert apply_itn("it costs twenty five dollars.", "en") == "it costs $25 ."


def test_thread_pool_calls_agree() -> None:
    cases = [("二零二五年三月五号", "zh"), ("我捡了一百块钱", "zh"), ("twenty five dollars", "en")]
    expected = [apply_itn(t, lang) for t, lang in cases]
    errors: list[str] = []

    def work() -> None:
        for _ in range(20):
            for (t, lang), want in zip(cases, expected, strict=True):
                got = apply_itn(t, lang)
                if got != want:
                    errors.append(f"{t!r}: {got!r} != {want!r}")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:5]


def test_cli_keeps_one_line_per_input() -> None:
    out = io.StringIO()
    rc = run("zh", io.StringIO("一百块\n\n\x00奇怪\n二十\n"), out)
    assert rc == 0
    assert out.getvalue() == "100块\n\n\x00奇怪\n20\n"


def test_cli_module_honours_itn_lang() -> None:
    env = dict(os.environ, ITN_LANG="en")
    proc = subprocess.run(
        [sys.executable, "-m", "asr_engine.text.itn_cli"],
        input="twenty five dollars\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        check=True,
        timeout=30,
    )
    assert proc.stdout == "$25\n"


def test_speed() -> None:
    zh = "这块黄金重达三百二十四点七五克，我再随便来几个价格三十四点五二一元，二零二五年三月五号见。"
    en = "on july twenty fifth i paid twenty five dollars for two hundred and fifty four apples at three p m"
    apply_itn(zh, "zh")
    apply_itn(en, "en")
    n = 200
    t0 = time.perf_counter()
    for _ in range(n):
        apply_itn(zh, "zh")
        apply_itn(en, "en")
    per_sentence_ms = (time.perf_counter() - t0) / (2 * n) * 1000
    assert per_sentence_ms < 10.0, per_sentence_ms  # loose bound for a shared box; typical ~1 ms


def test_long_inputs_stay_linear() -> None:
    cases = [
        ("一二三四五六七八九十百千万" * 200, "zh"),
        ("负一" * 1000, "zh"),
        ("a b " * 1000, "en"),
        ("a dot " * 1000, "en"),
    ]
    for text, lang in cases:
        t0 = time.perf_counter()
        apply_itn(text, lang)
        assert time.perf_counter() - t0 < 0.5, (text[:20], lang)
