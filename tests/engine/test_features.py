"""The fbank/LFR/CMVN frontend against FunASR's tensors, an independent numpy fbank, and itself batched."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import asr_engine.features as features_module
from asr_engine.errors import ModelLoadError
from asr_engine.features import (
    Frontend,
    apply_cmvn,
    apply_lfr,
    fbank,
    frontend_config_from_funasr,
    load_cmvn,
)
from asr_engine.models.base import FrontendConfig

ASR_CONF = {
    "fs": 16000,
    "window": "hamming",
    "n_mels": 80,
    "frame_length": 25,
    "frame_shift": 10,
    "lfr_m": 7,
    "lfr_n": 6,
    "dither": 0.0,
}
VAD_CONF = {**ASR_CONF, "lfr_m": 5, "lfr_n": 1}


@pytest.fixture(scope="module")
def tensors(parity_dir: Path) -> Path:
    return parity_dir / "paraformer" / "expected" / "tensors_en_16k"


@pytest.fixture(scope="module")
def wave(tensors: Path) -> torch.Tensor:
    return torch.from_numpy(np.load(tensors / "waveform.npy"))


@pytest.fixture(scope="module")
def asr_config(parity_dir: Path) -> FrontendConfig:
    return frontend_config_from_funasr(ASR_CONF, parity_dir / "paraformer" / "model" / "am.mvn")


def reference_fbank(wave: np.ndarray, frame_len: int, shift: int = 160, n_mels: int = 80) -> np.ndarray:
    """Kaldi fbank written from its definition in float64: an oracle independent of the torch code."""
    x = wave.astype(np.float64) * 32768.0
    count = 1 + (len(x) - frame_len) // shift
    frames = np.stack([x[i * shift : i * shift + frame_len] for i in range(count)])
    frames -= frames.mean(axis=1, keepdims=True)
    prev = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    frames = frames - 0.97 * prev
    n = np.arange(frame_len)
    frames *= 0.54 - 0.46 * np.cos(2 * np.pi * n / (frame_len - 1))
    fft_size = 1 << (frame_len - 1).bit_length()
    power = np.abs(np.fft.rfft(frames, n=fft_size)) ** 2

    def mel(f: np.ndarray | float) -> np.ndarray | float:
        return 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)

    lo, hi = mel(20.0), mel(8000.0)
    delta = (hi - lo) / (n_mels + 1)
    bins = mel(np.arange(fft_size // 2) * 16000.0 / fft_size)
    bank = np.zeros((fft_size // 2 + 1, n_mels))
    for m in range(n_mels):
        left, center, right = lo + m * delta, lo + (m + 1) * delta, lo + (m + 2) * delta
        up = (bins - left) / (center - left)
        down = (right - bins) / (right - center)
        bank[: fft_size // 2, m] = np.maximum(0.0, np.minimum(up, down))
    return np.log(np.maximum(power @ bank, np.finfo(np.float32).eps))


def test_fbank_matches_funasr(wave: torch.Tensor, tensors: Path) -> None:
    got = fbank(wave).numpy()
    expected = np.load(tensors / "fbank.npy")
    assert got.shape == expected.shape == (376, 80)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3)


def test_reference_oracle_agrees_with_funasr(wave: torch.Tensor, tensors: Path) -> None:
    # Validates the numpy oracle itself before it is used for the short-clip rules below.
    np.testing.assert_allclose(reference_fbank(wave.numpy(), 400), np.load(tensors / "fbank.npy"), atol=2e-3)


def test_lfr_and_cmvn_match_funasr(tensors: Path, asr_config: FrontendConfig) -> None:
    feats = torch.from_numpy(np.load(tensors / "fbank.npy"))
    lfr = apply_lfr(feats, 7, 6)
    np.testing.assert_allclose(lfr.numpy(), np.load(tensors / "lfr.npy"), rtol=0, atol=1e-6)
    assert asr_config.cmvn_shift is not None and asr_config.cmvn_scale is not None
    out = apply_cmvn(lfr, asr_config.cmvn_shift, asr_config.cmvn_scale)
    np.testing.assert_allclose(out.numpy(), np.load(tensors / "lfr_cmvn.npy"), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("family", "tensor", "conf"),
    [
        ("paraformer", "tensors_en_16k/lfr_cmvn.npy", ASR_CONF),
        ("seaco_paraformer", "tensors_en_16k/lfr_cmvn.npy", ASR_CONF),
        ("sensevoice", "tensors_en_16k_auto_woitn/lfr_cmvn.npy", ASR_CONF),
        ("fsmn_vad", "tensors/en_16k_lfr_cmvn.npy", VAD_CONF),
    ],
)
def test_frontend_matches_each_family(
    parity_dir: Path, wave: torch.Tensor, family: str, tensor: str, conf: dict[str, object]
) -> None:
    config = frontend_config_from_funasr(conf, parity_dir / family / "model" / "am.mvn")
    feats, lengths = Frontend(config, torch.device("cpu"))([wave])
    expected = np.load(parity_dir / family / "expected" / tensor)
    assert feats.dtype == torch.float32 and lengths.tolist() == [expected.shape[0]]
    assert feats.shape == (1, *expected.shape)
    np.testing.assert_allclose(feats[0].numpy(), expected, rtol=0, atol=5e-3)


def test_lfr_edges() -> None:
    frames = torch.arange(10, dtype=torch.float32).unsqueeze(1)  # frame t has the value t
    out = apply_lfr(frames, 7, 6)
    assert out.shape == (2, 7)  # ceil(10 / 6)
    assert out[0].tolist() == [0, 0, 0, 0, 1, 2, 3]  # three copies of frame 0 in front
    assert out[1].tolist() == [3, 4, 5, 6, 7, 8, 9]
    out = apply_lfr(torch.arange(13, dtype=torch.float32).unsqueeze(1), 7, 6)
    assert out[2].tolist() == [9, 10, 11, 12, 12, 12, 12]  # past the end: the last frame repeated
    assert apply_lfr(torch.zeros((0, 80)), 7, 6).shape == (0, 560)
    assert apply_lfr(torch.ones((1, 80)), 5, 1).shape == (1, 400)


def test_batch_equals_single(wave: torch.Tensor, asr_config: FrontendConfig) -> None:
    frontend = Frontend(asr_config, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(23456, generator=gen) * 0.05
    waves = [wave, wave[:30001], noise, wave[100:500], wave[:399], wave[:320], wave[:1], wave[:0]]
    feats, lengths = frontend(waves)
    assert lengths.tolist() == [63, 31, 25, 1, 1, 1, 0, 0]
    assert frontend.output_lengths([w.shape[0] for w in waves]) == lengths.tolist()  # host arithmetic
    assert feats.shape == (8, 63, 560)
    for i, w in enumerate(waves):
        alone, n = frontend([w])
        assert n.tolist() == [lengths[i].item()]
        torch.testing.assert_close(feats[i, : n[0]], alone[0], rtol=0, atol=1e-5)
        assert not feats[i, n[0] :].any()  # padding is exactly zero


def test_short_clips_use_their_own_frame_length(wave: torch.Tensor) -> None:
    for n in (320, 399, 200, 40):
        got = fbank(wave[1000 : 1000 + n]).numpy()
        assert got.shape == (1, 80)  # one frame of n samples (FFT size 512, 256, 64)
        np.testing.assert_allclose(got, reference_fbank(wave[1000 : 1000 + n].numpy(), n), atol=2e-3)
    assert fbank(wave[:400]).shape == (1, 80)
    assert fbank(wave[:559]).shape == (1, 80)
    assert fbank(wave[:560]).shape == (2, 80)
    assert fbank(wave[:1]).shape == (0, 80)
    assert fbank(wave[:0]).shape == (0, 80)


def test_all_empty_batch(asr_config: FrontendConfig) -> None:
    feats, lengths = Frontend(asr_config, torch.device("cpu"))([torch.zeros(0), torch.zeros(1)])
    assert feats.shape == (2, 0, 560) and lengths.tolist() == [0, 0]
    feats, lengths = Frontend(asr_config, torch.device("cpu"))([])
    assert feats.shape == (0, 0, 560) and lengths.shape == (0,)


def test_load_cmvn(parity_dir: Path, tmp_path: Path) -> None:
    shift, scale = load_cmvn(parity_dir / "paraformer" / "model" / "am.mvn")
    assert shift.shape == scale.shape == (560,) and shift.dtype == torch.float32
    assert -20 < float(shift.mean()) < 0 < float(scale.min())
    bad = tmp_path / "am.mvn"
    bad.write_text("<Nnet>\n<AddShift> 2 2\n<LearnRateCoef> 0 [ 1 2 ]\n</Nnet>\n")
    with pytest.raises(ModelLoadError, match="Rescale"):
        load_cmvn(bad)
    bad.write_text("<AddShift> 2 2\n[ 1 2 ]\n<Rescale> 2 2\n<LearnRateCoef> 0 [ 1 2 ]\n")
    with pytest.raises(ModelLoadError, match="LearnRateCoef"):
        load_cmvn(bad)
    bad.write_text("<AddShift> 2 2\n<LearnRateCoef> 0 [ 1 x ]\n<Rescale> 2 2\n<LearnRateCoef> 0 [ 1 2 ]\n")
    with pytest.raises(ModelLoadError, match="non-numeric"):
        load_cmvn(bad)
    with pytest.raises(ModelLoadError, match="cannot read"):
        load_cmvn(tmp_path / "missing.mvn")


def test_frontend_config_validation(parity_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    mvn = parity_dir / "paraformer" / "model" / "am.mvn"
    config = frontend_config_from_funasr(ASR_CONF, mvn)
    assert (config.lfr_m, config.lfr_n, config.feature_dim, config.dither) == (7, 6, 560, 0.0)
    with caplog.at_level(logging.WARNING, logger="asr_engine.features"):
        noisy = frontend_config_from_funasr({k: v for k, v in ASR_CONF.items() if k != "dither"}, mvn)
    assert noisy.dither == 0.0 and "dither" in caplog.text
    for key, value in [
        ("window", "hanning"),
        ("fs", 8000),
        ("n_mels", 0),
        ("lfr_m", 2.5),
        ("snip_edges", False),
    ]:
        with pytest.raises(ModelLoadError, match=key):
            frontend_config_from_funasr({**ASR_CONF, key: value}, mvn)
    with pytest.raises(ModelLoadError, match="560"):
        frontend_config_from_funasr({**ASR_CONF, "lfr_m": 9}, mvn)  # 720 dims, am.mvn has 560
    vad = frontend_config_from_funasr(VAD_CONF, parity_dir / "fsmn_vad" / "model" / "am.mvn")
    assert vad.feature_dim == 400 and vad.cmvn_shift is not None and vad.cmvn_shift.shape == (400,)
    assert frontend_config_from_funasr(ASR_CONF, None).cmvn_shift is None


def test_large_batch_is_vectorised(wave: torch.Tensor, asr_config: FrontendConfig) -> None:
    # 200 utterances of 3.8 s (75,200 frames): a per-frame Python loop would take far longer than this.
    frontend = Frontend(asr_config, torch.device("cpu"))
    started = time.perf_counter()
    feats, lengths = frontend([wave] * 200)
    elapsed = time.perf_counter() - started
    assert lengths.tolist() == [63] * 200 and feats.shape == (200, 63, 560)
    torch.testing.assert_close(feats[199], feats[0], rtol=0, atol=0)
    assert elapsed < 10.0


@pytest.mark.gpu
def test_frontend_on_cuda(
    parity_dir: Path, wave: torch.Tensor, tensors: Path, asr_config: FrontendConfig
) -> None:
    device = torch.device("cuda")
    np.testing.assert_allclose(
        fbank(wave.to(device)).cpu().numpy(), np.load(tensors / "fbank.npy"), atol=1e-3
    )
    frontend = Frontend(asr_config, device)
    waves = [wave.to(device), wave[:30001].to(device), wave[:320].to(device), wave[:0].to(device)]
    feats, lengths = frontend(waves)
    assert feats.device.type == "cuda" and lengths.tolist() == [63, 31, 1, 0]
    np.testing.assert_allclose(feats[0].cpu().numpy(), np.load(tensors / "lfr_cmvn.npy"), atol=5e-3)
    cpu_feats, _ = Frontend(asr_config, torch.device("cpu"))([w.cpu() for w in waves])
    np.testing.assert_allclose(feats.cpu().numpy(), cpu_feats.numpy(), atol=5e-3)


@pytest.mark.gpu
def test_cuda_features_ignore_tf32(wave: torch.Tensor, tensors: Path) -> None:
    previous = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        got = fbank(wave.cuda()).cpu().numpy()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous
    np.testing.assert_allclose(got, np.load(tensors / "fbank.npy"), rtol=0, atol=1e-3)


def test_public_api() -> None:
    import asr_engine.features as features

    assert sorted(features.__all__) == [
        "Frontend",
        "apply_cmvn",
        "apply_lfr",
        "fbank",
        "frontend_config_from_funasr",
        "load_cmvn",
        "mel_banks",
    ]


def test_joined_buffer_equals_separate_waves(wave: torch.Tensor, asr_config: FrontendConfig) -> None:
    """The engine's path (one buffer, sizes) and the list path give the same features, short items too."""
    frontend = Frontend(asr_config, "cpu")
    waves = [wave[:16000], wave[:399], wave[1000:1100], wave[:0], wave[5:24005]]
    expected, expected_lengths = frontend(waves)
    feats, lengths = frontend.joined(torch.cat(waves), [w.shape[0] for w in waves])
    assert torch.equal(lengths, expected_lengths) and torch.equal(feats, expected)


def test_chunked_frames_equal_one_chunk(
    wave: torch.Tensor, asr_config: FrontendConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch cut into FFT chunks, each padded to a planned size, gives the features of one chunk."""
    waves = [wave[:16000], wave[:12345], wave[3:9000]]
    whole, _ = Frontend(asr_config, "cpu")(waves)
    monkeypatch.setattr(features_module, "FRAME_CHUNK", 37)
    chunked, _ = Frontend(asr_config, "cpu")(waves)
    assert torch.equal(chunked, whole)


def test_padded_rows_are_few_sizes_that_fit() -> None:
    sizes = [features_module._padded_rows(n) for n in range(1, 70000)]
    assert all(s >= n for n, s in enumerate(sizes, start=1))
    assert all(s <= max(256, 1.25 * n + 1) for n, s in enumerate(sizes, start=1))
    assert sizes == sorted(sizes) and len(set(sizes)) <= 4 * 17 + 1
