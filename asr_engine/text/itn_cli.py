"""``itn`` command: spoken-form lines on stdin, one written-form line per input line on stdout."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from asr_engine.text.itn import SUPPORTED_LANGUAGES, apply_itn
from asr_engine.text.itn_options import DEFAULT_OPTIONS, ItnOptions

logger = logging.getLogger(__name__)

__all__ = ["main", "run"]


def run(lang: str, stdin: TextIO, stdout: TextIO, options: ItnOptions = DEFAULT_OPTIONS) -> int:
    """Copy ``stdin`` to ``stdout`` through :func:`apply_itn`, one line at a time.

    Flushes after every line so an interactive pipe works; a line that fails is
    written back unchanged (logged), so the output always has one line per input.
    """
    for raw in stdin:
        line = raw[:-1] if raw.endswith("\n") else raw
        if line.endswith("\r"):
            line = line[:-1]
        try:
            out = apply_itn(line, lang, options=options)
        except Exception:  # one odd line must not lose the rest of the stream
            logger.exception("ITN failed on a line; writing it unchanged")
            out = line
        stdout.write(out.replace("\n", " ") + "\n")
        stdout.flush()
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="itn", description="Inverse text normalization of spoken-form lines.")
    p.add_argument(
        "--lang", choices=SUPPORTED_LANGUAGES, default=None, help="language of the input (default: $ITN_LANG)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``--lang`` (falling back to $ITN_LANG) and run the filter over stdin."""
    args = _parser().parse_args(argv)
    lang = args.lang or os.environ.get("ITN_LANG", "")
    if not lang:
        _parser().error("give --lang or set ITN_LANG")
    stdin = open(sys.stdin.fileno(), encoding="utf-8", errors="replace", newline="\n", closefd=False)  # noqa: SIM115
    stdout = open(sys.stdout.fileno(), "w", encoding="utf-8", newline="\n", closefd=False)  # noqa: SIM115
    return run(lang, stdin, stdout)


if __name__ == "__main__":
    sys.exit(main())
