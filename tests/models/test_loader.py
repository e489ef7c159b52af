"""Model directory resolution, checkpoint reading and strict weight assignment."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from asr_engine.errors import ModelLoadError
from asr_engine.models.loader import (
    MODEL_FAMILIES,
    assign_weights,
    load_checkpoint,
    load_model,
    read_model_dir,
)


def test_configuration_json_paths(parity_dir: Path) -> None:
    md = read_model_dir(parity_dir / "paraformer" / "model")
    assert md.model_type == "Paraformer"
    assert md.checkpoint is not None and md.checkpoint.name == "model.pt"
    assert md.token_list is not None and md.token_list.name == "tokens.json"
    assert md.seg_dict is not None and md.seg_dict.name == "seg_dict"
    assert md.cmvn_file is not None and md.cmvn_file.name == "am.mvn"
    assert md.bpe_model is None and md.jieba_usr_dict is None
    assert md.config["encoder_conf"]["output_size"] == 64


def test_fixed_name_probing_without_configuration_json(parity_dir: Path, tmp_path: Path) -> None:
    src = parity_dir / "paraformer" / "model"
    for name in ("config.yaml", "model.pt", "tokens.json", "am.mvn"):
        shutil.copy(src / name, tmp_path / name)
    (tmp_path / "tokens.txt").write_text("<blank>\n<s>\n</s>\n<unk>\n", encoding="utf-8")
    md = read_model_dir(tmp_path)
    assert md.token_list == (tmp_path / "tokens.txt").resolve()  # tokens.txt is probed first
    assert md.seg_dict is None
    assert md.cmvn_file == (tmp_path / "am.mvn").resolve()


def test_safetensors_checkpoint_round_trip(parity_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    src = parity_dir / "paraformer" / "model"
    sd = load_checkpoint(src / "model.pt")
    assert len(sd) == 93
    shutil.copy(src / "config.yaml", tmp_path / "config.yaml")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "model.safetensors"))
    md = read_model_dir(tmp_path)
    assert md.checkpoint == (tmp_path / "model.safetensors").resolve()
    again = load_checkpoint(md.require("checkpoint"))
    assert set(again) == set(sd)
    assert all(torch.equal(again[k], sd[k]) for k in sd)


def test_wrapped_checkpoint_is_unwrapped(tmp_path: Path) -> None:
    torch.save({"state_dict": {"module.w": torch.ones(2)}}, tmp_path / "model.pt")
    assert list(load_checkpoint(tmp_path / "model.pt")) == ["w"]


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        read_model_dir(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match=r"config\.yaml"):
        read_model_dir(tmp_path)
    (tmp_path / "config.yaml").write_text("model: Whisper\n", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="supported: CTTransformer"):
        load_model(tmp_path, device=torch.device("cpu"))
    assert "Paraformer" in MODEL_FAMILIES


def test_assign_weights_is_strict() -> None:
    net = nn.Linear(3, 2)
    good = {"weight": torch.zeros(2, 3), "bias": torch.ones(2)}
    assign_weights(net, good)
    assert torch.equal(net.bias, torch.ones(2))
    with pytest.raises(ModelLoadError, match=r"'weight' has shape \(3, 2\), expected \(2, 3\)"):
        assign_weights(net, {"weight": torch.zeros(3, 2), "bias": torch.ones(2)})
    with pytest.raises(ModelLoadError, match="lacks 'bias'"):
        assign_weights(net, {"weight": torch.zeros(2, 3)})
    with pytest.raises(ModelLoadError, match="unexpected tensor 'extra'"):
        assign_weights(net, {**good, "extra": torch.zeros(1)})
    assign_weights(net, {**good, "ctc.x": torch.zeros(1)}, ignore_unexpected=("ctc.",))
