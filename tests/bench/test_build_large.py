"""Full-size shapes grown from the tiny parity models match the released models' sizes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import yaml

from bench.build_large import (
    PARAFORMER_LARGE,
    SENSEVOICE_SMALL,
    grow_state_dict,
    paraformer_tokens,
    random_weights,
    sentencepiece_grown,
)


def _tiny(parity_dir: Path, family: str, vocab: int) -> tuple[dict[str, torch.Tensor], tuple[int, int, int]]:
    model = parity_dir / family / "model"
    state = torch.load(model / "model.pt", map_location="cpu", weights_only=True)
    conf = yaml.safe_load((model / "config.yaml").read_text(encoding="utf-8"))["encoder_conf"]
    return state, (conf["output_size"], conf["linear_units"], vocab)


def test_paraformer_large_has_the_released_parameter_count(parity_dir: Path) -> None:
    state, dims = _tiny(parity_dir, "paraformer", 242)
    shapes = grow_state_dict(state, dims, PARAFORMER_LARGE)
    # FunASR's Paraformer-large built from the same config has 220,084,533 parameters.
    assert sum(math.prod(s) for s in shapes.values()) == 220_084_533
    assert shapes["decoder.decoders.15.src_attn.linear_k_v.weight"] == (1024, 512)
    assert shapes["encoder.encoders.48.feed_forward.w_1.weight"] == (2048, 512)
    assert "encoder.encoders.49.norm1.weight" not in shapes  # encoders0 holds block 1 of 50
    assert shapes["decoder.output_layer.weight"] == (8404, 512)


def test_sensevoice_small_shapes(parity_dir: Path) -> None:
    state, dims = _tiny(parity_dir, "sensevoice", 320)
    shapes = grow_state_dict(state, dims, SENSEVOICE_SMALL)
    assert shapes["ctc.ctc_lo.weight"] == (25055, 512)
    assert shapes["embed.weight"] == (16, 560)
    assert (
        "encoder.tp_encoders.19.norm1.weight" in shapes
        and "encoder.tp_encoders.20.norm1.weight" not in shapes
    )


def test_random_weights_are_seeded_and_scaled() -> None:
    shapes = {
        "a.norm1.weight": torch.Size([8]),
        "a.linear.weight": torch.Size([4, 100]),
        "a.linear.bias": torch.Size([4]),
    }
    first, again = random_weights(shapes, seed=3), random_weights(shapes, seed=3)
    assert all(torch.equal(first[k], again[k]) for k in shapes)
    assert not torch.equal(first["a.linear.weight"], random_weights(shapes, seed=4)["a.linear.weight"])
    assert abs(first["a.norm1.weight"].mean().item() - 1.0) < 0.1
    assert 0.05 < first["a.linear.weight"].std().item() < 0.2  # 1/sqrt(100)


def test_token_list_keeps_the_tiny_layout(parity_dir: Path) -> None:
    tiny = json.loads((parity_dir / "paraformer" / "model" / "tokens.json").read_text(encoding="utf-8"))
    tokens = paraformer_tokens(tiny, 8404)
    assert len(tokens) == 8404 == len(set(tokens))
    assert tokens[:3] == ["<blank>", "<s>", "</s>"] and tokens[-1] == "<unk>"
    assert set(tiny) <= set(tokens)


def test_sentencepiece_grows_to_the_released_size(parity_dir: Path) -> None:
    from sentencepiece import SentencePieceProcessor

    model = next((parity_dir / "sensevoice" / "model").glob("*.bpe.model"))
    grown = SentencePieceProcessor(model_proto=sentencepiece_grown(model.read_bytes(), 25055))
    tiny = SentencePieceProcessor(model_file=str(model))
    assert grown.get_piece_size() == 25055
    assert [grown.id_to_piece(i) for i in range(40)] == [tiny.id_to_piece(i) for i in range(40)]
    assert grown.decode_ids([25054]) != ""
