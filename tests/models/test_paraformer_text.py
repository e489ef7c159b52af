"""CharTokenizer text assembly (funasr-spec §6), timestamps (§5.5) and vocabulary files, on small inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from asr_engine.decoding.char_text import assemble_text
from asr_engine.decoding.cif import cif_fire, cif_sequential, cif_sequential_embeddings
from asr_engine.decoding.timestamps import token_spans_ms
from asr_engine.errors import ModelLoadError
from asr_engine.tokens import load_seg_dict, load_vocabulary


def _spans(n: int) -> list[tuple[int, int]]:
    return [(100 * i, 100 * i + 100) for i in range(n)]


def test_parity_token_lists_give_funasr_text(parity_dir: Path) -> None:
    cases = json.loads((parity_dir / "paraformer" / "expected" / "expected.json").read_text("utf-8"))["cases"]
    checked = 0
    for case in cases:
        if "tokens" in case and not case["generate_kwargs"].get("output_timestamp"):
            assert assemble_text(case["tokens"]).text == case["result"][0]["text"], case["id"]
            checked += 1
    assert checked == 8


def test_pending_fragment_crosses_chinese_and_takes_spans() -> None:
    out = assemble_text(["welc@@", "试", "tion"], _spans(3))
    assert out.text == "试 welction"
    assert [(w.text, w.start_ms, w.end_ms) for w in out.words] == [("试", 0, 100), ("welction", 200, 300)]
    assert assemble_text(["welc@@", "试", "tion"]).text == "试welction"
    assert assemble_text(["ok", "welc@@"]).text == "ok"  # pending fragment at the end is dropped


def test_abbreviation_merge() -> None:
    out = assemble_text(["a", "b", "c", "dog"], _spans(4))
    assert out.text == "ABC dog"
    assert [(w.start_ms, w.end_ms) for w in out.words] == [(0, 300), (300, 400)]
    assert assemble_text(["a", "b", "c", "dog"]).text == "ABC dog"


def test_all_chinese_and_unk_reindexing() -> None:
    out = assemble_text(["你", "<unk>", "好"], _spans(3))
    assert out.text == "你 好"
    # FunASR pairs the k-th kept token with the k-th span of the unfiltered list.
    assert [(w.start_ms, w.end_ms) for w in out.words] == [(0, 100), (100, 200)]
    assert assemble_text(["你", "12", "好"]).text == "你12好"
    assert assemble_text([]).text == ""


def test_sequential_and_vectorised_cif_agree_away_from_ties() -> None:
    gen = torch.Generator().manual_seed(0)
    alphas = torch.rand(2, 40, generator=gen) * 0.6
    hidden = torch.randn(2, 40, 8, generator=gen)
    emb, counts, _ = cif_fire(hidden, alphas)
    assert emb.shape == (2, int(counts.max()), 8)
    for b in range(2):
        frames, fires = cif_sequential_embeddings(hidden[b], alphas[b])
        assert int(counts[b]) == len(frames) == int(float(alphas[b].double().sum()))
        assert torch.equal(fires, torch.from_numpy(cif_sequential(alphas[b].numpy(), 1.0)))
        torch.testing.assert_close(emb[b, : len(frames)], torch.stack(frames), atol=1e-5, rtol=0)


def test_timestamps_short_input_negative_start() -> None:
    # One fire right at frame 1 (-1.5 shift -> -0.5 frames -> -30 ms) as in FunASR's short_0p3s case.
    weights = torch.tensor([0.2, 1.0, 0.5, 0.7, 0.6], dtype=torch.float32)
    spans = token_spans_ms(weights, torch.zeros(5), 2)
    assert len(spans) == 2 and spans[0][0] < 0


def test_vocabulary_files(tmp_path: Path) -> None:
    (tmp_path / "tokens.txt").write_text("<blank>\n<s>\n</s>\nab  \n<unk>\n", encoding="utf-8")
    vocab = load_vocabulary(tmp_path / "tokens.txt")
    assert vocab.tokens[3] == "ab" and vocab.unk_id == 4 and vocab.id_of("zz") == 4
    (tmp_path / "dup.json").write_text(json.dumps(["<unk>", "a", "a"]), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="twice"):
        load_vocabulary(tmp_path / "dup.json")
    (tmp_path / "nounk.json").write_text(json.dumps(["a"]), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="<unk>"):
        load_vocabulary(tmp_path / "nounk.json")
    (tmp_path / "seg_dict").write_text("quick qui@@ ck\n\n北 北\n", encoding="utf-8")
    assert load_seg_dict(tmp_path / "seg_dict") == {"quick": ("qui@@", "ck"), "北": ("北",)}
