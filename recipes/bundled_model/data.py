"""The training pool on the device: shards appended to one int16 buffer as the generator writes them."""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch

from recipes.bundled_model import tokenizer
from recipes.bundled_model.corpus import read_shard

log = logging.getLogger(__name__)


@dataclass
class Pool:
    device: torch.device
    sp: spm.SentencePieceProcessor
    capacity: int
    buffer: torch.Tensor = field(init=False)
    used: int = 0
    starts: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    targets: list[list[int]] = field(default_factory=list)
    langs: list[str] = field(default_factory=list)
    engines: list[str] = field(default_factory=list)  # synthesizer of each utterance (per-engine VTLP)
    loaded: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.buffer = torch.zeros(self.capacity, dtype=torch.int16, device=self.device)

    def poll(self, folder: Path, prefix: str = "train_", limit: int = 0) -> int:
        """Load shards not seen yet; returns how many utterances were added."""
        return self.add_loaded(load_new_shards(folder, self.loaded, prefix, limit=limit))

    def add_loaded(self, shards: list[tuple[str, np.ndarray, np.ndarray, list[dict]]]) -> int:
        """Append shards read by ``load_new_shards`` (possibly in another thread) to the device buffer."""
        added = 0
        for name, audio, offsets, meta in shards:
            if self.used + len(audio) > self.capacity:
                self._grow(self.used + len(audio))
            self.buffer[self.used : self.used + len(audio)] = torch.from_numpy(audio).to(self.device)
            for i, m in enumerate(meta):
                self.starts.append(self.used + int(offsets[i]))
                self.lengths.append(int(offsets[i + 1] - offsets[i]))
                self.targets.append(
                    m["target"] if "target" in m else tokenizer.encode_target(self.sp, m["lang"], m["text"])
                )
                self.engines.append(m.get("engine", ""))
                self.langs.append(m["lang"])
            self.used += len(audio)
            self.loaded.add(name)
            added += len(meta)
        return added

    def _grow(self, need: int) -> None:
        """Double the buffer until ``need`` samples fit (one copy on the device)."""
        cap = self.capacity
        while cap < need:
            cap *= 2
        new = torch.zeros(cap, dtype=torch.int16, device=self.device)
        new[: self.used] = self.buffer[: self.used]
        self.buffer = new
        self.capacity = cap

    @property
    def hours(self) -> float:
        return self.used / 16000 / 3600

    def batches(self, rng: random.Random, budget: int, pool_size: int = 4096) -> list[list[int]]:
        """Random utterances grouped by length so that max_len * count <= budget samples."""
        n = len(self.langs)  # appended last by add_loaded, which may run while another thread samples
        idx = rng.sample(range(n), min(n, pool_size))
        idx.sort(key=lambda i: self.lengths[i])
        out: list[list[int]] = []
        cur: list[int] = []
        for i in idx:
            if cur and self.lengths[i] * (len(cur) + 1) > budget:
                out.append(cur)
                cur = []
            cur.append(i)
        if cur:
            out.append(cur)
        rng.shuffle(out)
        return out

    def gather(self, batch: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, Lmax) float waveforms in [-1, 1], zero-padded, and lengths."""
        starts = torch.tensor([self.starts[i] for i in batch], device=self.device)
        lens = torch.tensor([self.lengths[i] for i in batch], device=self.device)
        lmax = int(lens.max())
        ar = torch.arange(lmax, device=self.device)[None, :]
        valid = ar < lens[:, None]
        pos = (starts[:, None] + ar).clamp(max=self.used - 1)
        x = self.buffer[pos].float() / 32768.0
        return x * valid, lens


def load_new_shards(
    folder: Path,
    loaded: set[str],
    prefix: str = "train_",
    sp: spm.SentencePieceProcessor | None = None,
    limit: int = 0,
) -> list[tuple[str, np.ndarray, np.ndarray, list[dict]]]:
    """Read complete shards not yet in ``loaded`` (adds them there); tokenises when given ``sp``.

    ``limit`` > 0 reads at most that many (a resumed run finds ~40 shards at once; take them gradually).
    """
    out: list[tuple[str, np.ndarray, np.ndarray, list[dict]]] = []
    for path in sorted(folder.glob(f"{prefix}*.npz")):
        if path.name in loaded or path.name.endswith(".tmp.npz"):
            continue
        if limit and len(out) >= limit:
            break
        audio, offsets, meta = read_shard(path)
        if sp is not None:
            for m in meta:
                m["target"] = tokenizer.encode_target(sp, m["lang"], m["text"])
        loaded.add(path.name)
        out.append((path.name, audio, offsets, meta))
    return out


def eval_shards(folder: Path, name: str) -> list[Path]:
    """The shards of split ``name`` (``{name}_0000.npz`` ...) and no other split's.

    Why not the glob ``{name}_*.npz``: it also took ``hot_en_dev_0000.npz`` for ``hot_en`` where dev and test
    shards share a folder, which once mixed the dev names into a test score.
    """
    shard = re.compile(rf"{re.escape(name)}_\d+\.npz")
    return sorted(p for p in folder.glob(f"{name}_*.npz") if shard.fullmatch(p.name))


def load_eval_split(folder: Path, name: str) -> tuple[list[np.ndarray], list[dict]]:
    waves: list[np.ndarray] = []
    metas: list[dict] = []
    for path in eval_shards(folder, name):
        audio, offsets, meta = read_shard(path)
        for i, m in enumerate(meta):
            waves.append(audio[offsets[i] : offsets[i + 1]].astype(np.float32) / 32768.0)
            metas.append(m)
    return waves, metas
