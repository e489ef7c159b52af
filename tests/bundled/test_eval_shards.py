"""Evaluation splits read only their own shards, even beside a split whose name extends theirs."""

from __future__ import annotations

from pathlib import Path

from recipes.bundled_model.data import eval_shards


def test_a_split_does_not_take_the_shards_of_a_longer_named_split(tmp_path: Path) -> None:
    for name in ("hot_en_0000", "hot_en_0001", "hot_en_dev_0000", "hot_enx_0000", "test_en_0000"):
        (tmp_path / f"{name}.npz").write_bytes(b"")
    assert [p.name for p in eval_shards(tmp_path, "hot_en")] == ["hot_en_0000.npz", "hot_en_0001.npz"]
    assert [p.name for p in eval_shards(tmp_path, "hot_en_dev")] == ["hot_en_dev_0000.npz"]
    assert eval_shards(tmp_path, "dev_en") == []
