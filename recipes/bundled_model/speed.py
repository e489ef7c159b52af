"""Realtime factor of the exported model: features + network + greedy CTC, on a device.

Uses the exported directory through ``network.SenseVoiceTrainNet`` (same modules and weights as the engine's
SenseVoice family) so it also runs where the engine family is not installed.

    python -m recipes.bundled_model.speed --model asr_engine/bundled/lingting-mini --corpus /tmp/corpus
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
import yaml
from safetensors.torch import load_file

from asr_engine.features import Frontend, load_cmvn
from asr_engine.models.base import FrontendConfig
from asr_engine.models.sanm import parse_sanm_encoder_dims
from recipes.bundled_model.data import load_eval_split
from recipes.bundled_model.export import BPE_NAME
from recipes.bundled_model.network import SenseVoiceTrainNet
from recipes.bundled_model.train import greedy_texts


def load(
    model_dir: Path, device: torch.device
) -> tuple[SenseVoiceTrainNet, Frontend, spm.SentencePieceProcessor]:
    conf = yaml.safe_load((model_dir / "config.yaml").read_text(encoding="utf-8"))
    dims = parse_sanm_encoder_dims(conf["encoder_conf"], input_size=560, layer_norm_eps=1e-5)
    sp = spm.SentencePieceProcessor(model_file=str(model_dir / BPE_NAME))
    net = SenseVoiceTrainNet(dims, sp.get_piece_size(), dropout=0.0)
    net.load_state_dict({k: v.float() for k, v in load_file(str(model_dir / "model.safetensors")).items()})
    net.to(device).eval()
    shift, scale = load_cmvn(model_dir / "am.mvn")
    return net, Frontend(FrontendConfig(cmvn_shift=shift, cmvn_scale=scale), device), sp


def rtf(model_dir: Path, waves: list[np.ndarray], device: torch.device, batch: int) -> dict:
    net, frontend, sp = load(model_dir, device)
    audio_s = sum(len(w) for w in waves) / 16000
    greedy_texts(net, frontend, sp, waves[:8], ["auto"] * 8, device, batch=batch)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    greedy_texts(net, frontend, sp, waves, ["auto"] * len(waves), device, batch=batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t
    return {
        "device": str(device),
        "batch": batch,
        "utterances": len(waves),
        "audio_s": round(audio_s, 1),
        "wall_s": round(wall, 3),
        "realtime_factor_x": round(audio_s / wall, 1),
    }


def measure(model_dir: Path, corpus: Path, device: torch.device, n: int = 200) -> list[dict]:
    """Realtime factor at batch 1 and 32 over the first ``n`` / 2 test_en and test_zh utterances.

    Also called by ``train --speed-out`` in the training process, which saves the second process's torch
    import and CUDA start-up at the end of a GPU call. Empty when the corpus has no test audio yet.
    """
    waves, _ = load_eval_split(corpus, "test_en")
    zw, _ = load_eval_split(corpus, "test_zh")
    waves = waves[: n // 2] + zw[: n // 2]
    if not waves:
        return []
    res = [rtf(model_dir, waves, device, b) for b in (1, 32)]
    if device.type == "cuda":
        res[0]["gpu"] = torch.cuda.get_device_name()
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    text = json.dumps(measure(args.model, args.corpus, device, args.n), indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
