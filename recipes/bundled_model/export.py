"""Write a FunASR-format SenseVoiceSmall directory with safetensors weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
import yaml
from safetensors.torch import save_file

from asr_engine.models.sanm import SanmEncoderDims

BPE_NAME = "lingting_mini_en_zh.bpe.model"


def write_cmvn(path: Path, shift: torch.Tensor, scale: torch.Tensor) -> None:
    """Kaldi nnet1 text form as in FunASR's am.mvn: features become (x + shift) * scale."""
    d = shift.numel()

    def vec(v: torch.Tensor) -> str:
        return " ".join(f"{x:.6f}" for x in v.tolist())

    path.write_text(
        f"<Nnet>\n<Splice> {d} {d}\n[ 0 ]\n<AddShift> {d} {d}\n<LearnRateCoef> 0 [ {vec(shift)} ]\n"
        f"<Rescale> {d} {d}\n<LearnRateCoef> 0 [ {vec(scale)} ]\n</Nnet>\n",
        encoding="utf-8",
    )


def config_dict(dims: SanmEncoderDims) -> dict:
    return {
        "encoder": "SenseVoiceEncoderSmall",
        "encoder_conf": {
            "output_size": dims.output_size,
            "attention_heads": dims.attention_heads,
            "linear_units": dims.linear_units,
            "num_blocks": dims.num_blocks,
            "tp_blocks": dims.tp_blocks,
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "attention_dropout_rate": 0.1,
            "input_layer": "pe",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": dims.kernel_size,
            "sanm_shfit": dims.sanm_shift,
            "selfattention_layer_type": "sanm",
        },
        "model": "SenseVoiceSmall",
        "model_conf": {"length_normalized_loss": True, "sos": 1, "eos": 2, "ignore_id": -1},
        "tokenizer": "SentencepiecesTokenizer",
        "tokenizer_conf": {"bpemodel": None, "unk_symbol": "<unk>", "split_with_space": True},
        "frontend": "WavFrontend",
        "frontend_conf": {
            "fs": 16000,
            "window": "hamming",
            "n_mels": 80,
            "frame_length": 25,
            "frame_shift": 10,
            "lfr_m": 7,
            "lfr_n": 6,
            "cmvn_file": None,
            "dither": 0.0,
        },
    }


def export(
    out: Path,
    state: dict[str, torch.Tensor],
    dims: SanmEncoderDims,
    bpe_model: Path,
    shift: torch.Tensor,
    scale: torch.Tensor,
    dtype: torch.dtype = torch.float16,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.to(dtype).contiguous() for k, v in state.items()},
        str(out / "model.safetensors"),
        metadata={"format": "pt"},
    )
    (out / "config.yaml").write_text(yaml.safe_dump(config_dict(dims), sort_keys=False), encoding="utf-8")
    meta = {
        "framework": "pytorch",
        "task": "auto-speech-recognition",
        "model": {"type": "funasr"},
        "pipeline": {"type": "funasr-pipeline"},
        "model_name_in_hub": {"ms": "", "hf": ""},
        "file_path_metas": {
            "init_param": "model.safetensors",
            "config": "config.yaml",
            "tokenizer_conf": {"bpemodel": BPE_NAME},
            "frontend_conf": {"cmvn_file": "am.mvn"},
        },
    }
    (out / "configuration.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    write_cmvn(out / "am.mvn", shift, scale)
    if bpe_model.resolve() != (out / BPE_NAME).resolve():
        shutil.copyfile(bpe_model, out / BPE_NAME)
