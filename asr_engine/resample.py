"""Band-limited resampling that reproduces ``torchaudio.transforms.Resample(orig, new)`` with its defaults.

FunASR resamples every non-16 kHz input with torchaudio's windowed-sinc resampler (Hann window, 6 zero
crossings, rolloff 0.99, rates reduced by their gcd). torchaudio is not a dependency here, so the same
filter is built from its definition: for each of the ``new`` output phases a kernel of ``2*width + orig``
taps, applied as one strided ``conv1d``. Kernels are computed in float64 and stored as float32, as
torchaudio does, and cached per (orig, new, device).

For rate pairs whose gcd-reduced numbers are large (44101 -> 16000 would need a 16000 x 44135 kernel,
2.8 GB) the dense kernel is never built: each output phase keeps only the ``2*width + 1`` taps where the
windowed sinc is non-zero, and outputs are gathered in chunks. The kept taps have the very same values; the
dropped ones are exactly zero or below 1e-30, so results agree with the dense form to float rounding.

``StreamResampler`` does the same for a live stream fed in chunks of any size: it keeps the input the
filter still needs (``2*width + orig`` samples at most, plus less than one block) and emits whole
output blocks as soon as their input has arrived, so its concatenated output equals ``resample()`` of
the whole signal; ``flush()`` at the end supplies the trailing zeros the one-shot form pads with.
"""

from __future__ import annotations

import logging
import math
from typing import Any, overload

import numpy as np
import torch
import torch.nn.functional as F

from asr_engine.memo import BuildOnce

__all__ = ["StreamResampler", "resample", "sinc_kernel"]

logger = logging.getLogger(__name__)

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99

MAX_DENSE_KERNEL = 1 << 22  # elements; above this the sparse per-phase form is used
SPARSE_CHUNK = 1 << 16  # output samples gathered per step in the sparse form

_kernels: BuildOnce[Any] = BuildOnce()  # dense/sparse kernels and matrices per rate pair and device


def _reduced(orig_hz: int, new_hz: int) -> tuple[int, int]:
    g = math.gcd(orig_hz, new_hz)
    return orig_hz // g, new_hz // g


def _geometry(orig_hz: int, new_hz: int) -> tuple[int, int, float, int]:
    """(orig, new, base_freq, width) of the reduced rate pair."""
    if orig_hz <= 0 or new_hz <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_hz} -> {new_hz}")
    orig, new = _reduced(orig_hz, new_hz)
    base_freq = min(orig, new) * ROLLOFF
    return orig, new, base_freq, math.ceil(LOWPASS_FILTER_WIDTH * orig / base_freq)


