"""Session 7's time savers for run 6: FFT shapes that recur, the training deadline, speed in the trainer.

The GPU-side effect (cuFFT plans reused instead of built each step) needs a GPU to measure
(``recipes/bundled_model/step_probe.py``); here the CPU checks that the values stay what they were and that
every FFT of a training step runs at a recurring size.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from asr_engine.features import Frontend
from asr_engine.models.base import FrontendConfig
from recipes.bundled_model import augment, batching, corpus, export, step_probe, train

RECIPE = Path(train.__file__).resolve().parent
BPE = RECIPE.parents[1] / "asr_engine" / "bundled" / "lingting-mini" / export.BPE_NAME


@pytest.fixture
def exact_shapes() -> Iterator[None]:
    augment.exact_fft_shapes(True)
    try:
        yield
    finally:
        augment.exact_fft_shapes(False)


def _prime_factors(n: int) -> set[int]:
    out, p = set(), 2
    while p * p <= n:
        while n % p == 0:
            out.add(p)
            n //= p
        p += 1
    return out | ({n} if n > 1 else set())


def test_fft_sizes_are_few_small_factored_and_at_most_a_quarter_larger() -> None:
    sizes = [augment.fft_size(n) for n in range(1, 300_000)]
    for n, s in enumerate(sizes, start=1):
        assert n <= s and (s < 1.25 * n or n <= 8), n
    distinct = sorted(set(sizes))
    assert all(augment.fft_size(s) == s for s in distinct)  # a padded size is padded no further
    assert all(_prime_factors(s) <= {2, 3, 5, 7} for s in distinct)
    assert sum(2**17 <= s < 2**18 for s in distinct) == 4  # four per octave


def _fft_recorder(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record (rows, transform length) of every real FFT; cuFFT plans are cached on exactly these."""
    shapes: list[tuple[int, int]] = []
    rfft, irfft = torch.fft.rfft, torch.fft.irfft

    def rec_rfft(x: torch.Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> Any:
        shapes.append((x.numel() // x.shape[dim], n or x.shape[dim]))
        return rfft(x, n=n, dim=dim, norm=norm)

    def rec_irfft(x: torch.Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> Any:
        shapes.append((x.numel() // x.shape[dim], n or 2 * (x.shape[dim] - 1)))
        return irfft(x, n=n, dim=dim, norm=norm)

    monkeypatch.setattr(torch.fft, "rfft", rec_rfft)
    monkeypatch.setattr(torch.fft, "irfft", rec_irfft)
    return shapes


def _step_ffts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The FFT shapes of one training step's augmentation and features, on an awkwardly sized batch."""
    b, n = 13, 12_345
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(b, n, generator=gen) * 0.1
    lengths = torch.tensor([n - 97 * i for i in range(b)])
    shapes = _fft_recorder(monkeypatch)
    y = augment.augment_rows(
        x,
        lengths,
        gen,
        torch.ones(b, dtype=torch.int64),
        torch.tensor([0, 4, 5]),
        torch.tensor([1, 2, 7, 9, 11]),
        torch.zeros(b, dtype=torch.int64),
    )
    batching.padded_features(Frontend(FrontendConfig(), "cpu"), y, lengths.numpy(), lengths)
    return shapes


def test_every_fft_of_a_training_step_runs_at_a_recurring_size(monkeypatch: pytest.MonkeyPatch) -> None:
    shapes = _step_ffts(monkeypatch)
    assert len(shapes) >= 8  # reverb (3), telephone (2), noise (2), fbank
    assert all(augment.fft_size(r) == r and augment.fft_size(k) == k for r, k in shapes), shapes


def test_exact_mode_gives_the_batch_sizes_again(monkeypatch: pytest.MonkeyPatch, exact_shapes: None) -> None:
    shapes = _step_ffts(monkeypatch)
    assert (13, 12_345) in shapes  # the noise at the batch's own size: a new cuFFT plan nearly every step


def test_padded_features_equal_the_engine_features_with_padded_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batching, "FRAME_CHUNK", 37)  # several chunks, each padded to a recurring size
    gen = torch.Generator().manual_seed(1)
    lens = [4000, 1234, 7777, 400, 2501]
    x = torch.zeros(len(lens), max(lens))
    for i, n in enumerate(lens):
        x[i, :n] = torch.randn(n, generator=gen) * 0.2
    frontend = Frontend(FrontendConfig(), "cpu")
    host = np.array(lens, dtype=np.int64)
    feats, flens = batching.padded_features(frontend, x, host, torch.from_numpy(host))
    ref, ref_lens = frontend([x[i, :n] for i, n in enumerate(lens)])
    assert flens.tolist() == ref_lens.tolist()
    for i, t in enumerate(ref_lens.tolist()):
        torch.testing.assert_close(feats[i, :t], ref[i, :t], rtol=1e-5, atol=1e-5)
        assert not feats[i, t:].any()


def test_colored_noise_keeps_its_shape_rms_and_slope() -> None:
    b, n = 6, 3001
    exponent = torch.tensor([0.0, 1.0, 2.0, 0.0, 1.0, 2.0])
    noise = augment.colored_noise(b, n, exponent, torch.device("cpu"), torch.Generator().manual_seed(2))
    assert noise.shape == (b, n)
    torch.testing.assert_close(noise.pow(2).mean(1), torch.ones(b), rtol=1e-4, atol=1e-4)
    power = torch.fft.rfft(noise, dim=1).abs().pow(2)
    low = (power[:, 1:76].sum(1) / power[:, 1:].sum(1)).tolist()  # lowest 5 % of the band
    for white, pink, brown in (low[0:3], low[3:6]):
        assert white < 0.15 < pink < brown and brown > 0.6


def test_telephone_band_limits_the_chosen_rows_only() -> None:
    b, n = 4, 5000
    x = torch.randn(b, n, generator=torch.Generator().manual_seed(3)) * 0.1
    y = augment.telephone_rows(x, torch.tensor([1, 3]), torch.zeros(b, dtype=torch.bool))
    assert y.shape == x.shape
    assert torch.equal(y[0], x[0]) and torch.equal(y[2], x[2])
    f = torch.fft.rfftfreq(n, 1 / 16000)
    power = torch.fft.rfft(y[[1, 3]], dim=1).abs().pow(2)
    inside = power[:, (f >= 400) & (f <= 3300)].mean(1)
    outside = power[:, (f <= 150) | (f >= 3600)].mean(1)
    assert (outside < 0.01 * inside).all()


def _write_corpus(folder: Path) -> None:
    """A few seconds of noisy tones as training and test shards, as ``corpus.py`` writes them."""
    rng = np.random.default_rng(4)
    folder.mkdir()

    def clip(seconds: float) -> np.ndarray:
        t = np.arange(int(seconds * 16000)) / 16000
        return 0.3 * np.sin(2 * math.pi * rng.uniform(150, 900) * t) + 0.02 * rng.standard_normal(t.size)

    def items(k: int, prefix: str) -> list[tuple[dict[str, Any], np.ndarray]]:
        out = []
        for i in range(k):
            lang = "en" if i % 2 else "zh"
            text = "hello there" if lang == "en" else "你好"
            meta = {"id": f"{prefix}-{i}", "lang": lang, "text": text, "engine": ("espeak", "flite")[i % 2]}
            out.append((meta, clip(rng.uniform(0.5, 1.1))))
        return out

    corpus.write_shard(folder / "train_0000.npz", items(24, "train"))
    corpus.write_shard(folder / "test_en_0000.npz", items(4, "test_en"))
    corpus.write_shard(folder / "test_zh_0000.npz", items(4, "test_zh"))
    (folder / "DONE").write_text("ok\n")


def _run_train(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "run" / "m"
    argv = [
        "train",
        "--corpus",
        str(tmp_path / "corpus"),
        "--text",
        str(tmp_path / "text"),
        "--out",
        str(out),
    ]
    argv += ["--d", "32", "--heads", "2", "--ffn", "64", "--blocks", "1", "--tp-blocks", "1"]
    argv += ["--min-utts", "10", "--budget-seconds", "4", "--capacity-hours", "0.01", "--minutes", "5"]
    monkeypatch.setattr(sys, "argv", argv + list(extra))
    train.main()
    return json.loads((out / "progress.json").read_text())


@pytest.fixture
def tiny_run(tmp_path: Path) -> Path:
    if not BPE.exists():
        pytest.skip("needs the bundled model's tokenizer")
    (tmp_path / "text").mkdir()
    shutil.copy(BPE, tmp_path / "text" / export.BPE_NAME)
    _write_corpus(tmp_path / "corpus")
    return tmp_path


def test_train_runs_to_its_steps_then_evaluates_and_times_in_process(
    monkeypatch: pytest.MonkeyPatch, tiny_run: Path
) -> None:
    speed = tiny_run / "speed.json"
    progress = _run_train(monkeypatch, tiny_run, "--max-steps", "3", "--speed-out", str(speed))
    assert progress["step"] == 3
    results = json.loads((tiny_run / "run" / "eval_gpu.json").read_text())
    assert results["test_en/en"]["n"] == 4 and results["train"]["steps"] == 3
    rtfs = json.loads(speed.read_text())
    assert [r["batch"] for r in rtfs] == [1, 32] and all(r["realtime_factor_x"] > 0 for r in rtfs)
    assert all(r["utterances"] == 8 for r in rtfs)


def test_train_stops_by_the_call_deadline(monkeypatch: pytest.MonkeyPatch, tiny_run: Path) -> None:
    ckpt = tiny_run / "phase1.pt"
    first = _run_train(monkeypatch, tiny_run, "--max-steps", "2", "--no-eval", "--save", str(ckpt))
    assert first["step"] == 2
    # resumed with a deadline already past: no step, although --minutes and --max-steps allow more
    late = str(time.time() - 1)
    second = _run_train(
        monkeypatch, tiny_run, "--resume", str(ckpt), "--max-steps", "9", "--no-eval", "--stop-by", late
    )
    assert second["step"] == 2
    resumed = _run_train(monkeypatch, tiny_run, "--resume", str(ckpt), "--max-steps", "4", "--no-eval")
    assert resumed["step"] == 4


def test_run_script_parses() -> None:
    done = subprocess.run(["bash", "-n", str(RECIPE / "run_gpu2.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_step_probe_times_both_modes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    out = tmp_path / "probe.json"
    argv = ["step_probe", "--tiny", "--steps", "2", "--rounds", "1", "--warmup", "1", "--pool-minutes", "1"]
    monkeypatch.setattr(sys, "argv", [*argv, "--budget-seconds", "20", "--out", str(out)])
    step_probe.main()
    report = json.loads(out.read_text())
    assert [b["mode"] for b in report["blocks"]] == ["exact", "bucketed"]
    assert all(b["ms_per_step"] > 0 for b in report["blocks"])
    assert not augment._exact_shapes  # the probe leaves the default behind
