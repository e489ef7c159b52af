"""Waveform and feature augmentation on the training device, batched.

Applied per utterance with independent random choices: simple reverberation (exponentially decaying noise
impulse response), telephone band (300-3400 Hz) with optional 8-bit mu-law, additive noise (white, pink,
brown or babble from another utterance of the batch) at 0-30 dB SNR, gain with clipping; then a
vocal-tract-length warp of the mel axis (VTLP) and SpecAugment-style masks on the LFR features.

Every FFT here runs at ``fft_size`` rows and length (zero rows and samples added, the result cropped), so
that cuFFT's plans, cached per shape and batch size, recur from step to step instead of being built anew
for each batch's exact width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from asr_engine.features import quarter_octave

SR = 16000
_exact_shapes = False  # True: FFTs at the batch's exact sizes, as before session 7 (an A/B switch)


def exact_fft_shapes(on: bool) -> None:
    """``True``: FFTs at the exact batch sizes and the band table made on the host, as before session 7."""
    global _exact_shapes
    _exact_shapes = on


def fft_size(n: int) -> int:
    """``n`` rounded up to one of four sizes per octave (``asr_engine.features.quarter_octave``).

    Why: torch caches cuFFT plans per shape, batch size included, and builds a plan for a new shape on the
    host. A training step's width (its longest utterance) and row counts are new nearly every step; the
    engine's features lost 38 % of its device thread to this until they padded rows the same way
    (``asr_engine.features._padded_rows``, bench/PERF_NOTES.md, session 5).
    """
    return n if _exact_shapes else quarter_octave(n)


def _rand(n: int, lo: float, hi: float, device: torch.device, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, device=device, generator=gen)


def _fft_len(n: int) -> int:
    return 1 << max(1, (n - 1).bit_length())


def colored_noise(
    b: int, n: int, exponent: torch.Tensor, device: torch.device, gen: torch.Generator
) -> torch.Tensor:
    """Noise with power spectrum ~ 1/f^exponent (0 white, 1 pink, 2 brown), unit RMS per row.

    Made ``fft_size(b)`` x ``fft_size(n)`` and cropped to (b, n): a window of the same process.
    """
    rows, length = fft_size(b), fft_size(n)
    white = torch.randn(rows, length, device=device, generator=gen)
    spec = torch.fft.rfft(white, dim=1)
    f = torch.arange(spec.shape[1], device=device).clamp(min=1).float()
    spec = spec * f[None, :].pow(-F.pad(exponent, (0, rows - b))[:, None] / 2)
    x = torch.fft.irfft(spec, length, dim=1)[:b, :n]
    return x / x.pow(2).mean(dim=1, keepdim=True).sqrt().clamp(min=1e-8)


def reverb(x: torch.Tensor, sel: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Convolve the selected rows with synthetic room responses (RT60 0.15-0.9 s)."""
    return reverb_rows(x, sel.nonzero().flatten(), gen)


