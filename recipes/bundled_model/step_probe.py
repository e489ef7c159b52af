"""Time the training step with FFTs at exact batch sizes (as in run 5) and at ``augment.fft_size``.

Session 7 padded every FFT of the step so that cuFFT plans recur (the engine's features lost 38 % of their
device thread to new plans before the same change) and made the telephone band table on the device (it
was a blocking copy in every step). Whether that shortens a step, and by how much, only a GPU can say:
this runs ``train.train_step`` on a synthetic pool (noise, random targets, run 5's mean utterance length)
in alternating blocks of the two modes, full augmentation, and prints ms per step and the plan cache size.
No corpus, TTS or tokenizer needed; about a minute on an H200:

    python -m recipes.bundled_model.step_probe --out /tmp/step_probe.json
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch

from asr_engine.features import Frontend
from asr_engine.models.base import FrontendConfig
from recipes.bundled_model import augment, batching, train
from recipes.bundled_model.data import Pool
from recipes.bundled_model.network import SenseVoiceTrainNet

VOCAB = 1803  # lingting-mini's


def synthetic_pool(device: torch.device, minutes: float, rng: np.random.Generator) -> Pool:
    """Noise utterances of 0.4-12 s (mean ~2.9 s, as run 5's pool) with random en/zh targets."""
    secs = np.clip(rng.lognormal(np.log(2.5), 0.55, int(minutes * 60 / 2.9) + 1), 0.4, 12.0)
    lens = (secs * 16000).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)])
    audio = (rng.standard_normal(int(offsets[-1])) * 2000).astype(np.int16)
    engines = ("espeak", "flite", "festival")
    meta = [
        {
            "lang": ("en", "zh")[i % 2],
            "engine": engines[i % 3],
            "target": rng.integers(30, VOCAB, int(3 + 4 * s)).tolist(),
        }
        for i, s in enumerate(secs)
    ]
    pool = Pool(device, None, int(offsets[-1]))  # type: ignore[arg-type]  # targets given: no tokenizer
    pool.add_loaded([("train_0000.npz", audio, offsets, meta)])
    return pool


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60, help="timed steps per block")
    ap.add_argument("--rounds", type=int, default=2, help="blocks per mode, the modes alternating")
    ap.add_argument("--warmup", type=int, default=20, help="untimed steps per mode first")
    ap.add_argument("--budget-seconds", type=float, default=1000.0, help="as train's (run 5: 1000)")
    ap.add_argument("--pool-minutes", type=float, default=120.0)
    ap.add_argument("--tiny", action="store_true", help="a small network (a CPU check of the probe)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    dims = (
        ["--d", "32", "--heads", "2", "--ffn", "64", "--blocks", "1", "--tp-blocks", "1"] if args.tiny else []
    )
    targs = train.build_args().parse_args(["--corpus", "-", "--text", "-", "--out", "-", *dims])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    pool = synthetic_pool(device, args.pool_minutes, np.random.default_rng(0))
    net = SenseVoiceTrainNet(train._dims(targs), VOCAB).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, betas=(0.9, 0.98), fused=cuda)
    shift, scale = train.estimate_cmvn(Frontend(FrontendConfig(), device), pool, n=200)
    frontend = Frontend(FrontendConfig(cmvn_shift=shift.cpu(), cmvn_scale=scale.cpu()), device)
    cmvn = (shift.to(device), scale.to(device))
    gen = torch.Generator(device=device).manual_seed(0)
    builder = batching.BatchBuilder(
        pool,
        random.Random(0),
        int(args.budget_seconds * 16000),
        cuda,
        targs.aug_p,
        targs.speed_p,
        (targs.speed_lo, targs.speed_hi),
        wide_engines=frozenset(targs.vtlp_wide_engines.split(",")),
    )

    def plans() -> int:
        return int(torch.backends.cuda.cufft_plan_cache.size) if cuda else 0

    def block(exact: bool, steps: int) -> dict:
        augment.exact_fft_shapes(exact)
        if cuda:
            torch.cuda.synchronize()
        before, t, n_utts = plans(), time.perf_counter(), 0
        for _ in range(steps):
            hb = builder.get()
            n_utts += hb.size
            train.train_step(net, opt, frontend, pool, hb, gen, cmvn, targs, 1.0)
        if cuda:
            torch.cuda.synchronize()
        ms = 1000 * (time.perf_counter() - t) / steps
        mode = "exact" if exact else "bucketed"
        return {
            "mode": mode,
            "ms_per_step": round(ms, 1),
            "mean_batch": round(n_utts / steps, 1),
            "plans": plans() - before,
        }

    try:
        for exact in (True, False):
            block(exact, args.warmup)
        rows = [block(exact, args.steps) for _ in range(args.rounds) for exact in (True, False)]
    finally:
        builder.stop()
        augment.exact_fft_shapes(False)
    summary = {
        mode: float(np.mean([r["ms_per_step"] for r in rows if r["mode"] == mode]))
        for mode in ("exact", "bucketed")
    }
    report = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__,
        "budget_seconds": args.budget_seconds,
        "blocks": rows,
        "mean_ms_per_step": summary,
        "plan_cache_size": plans(),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
