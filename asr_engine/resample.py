"""Band-limited resampling that reproduces ``torchaudio.transforms.Resample(orig, new)`` with its defaults.

FunASR resamples every non-16 kHz input with torchaudio's windowed-sinc resampler (Hann window, 6 zero
crossings, rolloff 0.99, rates reduced by their gcd). torchaudio is not a dependency here, so the same
filter is built from its definition: for each of the ``new`` output phases a kernel of ``2*width + orig``
taps, applied as one strided ``conv1d``. Kernels are computed in float64 and stored as float32, as
torchaudio does, and cached per (orig, new, device).
"""

from __future__ import annotations

import logging
import math
import threading
from typing import overload

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["resample", "sinc_kernel"]

logger = logging.getLogger(__name__)

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99

_kernel_cache: dict[tuple[int, int, str], tuple[torch.Tensor, int]] = {}
_cache_lock = threading.Lock()


def _reduced(orig_hz: int, new_hz: int) -> tuple[int, int]:
    g = math.gcd(orig_hz, new_hz)
    return orig_hz // g, new_hz // g


def sinc_kernel(orig_hz: int, new_hz: int, device: torch.device | None = None) -> tuple[torch.Tensor, int]:
    """The (new, 1, 2*width + orig) float32 polyphase kernel and ``width`` for the gcd-reduced rates.

    ``new`` output phases each see ``2*width + orig`` input samples; ``width`` is the number of input
    samples the sinc reaches on either side (enough for ``LOWPASS_FILTER_WIDTH`` zero crossings).
    """
    if orig_hz <= 0 or new_hz <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_hz} -> {new_hz}")
    dev = torch.device("cpu") if device is None else torch.device(device)
    key = (orig_hz, new_hz, str(dev))
    with _cache_lock:
        cached = _kernel_cache.get(key)
    if cached is not None:
        return cached
    orig, new = _reduced(orig_hz, new_hz)
    base_freq = min(orig, new) * ROLLOFF
    width = math.ceil(LOWPASS_FILTER_WIDTH * orig / base_freq)
    taps = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    # torchaudio divides the phase offsets in the default dtype (float32) before adding the float64 taps.
    phase = torch.arange(0, -new, -1).to(torch.float32)[:, None, None] / new
    t = (phase + taps) * base_freq
    t = t.clamp(-LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
    window = torch.cos(t * math.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
    t = t * math.pi
    safe_t = torch.where(t == 0, torch.ones_like(t), t)
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(safe_t) / safe_t)
    kernel = (sinc * (window * (base_freq / orig))).to(torch.float32).to(dev)
    result = (kernel, width)
    with _cache_lock:
        _kernel_cache[key] = result
    return result


def _resample_tensor(wave: torch.Tensor, orig_hz: int, new_hz: int) -> torch.Tensor:
    if orig_hz == new_hz:
        return wave
    if not wave.is_floating_point():
        raise TypeError(f"resample needs a floating-point waveform, got {wave.dtype}")
    orig, new = _reduced(orig_hz, new_hz)
    kernel, width = sinc_kernel(orig_hz, new_hz, wave.device)
    shape = wave.shape
    flat = wave.reshape(-1, shape[-1])
    length = flat.shape[-1]
    padded = F.pad(flat, (width, width + orig))
    out = F.conv1d(padded[:, None], kernel.to(flat.dtype), stride=orig)  # (n, new, frames)
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)
    target = math.ceil(new * length / orig)
    return out[..., :target].reshape(*shape[:-1], -1)


@overload
def resample(wave: np.ndarray, orig_hz: int, new_hz: int) -> np.ndarray: ...


@overload
def resample(wave: torch.Tensor, orig_hz: int, new_hz: int) -> torch.Tensor: ...


def resample(wave: np.ndarray | torch.Tensor, orig_hz: int, new_hz: int) -> np.ndarray | torch.Tensor:
    """Resample along the last axis; numpy in -> float32 numpy out, a tensor stays on its device.

    Equal rates return the input unchanged. The output has ``ceil(len * new / orig)`` samples.
    """
    if isinstance(wave, np.ndarray):
        if orig_hz == new_hz:
            return wave
        tensor = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
        with torch.inference_mode():
            return _resample_tensor(tensor, orig_hz, new_hz).numpy()
    return _resample_tensor(wave, orig_hz, new_hz)
