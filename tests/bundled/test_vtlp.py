"""The recipe's VTLP augmentation: alpha = 1 changes nothing, alpha > 1 moves a tone's energy up."""

from __future__ import annotations

import math

import pytest
import torch

from asr_engine.features import Frontend, fbank
from asr_engine.models.base import FrontendConfig
from recipes.bundled_model import augment

SR = 16000
N_MELS = 80


def tone(freq: float, seconds: float = 0.5, seed: int = 0) -> torch.Tensor:
    """A sine at ``freq`` Hz with faint noise (so no mel bin sits at the log floor)."""
    t = torch.arange(int(seconds * SR), dtype=torch.float32) / SR
    noise = torch.randn(t.shape[0], generator=torch.Generator().manual_seed(seed))
    return 0.3 * torch.sin(2 * math.pi * freq * t) + 1e-4 * noise


def peak_bin(logmel: torch.Tensor) -> int:
    """Mel bin with the most energy on average over the frames (T, n_mels)."""
    return int(logmel.exp().mean(0).argmax())


def test_alpha_one_reads_every_bin_in_place() -> None:
    pos = augment.warp_positions(torch.ones(3), N_MELS)
    assert torch.equal(pos, torch.arange(N_MELS, dtype=torch.float32).expand(3, -1))


def test_alpha_one_is_the_identity_on_real_features() -> None:
    frontend = Frontend(FrontendConfig(), "cpu")
    feats, _ = frontend([tone(440.0), tone(2500.0, 0.3, seed=1)])
    out = augment.warp_mel(feats, torch.ones(2), N_MELS)
    assert torch.equal(out, feats)


@pytest.mark.parametrize(("freq", "alpha"), [(1000.0, 1.12), (1000.0, 0.88), (700.0, 1.1), (2000.0, 0.9)])
def test_warp_moves_a_tone_where_the_scaled_tone_is(freq: float, alpha: float) -> None:
    """Warping the fbank of a tone at f by alpha peaks where the fbank of a tone at alpha * f does."""
    source = fbank(tone(freq))
    warped = augment.warp_mel(source[None], torch.tensor([alpha]), N_MELS)[0]
    before, after, target = peak_bin(source), peak_bin(warped), peak_bin(fbank(tone(alpha * freq)))
    assert abs(after - target) <= 1
    if alpha > 1:
        assert after > before
    else:
        assert after < before


def test_high_band_stays_inside_the_spectrum() -> None:
    """Above the VTLP boundary the map bends to Nyquist: no bin reads past the last one, order is kept."""
    pos = augment.warp_positions(torch.tensor([0.88, 1.12]), N_MELS)
    assert float(pos.min()) >= 0.0 and float(pos.max()) <= N_MELS - 1
    assert bool((pos[:, 1:] >= pos[:, :-1]).all())
    # alpha < 1 reads from higher source bins (energy moves down), alpha > 1 from lower ones
    idx = torch.arange(N_MELS, dtype=torch.float32)
    assert bool((pos[0, 10:-1] > idx[10:-1]).all()) and bool((pos[1, 10:-1] < idx[10:-1]).all())


def test_batch_rows_are_warped_independently_in_every_stacked_frame() -> None:
    """One call with a different alpha per row equals one call per row; all 7 LFR copies move."""
    frontend = Frontend(FrontendConfig(), "cpu")
    feats, _ = frontend([tone(1000.0), tone(1000.0, seed=1), tone(1000.0, seed=2)])
    alphas = torch.tensor([0.88, 1.0, 1.12])
    together = augment.warp_mel(feats, alphas, N_MELS)
    for i in range(3):
        alone = augment.warp_mel(feats[i : i + 1], alphas[i : i + 1], N_MELS)
        assert torch.equal(together[i], alone[0])
    copies = together.reshape(3, feats.shape[1], 7, N_MELS)
    peaks = [[peak_bin(copies[i, :, k]) for k in range(7)] for i in range(3)]
    assert all(peaks[0][k] < peaks[1][k] < peaks[2][k] for k in range(7))


def test_vtlp_with_cmvn_warps_the_raw_log_mel_and_leaves_the_rest() -> None:
    """Chosen rows: CMVN undone, warped, redone; rows not chosen and padding frames unchanged to the bit."""
    waves = [tone(1000.0, 0.3 + 0.02 * i, seed=i) for i in range(32)]
    raw, lengths = Frontend(FrontendConfig(), "cpu")(waves)
    valid = torch.arange(raw.shape[1])[None, :] < lengths[:, None]
    frames = raw[valid]
    shift, scale = -frames.mean(0), 1.0 / frames.std(0)
    cfg = FrontendConfig(cmvn_shift=shift, cmvn_scale=scale)
    feats, _ = Frontend(cfg, "cpu")(waves)
    gen = torch.Generator().manual_seed(0)
    out = augment.vtlp(feats, lengths, gen, 0.5, (1.12, 1.12), (shift, scale))
    changed = (out != feats).flatten(1).any(1)
    assert 8 <= int(changed.sum()) <= 24  # about half of 32 at p = 0.5
    assert bool((out[~valid] == 0).all())
    expected = (augment.warp_mel(raw, torch.full((32,), 1.12), N_MELS) + shift) * scale
    rows = changed.nonzero().flatten()
    torch.testing.assert_close(out[rows][valid[rows]], expected[rows][valid[rows]], atol=2e-4, rtol=1e-4)
    assert torch.equal(out[~changed], feats[~changed])


def test_vtlp_off_and_unit_range_return_the_input() -> None:
    feats, lengths = Frontend(FrontendConfig(), "cpu")([tone(1000.0)])
    gen = torch.Generator().manual_seed(0)
    assert augment.vtlp(feats, lengths, gen, 0.0, (0.88, 1.12)) is feats
    assert augment.vtlp(feats, lengths, gen, 1.0, (1.0, 1.0)) is feats