def reverb_rows(x: torch.Tensor, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``reverb`` of the rows ``idx`` (chosen on the host, so nothing waits for the device)."""
    if idx.numel() == 0:
        return x
    b, n = idx.numel(), x.shape[1]
    rir_len = int(0.5 * SR)
    t = torch.arange(rir_len, device=x.device).float() / SR
    rt60 = _rand(b, 0.15, 0.9, x.device, gen)
    decay = torch.exp(-6.9 * t[None, :] / rt60[:, None])
    rir = torch.randn(b, rir_len, device=x.device, generator=gen) * decay
    pre = int(0.002 * SR)
    rir[:, :pre] = 0
    direct = _rand(b, 1.0, 4.0, x.device, gen)  # direct-to-reverberant amplitude ratio
    rir = rir / rir.norm(dim=1, keepdim=True).clamp(min=1e-8)
    rir[:, 0] = direct
    m = _fft_len(n + rir_len)
    pad = (0, 0, 0, fft_size(b) - b)  # zero rows: the batch size of the FFTs recurs too
    spec = torch.fft.rfft(F.pad(x[idx], pad), m) * torch.fft.rfft(F.pad(rir, pad), m)
    y = torch.fft.irfft(spec, m)[:b, :n]
    y = y * (x[idx].abs().amax(dim=1, keepdim=True) / y.abs().amax(dim=1, keepdim=True).clamp(min=1e-8))
    out = x.clone()
    out[idx] = y
    return out


def telephone(x: torch.Tensor, sel: torch.Tensor, mulaw: torch.Tensor) -> torch.Tensor:
    """Band-limit selected rows to 300-3400 Hz (an 8 kHz channel), some through 8-bit mu-law."""
    return telephone_rows(x, sel.nonzero().flatten(), mulaw)


def telephone_rows(x: torch.Tensor, idx: torch.Tensor, mulaw: torch.Tensor) -> torch.Tensor:
    """``telephone`` of the rows ``idx`` chosen on the host.

    The band is cut in the spectrum of the rows zero-padded to ``fft_size``; the frequency table is made on
    the device: made on the host and copied (as ``exact_fft_shapes`` still does), it made every training
    step wait for the GPU, a blocking copy from pageable memory.
    """
    if idx.numel() == 0:
        return x
    k, n = idx.numel(), x.shape[1]
    length = fft_size(n)
    spec = torch.fft.rfft(F.pad(x[idx], (0, length - n, 0, fft_size(k) - k)), dim=1)
    if _exact_shapes:
        f = torch.fft.rfftfreq(length, 1 / SR).to(x.device)
    else:
        f = torch.fft.rfftfreq(length, 1 / SR, device=x.device)
    spec = spec * ((f >= 300) & (f <= 3400)).float()[None, :]
    y = torch.fft.irfft(spec, length, dim=1)[:k, :n]
    mu = 255.0
    q = torch.sign(y) * torch.log1p(mu * y.abs().clamp(max=1)) / math.log1p(mu)
    q = torch.round(q * 127) / 127
    yq = torch.sign(q) * ((1 + mu) ** q.abs() - 1) / mu
    y = torch.where(mulaw[idx, None], yq, y)
    out = x.clone()
    out[idx] = y
    return out


def add_noise(
    x: torch.Tensor, lengths: torch.Tensor, sel: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    b, n = x.shape
    dev = x.device
    valid = (torch.arange(n, device=dev)[None, :] < lengths[:, None]).float()
    exponent = torch.randint(0, 3, (b,), device=dev, generator=gen).float()
    noise = colored_noise(b, n, exponent, dev, gen)
    babble = torch.rand(b, device=dev, generator=gen) < 0.2
    if b > 1:
        other = torch.roll(x, shifts=1, dims=0).flip(1)
        other = other / other.pow(2).mean(dim=1, keepdim=True).sqrt().clamp(min=1e-8)
        noise = torch.where(babble[:, None], other, noise)
    snr_db = _rand(b, 3.0, 30.0, dev, gen)
    snr_db = torch.where(babble, snr_db.clamp(min=8.0), snr_db)
    p_sig = (x.pow(2) * valid).sum(1) / valid.sum(1).clamp(min=1)
    scale = (p_sig / (10 ** (snr_db / 10))).sqrt()
    return x + torch.where(sel[:, None], noise * scale[:, None] * valid, torch.zeros_like(x))


def augment(x: torch.Tensor, lengths: torch.Tensor, gen: torch.Generator, p: float = 0.8) -> torch.Tensor:
    """x: (B, N) float waveforms in [-1, 1], zero-padded; returns the same shape."""
    b = x.shape[0]
    dev = x.device

    def coin(prob: float) -> torch.Tensor:
        return torch.rand(b, device=dev, generator=gen) < prob

    on = coin(p)
    x = reverb(x, on & coin(0.3), gen)
    x = telephone(x, on & coin(0.15), coin(0.5))
    x = add_noise(x, lengths, on & coin(0.6), gen)
    gain_db = torch.where(on, _rand(b, -25.0, 6.0, dev, gen), torch.zeros(b, device=dev))
    x = (x * (10 ** (gain_db / 20))[:, None]).clamp(-1.0, 1.0)
    valid = torch.arange(x.shape[1], device=dev)[None, :] < lengths[:, None]
    return x * valid


def augment_rows(
    x: torch.Tensor,
    lengths: torch.Tensor,
    gen: torch.Generator,
    on: torch.Tensor,
    reverb_idx: torch.Tensor,
    phone_idx: torch.Tensor,
    mulaw: torch.Tensor,
) -> torch.Tensor:
    """``augment`` with the row choices made on the host (``batching``): no device synchronisation."""
    b = x.shape[0]
    dev = x.device
    x = reverb_rows(x, reverb_idx, gen)
    x = telephone_rows(x, phone_idx, mulaw.bool())
    on = on.bool()
    x = add_noise(x, lengths, on & (torch.rand(b, device=dev, generator=gen) < 0.6), gen)
    gain_db = torch.where(on, _rand(b, -25.0, 6.0, dev, gen), torch.zeros(b, device=dev))
    x = (x * (10 ** (gain_db / 20))[:, None]).clamp(-1.0, 1.0)
    valid = torch.arange(x.shape[1], device=dev)[None, :] < lengths[:, None]
    return x * valid


def spec_augment(
    feats: torch.Tensor, lengths: torch.Tensor, gen: torch.Generator, n_mels: int = 80
) -> torch.Tensor:
    """Two time masks (<= 5 LFR frames) and two mel-band masks (<= 10 bins, all stacked copies)."""
    b, t, d = feats.shape
    dev = feats.device
    keep = torch.ones(b, t, d, device=dev, dtype=feats.dtype)
    ar_t = torch.arange(t, device=dev)[None, :]
    ar_f = (torch.arange(d, device=dev) % n_mels)[None, :]
    for _ in range(2):
        width = torch.randint(0, 6, (b,), device=dev, generator=gen)
        start = (torch.rand(b, device=dev, generator=gen) * (lengths - width).clamp(min=1)).long()
        m = (ar_t >= start[:, None]) & (ar_t < (start + width)[:, None])
        keep = keep * (~m).to(feats.dtype)[:, :, None]
        fw = torch.randint(0, 11, (b,), device=dev, generator=gen)
        fs = torch.randint(0, n_mels - 10, (b,), device=dev, generator=gen)
        fm = (ar_f >= fs[:, None]) & (ar_f < (fs + fw)[:, None])
        keep = keep * (~fm).to(feats.dtype)[:, None, :]
    return feats * keep


VTLP_F_HI = 4800.0  # Hz; below f_hi * min(alpha, 1) the warp is f -> alpha * f (Jaitly & Hinton 2013)


def _hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(f / 700.0)


def warp_positions(
    alpha: torch.Tensor, n_mels: int = 80, sample_rate: int = SR, f_hi: float = VTLP_F_HI
) -> torch.Tensor:
    """(B, n_mels) fractional source mel bin read by each output bin, for warp factors ``alpha`` (B,).

    Convention: alpha > 1 moves spectral energy up (a tone at f Hz lands where a tone at alpha * f would:
    a shorter vocal tract), alpha < 1 down. The warp of frequency is VTLP's piecewise-linear map, f ->
    alpha * f up to a boundary, then a straight line to Nyquist -> Nyquist, so no band leaves the range.
    Output bin i (centred at g Hz on Kaldi's mel scale, 20 Hz to Nyquist) takes the source at the inverse
    of that map. Positions within 1e-6 of a whole bin are snapped to it, so alpha = 1 is exactly the
    identity. Float64 internally: the table is only B x n_mels.
    """
    dev = alpha.device
    nyq = sample_rate / 2.0
    mel_low = 1127.0 * math.log1p(20.0 / 700.0)
    mel_high = 1127.0 * math.log1p(nyq / 700.0)
    delta = (mel_high - mel_low) / (n_mels + 1)
    centre = mel_low + (torch.arange(n_mels, device=dev, dtype=torch.float64) + 1.0) * delta
    g = (700.0 * torch.expm1(centre / 1127.0))[None, :]
    a = alpha.to(torch.float64)[:, None]
    g_edge = f_hi * a.clamp(max=1.0)  # output frequency where the linear part ends
    f_edge = g_edge / a  # its source frequency
    src = torch.where(g <= g_edge, g / a, nyq - (nyq - g) * (nyq - f_edge) / (nyq - g_edge))
    pos = ((_hz_to_mel(src) - mel_low) / delta - 1.0).clamp(0.0, n_mels - 1.0)
    whole = pos.round()
    pos = torch.where((pos - whole).abs() < 1e-6, whole, pos)
    return pos.to(torch.float32)


def warp_mel(feats: torch.Tensor, alpha: torch.Tensor, n_mels: int = 80) -> torch.Tensor:
    """Warp the mel axis of log-mel features (B, T, k * n_mels) (k LFR-stacked frames) per row.

    Linear interpolation between neighbouring bins of each stacked frame, one gather for the batch; the
    edges repeat the first/last bin. Interpolating log energies is the usual cheap stand-in for warping
    the linear spectrum before the filterbank.
    """
    b, t, d = feats.shape
    k = d // n_mels
    pos = warp_positions(alpha, n_mels)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=n_mels - 1)
    frac = (pos - lo.to(pos.dtype)).to(feats.dtype)[:, None, None, :]
    x = feats.reshape(b, t, k, n_mels)
    shape = (b, t, k, n_mels)
    x_lo = torch.gather(x, 3, lo[:, None, None, :].expand(shape))
    x_hi = torch.gather(x, 3, hi[:, None, None, :].expand(shape))
    return (x_lo + frac * (x_hi - x_lo)).reshape(b, t, d)


def vtlp(
    feats: torch.Tensor,
    lengths: torch.Tensor,
    gen: torch.Generator,
    p: float,
    alpha_range: tuple[float, float],
    cmvn: tuple[torch.Tensor, torch.Tensor] | None = None,
    n_mels: int = 80,
    wide: torch.Tensor | None = None,
    wide_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Frequency-warp a share ``p`` of the utterances, alpha uniform in ``alpha_range``, on the device.

    ``wide`` (B,) marks rows whose alpha is drawn from ``wide_range`` instead: utterances of engines
    with few voices (flite, festival), whose held-out voices are further from the training ones.

    Why: the held-out voices differ from the training voices mostly in formant positions, which a
    per-utterance warp of the frequency axis imitates. ``feats`` are the trainer's LFR features (B, T, D);
    with ``cmvn`` = (shift, scale) they are normalised, ``(raw + shift) * scale``, so the warp undoes that
    first (each bin has its own statistics) and applies it again. Rows not chosen and padding frames are
    returned unchanged. All choices are drawn on the device: no synchronisation.
    """
    lo, hi = alpha_range
    widened = wide is not None and wide_range is not None and wide_range != alpha_range
    if p <= 0.0 or (lo == 1.0 and hi == 1.0 and not widened):
        return feats
    b, t, d = feats.shape
    dev = feats.device
    sel = torch.rand(b, device=dev, generator=gen) < p
    u = torch.rand(b, device=dev, generator=gen)
    if widened:
        assert wide is not None and wide_range is not None
        w = wide.to(dev).bool()
        wlo, whi = wide_range
        drawn = torch.where(w, wlo, lo) + torch.where(w, whi - wlo, hi - lo) * u  # as below, per row
    else:
        drawn = lo + (hi - lo) * u
    alpha = torch.where(sel, drawn, torch.ones(b, device=dev))
    if cmvn is None:
        warped = warp_mel(feats, alpha, n_mels)
    else:
        shift, scale = cmvn[0][:d].to(dev, feats.dtype), cmvn[1][:d].to(dev, feats.dtype)
        warped = (warp_mel(feats / scale - shift, alpha, n_mels) + shift) * scale
    valid = torch.arange(t, device=dev)[None, :] < lengths[:, None]
    return torch.where((sel[:, None] & valid)[:, :, None], warped, feats)