def _kernel_values(phase: torch.Tensor, taps: torch.Tensor, base_freq: float, orig: int) -> torch.Tensor:
    """Windowed sinc at (phase float32 + taps float64) * base_freq, torchaudio's formula, -> float32."""
    t = (phase + taps) * base_freq
    t = t.clamp(-LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
    window = torch.cos(t * math.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
    t = t * math.pi
    safe_t = torch.where(t == 0, torch.ones_like(t), t)
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(safe_t) / safe_t)
    return (sinc * (window * (base_freq / orig))).to(torch.float32)


def sinc_kernel(orig_hz: int, new_hz: int, device: torch.device | None = None) -> tuple[torch.Tensor, int]:
    """The (new, 1, 2*width + orig) float32 polyphase kernel and ``width`` for the gcd-reduced rates.

    ``new`` output phases each see ``2*width + orig`` input samples; ``width`` is the number of input
    samples the sinc reaches on either side (enough for ``LOWPASS_FILTER_WIDTH`` zero crossings).
    """
    orig, new, base_freq, width = _geometry(orig_hz, new_hz)
    dev = torch.device("cpu") if device is None else torch.device(device)

    def build() -> tuple[torch.Tensor, int]:
        taps = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
        # torchaudio divides the phase offsets in float32 before adding the float64 taps.
        phase = torch.arange(0, -new, -1).to(torch.float32)[:, None, None] / new
        return _kernel_values(phase, taps, base_freq, orig).to(dev), width

    return _kernels.get(("dense", orig, new, str(dev)), build)  # type: ignore[no-any-return]


def _kernel_matrix(orig_hz: int, new_hz: int, device: torch.device) -> torch.Tensor:
    """The dense kernel as a contiguous (2*width + orig, new) matrix: one output block per window row."""
    kernel, _ = sinc_kernel(orig_hz, new_hz, device)
    orig, new, _, _ = _geometry(orig_hz, new_hz)
    return _kernels.get(("matrix", orig, new, str(device)), lambda: kernel[:, 0, :].T.contiguous())  # type: ignore[no-any-return]


def _sparse_kernel(orig_hz: int, new_hz: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-phase non-zero taps: weights (new, 2*width+1) and each phase's first tap index (new,)."""
    orig, new, base_freq, width = _geometry(orig_hz, new_hz)

    def build() -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.arange(new)
        first = torch.div(p * orig, new, rounding_mode="floor")
        index = first[:, None] + torch.arange(2 * width + 1)[None, :]
        taps = (index - width).to(torch.float64) / orig
        phase = (-p).to(torch.float32)[:, None] / new
        weights = _kernel_values(phase, taps, base_freq, orig)
        weights = torch.where(index < 2 * width + orig, weights, torch.zeros_like(weights))
        return weights.to(device), first.to(device)

    return _kernels.get(("sparse", orig, new, str(device)), build)  # type: ignore[no-any-return]


def _resample_sparse(flat: torch.Tensor, orig_hz: int, new_hz: int) -> torch.Tensor:
    """(n, length) -> (n, ceil(length*new/orig)) through the per-phase taps, in chunks of outputs."""
    orig, new, _, width = _geometry(orig_hz, new_hz)
    n_taps = 2 * width + 1
    target = math.ceil(new * flat.shape[-1] / orig)
    return _sparse_outputs(F.pad(flat, (width, width + orig + n_taps)), orig_hz, new_hz, target)


def _sparse_outputs(padded: torch.Tensor, orig_hz: int, new_hz: int, count: int) -> torch.Tensor:
    """The first ``count`` outputs of the (n, P) left-padded input, ``padded[:, 0]`` starting block 0."""
    orig, new, _, _ = _geometry(orig_hz, new_hz)
    weights, first = _sparse_kernel(orig_hz, new_hz, padded.device)
    taps = torch.arange(weights.shape[1], device=padded.device)
    out = []
    for lo in range(0, count, SPARSE_CHUNK):
        q = torch.arange(lo, min(lo + SPARSE_CHUNK, count), device=padded.device)
        block, phase = torch.div(q, new, rounding_mode="floor"), q % new
        index = (block * orig + first[phase])[:, None] + taps[None, :]
        out.append((padded[:, index] * weights[phase].to(padded.dtype)).sum(-1))
    return torch.cat(out, dim=1) if out else padded.new_zeros((padded.shape[0], 0))


def _is_sparse(orig_hz: int, new_hz: int) -> bool:
    orig, new, _, width = _geometry(orig_hz, new_hz)
    return new * (2 * width + orig) > MAX_DENSE_KERNEL


def _resample_tensor(wave: torch.Tensor, orig_hz: int, new_hz: int) -> torch.Tensor:
    if orig_hz == new_hz:
        return wave
    if not wave.is_floating_point():
        raise TypeError(f"resample needs a floating-point waveform, got {wave.dtype}")
    orig, new, _, width = _geometry(orig_hz, new_hz)
    shape = wave.shape
    flat = wave.reshape(-1, shape[-1])
    if _is_sparse(orig_hz, new_hz):
        return _resample_sparse(flat, orig_hz, new_hz).reshape(*shape[:-1], -1)
    kernel, _ = sinc_kernel(orig_hz, new_hz, wave.device)
    length = flat.shape[-1]
    padded = F.pad(flat, (width, width + orig))
    if wave.device.type == "cuda":
        # cuDNN may use TF32 for float32 convolutions; float64 keeps the result within 1e-6.
        work = torch.float64
        out = F.conv1d(padded[:, None].to(work), kernel.to(work), stride=orig).to(
            flat.dtype
        )  # (n, new, frames)
        out = out.transpose(1, 2).reshape(flat.shape[0], -1)
    else:
        # The same sums as one GEMM over strided windows (no copy): 2.6x faster than a strided conv1d on
        # a CPU, equal to float rounding (4e-8 on 44.1 kHz speech), and the form StreamResampler uses.
        windows = padded.unfold(-1, 2 * width + orig, orig)  # (n, frames, span)
        out = (windows @ _kernel_matrix(orig_hz, new_hz, wave.device)).reshape(flat.shape[0], -1)
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


class StreamResampler:
    """One mono stream resampled chunk by chunk, equal to ``resample()`` of the whole signal.

    Output block ``f`` (``new`` samples of the gcd-reduced rates) needs the input from ``f*orig - width``
    to ``f*orig + width + orig``; ``process`` emits every block whose input is complete and keeps the
    rest, so the output lags the input by about ``width + orig`` input samples until ``flush``.
    Not thread-safe: one stream, one caller.
    """

    def __init__(self, orig_hz: int, new_hz: int) -> None:
        self._orig_hz, self._new_hz = orig_hz, new_hz
        self._orig, self._new, _, self._width = _geometry(orig_hz, new_hz)
        self._span = 2 * self._width + self._orig  # input samples one block reads
        self._sparse = _is_sparse(orig_hz, new_hz)
        # The dense kernel as a (span, new) matrix: one small matmul per chunk (a strided conv1d call
        # costs several times more for the few blocks a live chunk yields).
        self._matrix = (
            None
            if self._sparse or orig_hz == new_hz
            else _kernel_matrix(orig_hz, new_hz, torch.device("cpu"))
        )
        # Input not yet fully used, starting at the next block's first tap; the one-shot form's left padding.
        self._buffer = np.zeros(self._width, dtype=np.float32)
        self._received = 0
        self._emitted = 0
        self._flushed = False

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Add mono float32 input; returns the output samples that are now final (maybe none)."""
        if self._flushed:
            raise RuntimeError("StreamResampler.process after flush")
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if self._orig_hz == self._new_hz:
            self._received += chunk.size
            self._emitted += chunk.size
            return chunk
        self._received += chunk.size
        self._buffer = np.concatenate([self._buffer, chunk])
        if self._buffer.size < self._span:
            return np.zeros(0, dtype=np.float32)
        blocks = (self._buffer.size - self._span) // self._orig + 1
        return self._emit(blocks, blocks * self._new)

    def flush(self) -> np.ndarray:
        """End of the stream: the remaining output, computed over the trailing zeros. Idempotent."""
        if self._flushed:
            return np.zeros(0, dtype=np.float32)
        self._flushed = True
        if self._orig_hz == self._new_hz:
            return np.zeros(0, dtype=np.float32)
        remaining = math.ceil(self._new * self._received / self._orig) - self._emitted
        if remaining <= 0:
            return np.zeros(0, dtype=np.float32)
        blocks = -(-remaining // self._new)
        need = (blocks - 1) * self._orig + self._span
        if self._buffer.size < need:
            zeros = np.zeros(need - self._buffer.size, dtype=np.float32)
            self._buffer = np.concatenate([self._buffer, zeros])
        return self._emit(blocks, remaining)

    def _emit(self, blocks: int, count: int) -> np.ndarray:
        """The next ``count`` outputs (within ``blocks`` whole blocks); drops the input no block needs now."""
        window = torch.from_numpy(self._buffer[: (blocks - 1) * self._orig + self._span])
        with torch.inference_mode():
            if self._matrix is not None:
                # Row f holds block f's input: the same taps and values as the one-shot convolution.
                rows = window.unfold(0, self._span, self._orig)
                out = (rows @ self._matrix).reshape(-1)[:count].numpy()
            else:
                out = _sparse_outputs(window[None], self._orig_hz, self._new_hz, count)[0].numpy()
        self._buffer = self._buffer[blocks * self._orig :].copy()
        self._emitted += count
        return out
