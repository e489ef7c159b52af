#!/usr/bin/env python3
"""Score asr_engine's ITN against the shared zh/en suites (../shared/itn-suites/score.py).

    .venv/bin/python bench/itn_score.py                # house style, exactly `python -m asr_engine itn`
    .venv/bin/python bench/itn_score.py --upstream     # per-file upstream conventions (see below)
    .venv/bin/python bench/itn_score.py --failures 20 --glob 'wetextprocessing_zh_*'

--upstream switches, per file (the scorer passes ITN_FILE), to the configuration
the upstream suite was written for: WeTextProcessing zh files get slash dates and
a.m./p.m. suffixes, and the *_disable_0_to_9 / *_disable_standalone_number files
get those switches off. The house-style numbers are the ones the engine ships.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LINGTING_SHARED_DIR", REPO.parent / "shared"))
DEFAULT_GLOBS = ["wetextprocessing_*", "nemo_en_*", "cn2an_*"]


def _filter(upstream: bool) -> int:
    sys.path.insert(0, str(REPO))
    from dataclasses import replace

    from asr_engine.text.itn_cli import run
    from asr_engine.text.itn_options import DEFAULT_OPTIONS, WETEXT_ZH_OPTIONS

    name = os.environ.get("ITN_FILE", "")
    lang = os.environ.get("ITN_LANG", "zh")
    options = DEFAULT_OPTIONS
    if upstream and name.startswith("wetextprocessing_zh"):
        options = WETEXT_ZH_OPTIONS
        if "disable_0_to_9" in name:
            options = replace(options, zh_single_digits=False)
        if "disable_standalone_number" in name:
            options = replace(options, zh_standalone_numbers=False)
    stdin = open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    stdout = open(sys.stdout.fileno(), "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    return run(lang, stdin, stdout, options)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", action="store_true", help="per-file upstream conventions")
    ap.add_argument("--filter", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--glob", action="append", help="suite file pattern(s); default: zh/en targets")
    ap.add_argument("--exclude", action="append", default=["*_cased*"], help="patterns to skip")
    ap.add_argument("--failures", type=int, default=0)
    args = ap.parse_args()
    if args.filter:
        return _filter(args.upstream)
    if args.upstream:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--filter", "--upstream"]
    else:
        cmd = [sys.executable, "-m", "asr_engine.text.itn_cli"]
    score = [
        sys.executable,
        str(SHARED / "itn-suites" / "score.py"),
        "--per-file",
        "--failures",
        str(args.failures),
    ]
    for g in args.glob or DEFAULT_GLOBS:
        score += ["--glob", g]
    for e in args.exclude:
        score += ["--exclude", e]
    return subprocess.call([*score, "--", *cmd], cwd=REPO)


if __name__ == "__main__":
    sys.exit(main())
