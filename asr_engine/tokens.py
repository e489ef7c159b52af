"""Vocabularies of FunASR character/BPE-piece models: ``tokens.json`` / ``tokens.txt`` and ``seg_dict``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from asr_engine.errors import ModelLoadError

__all__ = ["Vocabulary", "load_seg_dict", "load_vocabulary"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Vocabulary:
    """Token strings by id, and the reverse map. ``unk_id`` is the id of ``unk_symbol``."""

    tokens: tuple[str, ...]
    unk_symbol: str = "<unk>"
    ids: dict[str, int] = field(init=False, repr=False, compare=False)
    unk_id: int = field(init=False)

    def __post_init__(self) -> None:
        ids: dict[str, int] = {}
        for i, tok in enumerate(self.tokens):
            if tok in ids:
                raise ModelLoadError(f"vocabulary lists {tok!r} twice (ids {ids[tok]} and {i})")
            ids[tok] = i
        if self.unk_symbol not in ids:
            raise ModelLoadError(f"vocabulary has no {self.unk_symbol!r} entry")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "unk_id", ids[self.unk_symbol])

    def __len__(self) -> int:
        return len(self.tokens)

    def id_of(self, token: str) -> int:
        """The id of ``token``, or ``unk_id`` when absent."""
        return self.ids.get(token, self.unk_id)

    def to_tokens(self, ids: Iterable[int]) -> list[str]:
        """The token strings of ``ids`` (indexed like ``tokens``: one C-level map, no Python loop)."""
        return list(map(self.tokens.__getitem__, ids))


def load_vocabulary(path: str | Path, *, unk_symbol: str = "<unk>") -> Vocabulary:
    """Read ``tokens.json`` (JSON array) or ``tokens.txt`` (one token per line, right-stripped)."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelLoadError(f"{source}: cannot read vocabulary: {exc}") from exc
    if source.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ModelLoadError(f"{source}: invalid JSON: {exc}") from exc
        if not isinstance(data, list) or not all(isinstance(t, str) for t in data):
            raise ModelLoadError(f"{source}: expected a JSON array of strings")
        tokens = tuple(data)
    else:
        tokens = tuple(line.rstrip() for line in text.splitlines())
    return Vocabulary(tokens, unk_symbol=unk_symbol)


def load_seg_dict(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Read a ``seg_dict``: lines ``word piece1 piece2 ...`` (whitespace separated)."""
    source = Path(path)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ModelLoadError(f"{source}: cannot read seg_dict: {exc}") from exc
    table: dict[str, tuple[str, ...]] = {}
    for line in lines:
        fields = line.split()
        if fields:
            table[fields[0]] = tuple(fields[1:])
    return table
