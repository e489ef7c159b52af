"""Broad English vocabulary for generalisation: part-of-speech frames filled with frequent words.

The word lists come from festival's WSJ part-of-speech lexicon (festlex-poslex,
/usr/share/festival/dicts/wsj.wp39.poslexR), ranked by log P(word | tag). Only the text generator on the
recipe machine reads it; the lists are frozen into the corpus text files.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

POSLEX = Path("/usr/share/festival/dicts/wsj.wp39.poslexR")
_ENTRY = re.compile(r'^\("([a-z]+(?:\'[a-z]+)?)" \((.*)\) \(\) \)$')
_TAG = re.compile(r"\((\w+) (-?[\d.]+)\)")


def load_pos_words(path: Path = POSLEX, per_tag: int = 400) -> dict[str, list[str]]:
    """Most likely lower-case words for the tags the frames use."""
    scored: dict[str, list[tuple[float, str]]] = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        m = _ENTRY.match(line)
        if not m:
            continue
        word = m.group(1)
        if len(word) < 2 and word not in ("a", "i"):
            continue
        for tag, lp in _TAG.findall(m.group(2)):
            scored.setdefault(tag, []).append((float(lp), word))
    return {tag: [w for _, w in sorted(v, reverse=True)[:per_tag]] for tag, v in scored.items()}


FRAMES = [
    "the {jj} {nn} {vbd} the {nn}",
    "a {nn} of {nns} {vbd} {rb}",
    "{nns} {vbp} {jj} {nns} in the {nn}",
    "the {nn} {md} {vb} the {jj} {nn}",
    "we {vbd} a {jj} {nn} for the {nn}",
    "they {vbp} that the {nn} is {jj}",
    "the {nns} {vbd} to {vb} {jj} {nns}",
    "this {nn} {vbz} {rb} {jj}",
    "our {nn} {vbd} {jj} {nns} and {jj} {nns}",
    "it is {jj} to {vb} the {nn} {rb}",
    "the {jj} {nns} {md} {vb} {nns}",
    "{jj} {nns} {vbd} the {nn} of the {nn}",
]


class WsjFrames:
    """Fills FRAMES with words drawn from the top of each part-of-speech list."""

    def __init__(self, banned: set[str], per_tag: int = 400) -> None:
        words = load_pos_words(per_tag=per_tag)
        # "wo" and "ca" are the WSJ tokenisation of won't / can't, not words anyone says alone
        junk = banned | {"wo", "ca", "need", "ought", "shall"}
        self.words = {t: [w for w in ws if w not in junk] for t, ws in words.items()}

    def sentence(self, rng: random.Random) -> str:
        frame = rng.choice(FRAMES)
        out = frame
        while "{" in out:
            a = out.index("{")
            b = out.index("}", a)
            tag = out[a + 1 : b]
            out = out[:a] + rng.choice(self.words[tag]) + out[b + 1 :]
        return out
