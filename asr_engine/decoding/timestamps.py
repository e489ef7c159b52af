"""Token time spans from CIF weights, as FunASR's ``ts_prediction_lfr6_standard`` computes them.

Frame unit = 60 ms / upsample rate; fire positions are shifted by -1.5 frames; a leading/trailing silence
longer than 5 frames and tokens longer than 12 frames are cut; seconds are converted with ``int(s*1000)``
(truncation toward zero, so starts can be negative). Paraformer passes its *fires* as the weights and its
*alphas* as the peaks (FunASR's argument swap); SeACo passes its upsampled weights and peaks in order.

Paraformer's alphas almost never reach the fire threshold, so its spans nearly always come from FunASR's
re-fire of the normalised weights: a float32 integrate-and-fire loop. That loop runs here on Python floats
rounded to float32 after every operation (``_fire_indices``): ``cif.cif_sequential``'s decisions bit for
bit, at a fifth of its cost. The engine builds results under the GIL (bench/hypothesis_speed.py).
"""

from __future__ import annotations

import itertools
import logging
import operator
from array import array

import numpy as np
import torch

__all__ = ["token_spans_ms"]

log = logging.getLogger(__name__)

_FIRE_THRESHOLD = 1.0 - 1e-4
_THRESHOLD_F32 = np.float32(_FIRE_THRESHOLD)
_THRESHOLD = float(_THRESHOLD_F32)  # the float32 threshold's exact value, as a Python float
_START_END_FRAMES = 5
_MAX_TOKEN_FRAMES = 12
_TIME_SHIFT = -1.5


def _fire_indices(weights: list[float]) -> list[int]:
    """The frames where ``cif_sequential(weights, threshold)`` reaches the threshold.

    ``weights`` are float32 values. A float32 sum or difference of float32 values equals the float64 one
    rounded once to float32 (float64 carries more than 2 x 24 + 2 bits, so the double rounding is exact);
    storing into a float32 array does that rounding (IEEE round-to-nearest-even; inf and NaN carry over).
    """
    cell = array("f", [0.0])
    acc = 0.0
    thr = _THRESHOLD
    out: list[int] = []
    for i, w in enumerate(weights):
        cell[0] = acc + w
        acc = cell[0]
        if acc >= thr:
            out.append(i)
            cell[0] = acc - thr
            acc = cell[0]
    return out


def _token_spans(indices: list[int], n_frames: int, unit: float) -> list[tuple[int, int]]:
    """FunASR's spans between consecutive fires (frame ``i`` fires at ``i - 1.5`` frames), ms.

    FunASR lists leading silence, token spans, the part of a token past 12 frames and trailing silence,
    then keeps the token spans; only the token ones are built here. A boundary is ``int(frames * unit *
    1000)`` evaluated in that order, as FunASR does, so every value is the same float64 arithmetic.
    """
    shift, cap = _TIME_SHIFT, _MAX_TOKEN_FRAMES
    ms = [int((i + shift) * unit * 1000) for i in indices]
    out = list(itertools.pairwise(ms))
    gaps = list(map(operator.sub, indices[1:], indices))
    if gaps and max(gaps) > cap:  # a token longer than 12 frames ends 12 frames after its fire
        for j, gap in enumerate(gaps):
            if gap > cap:
                out[j] = (ms[j], int((indices[j] + shift + cap) * unit * 1000))
    # The last span listed (before any trailing silence) ends at the audio's end or mid-silence; it is a
    # token's only if the last gap was not split (or, with one fire, if there was no leading silence).
    first = indices[0] + shift
    if len(indices) == 1:
        if first > _START_END_FRAMES:
            return out
        out = [(ms[0], ms[0])]
    elif indices[-1] - indices[-2] > cap:
        return out
    last = indices[-1] + shift
    end = (n_frames + last) * 0.5 * unit if n_frames - last > _START_END_FRAMES else n_frames * unit
    out[-1] = (out[-1][0], int(end * 1000))
    return out


def _as_float32(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def token_spans_ms(
    weights: torch.Tensor | np.ndarray,
    peaks: torch.Tensor | np.ndarray,
    num_tokens: int,
    *,
    upsample_rate: int = 1,
) -> list[tuple[int, int]]:
    """[start_ms, end_ms] for each of ``num_tokens`` tokens (ids 0/1/2 removed, ``<unk>`` kept).

    ``weights`` and ``peaks`` are one item's 1-D arrays of equal length (T+1 frames, or 3T), read as
    float32 (tensors on any device, or host arrays: a float32 array is used in place).
    """
    if num_tokens <= 0:
        return []
    unit = 10.0 * 6 / 1000 / upsample_rate
    p = _as_float32(peaks)
    n_frames = p.shape[0]
    fired = np.flatnonzero(p >= _THRESHOLD_F32)
    if len(fired) != num_tokens + 1:
        # Normalised exactly as before, by torch (its float32 sum's order is torch's own).
        w = torch.from_numpy(_as_float32(weights))
        indices = _fire_indices((w / (w.sum() / (num_tokens + 1))).tolist())
        n_frames = w.shape[0]
    else:
        indices = fired.tolist()
    if not indices:
        log.warning("no CIF fire for %d tokens; giving zero-length spans", num_tokens)
        return [(0, 0)] * num_tokens
    out = _token_spans(indices, n_frames, unit)
    if len(out) != num_tokens:
        # FunASR assumes one more fire than tokens here (it would misalign or raise otherwise).
        log.warning("CIF timestamps: %d spans for %d tokens", len(out), num_tokens)
        out = (out + [out[-1]] * num_tokens)[:num_tokens]
    return out
