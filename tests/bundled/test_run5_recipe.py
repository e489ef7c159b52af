"""Run 5's synthesis changes: larger worker chunks give the same audio; the per-engine CPU accounting."""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from recipes.bundled_model import corpus, make_text

HELDOUT = Path(make_text.__file__).resolve().parent / "heldout"
ENGINES_HERE = (
    all(shutil.which(b) for b in ("espeak-ng", "flite", "festival"))
    and Path("/usr/share/festival/voices/english/kal_diphone").exists()
)


def _small_text(tmp_path: Path) -> Path:
    """A text folder whose training text is 60 dev sentences and 12 test sentences of Mandarin."""
    for f in HELDOUT.glob("*.jsonl"):
        shutil.copy(f, tmp_path / f.name)
    en = (HELDOUT / "dev_en.jsonl").read_text(encoding="utf-8").splitlines()[:60]
    zh = (HELDOUT / "test_zh.jsonl").read_text(encoding="utf-8").splitlines()[:12]
    (tmp_path / "train_en.jsonl").write_text("\n".join(en) + "\n", encoding="utf-8")
    (tmp_path / "train_zh.jsonl").write_text("\n".join(zh) + "\n", encoding="utf-8")
    return tmp_path


@pytest.mark.skipif(not ENGINES_HERE, reason="needs espeak-ng, flite and festival with kal_diphone")
def test_chunk_size_changes_no_audio_and_costs_cover_every_engine(tmp_path: Path) -> None:
    jobs = corpus.build_jobs(_small_text(tmp_path), 60, 12)["train"]
    festival = [j for j in jobs if j["engine"] == "festival"]
    assert len({j["voice"] for j in festival}) == 2  # both training voices, so a batch mixes them
    corpus._init_worker("/", None)

    def synth(chunk: int) -> tuple[list[np.ndarray | None], dict[str, float]]:
        costs: defaultdict[str, float] = defaultdict(float)
        audio: list[np.ndarray | None] = []
        for lo in range(0, len(jobs), chunk):
            audio += [x for _, x in corpus._synth_chunk([dict(j) for j in jobs[lo : lo + chunk]], costs)]
        return audio, costs

    small, costs_small = synth(6)
    large, costs_large = synth(36)
    assert all(x is not None for x in small)
    for a, b in zip(small, large, strict=True):
        assert a is not None and b is not None and np.array_equal(a, b)
    for costs in (costs_small, costs_large):
        assert set(costs) == {"espeak", "flite", "festival"} and min(costs.values()) > 0
    # festival's start-up (~0.25 s CPU) is paid once per chunk holding festival jobs: up to 10 against 2
    assert costs_large["festival"] < costs_small["festival"]
