"""Token time spans from CIF weights, as FunASR's ``ts_prediction_lfr6_standard`` computes them.

Frame unit = 60 ms / upsample rate; fire positions are shifted by -1.5 frames; a leading/trailing silence
longer than 5 frames and tokens longer than 12 frames are cut; seconds are converted with ``int(s*1000)``
(truncation toward zero, so starts can be negative). Paraformer passes its *fires* as the weights and its
*alphas* as the peaks (FunASR's argument swap); SeACo passes its upsampled weights and peaks in order.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from asr_engine.decoding.cif import cif_sequential

__all__ = ["token_spans_ms"]

log = logging.getLogger(__name__)

_FIRE_THRESHOLD = 1.0 - 1e-4
_START_END_FRAMES = 5
_MAX_TOKEN_FRAMES = 12
_TIME_SHIFT = -1.5


def _fire_places(peaks: np.ndarray) -> np.ndarray:
    return np.nonzero(peaks >= np.float32(_FIRE_THRESHOLD))[0] + _TIME_SHIFT


def token_spans_ms(
    weights: torch.Tensor, peaks: torch.Tensor, num_tokens: int, *, upsample_rate: int = 1
) -> list[tuple[int, int]]:
    """[start_ms, end_ms] for each of ``num_tokens`` tokens (ids 0/1/2 removed, ``<unk>`` kept).

    ``weights`` and ``peaks`` are one item's 1-D float32 arrays of equal length (T+1 frames, or 3T).
    """
    if num_tokens <= 0:
        return []
    unit = 10.0 * 6 / 1000 / upsample_rate
    w = weights.detach().float().cpu()
    p = peaks.detach().float().cpu().numpy()
    places = _fire_places(p)
    if len(places) != num_tokens + 1:
        w = w / (w.sum() / (num_tokens + 1))
        p = cif_sequential(w.numpy(), _FIRE_THRESHOLD)
        places = _fire_places(p)
    n_frames = p.shape[0]
    if len(places) == 0:
        log.warning("no CIF fire for %d tokens; giving zero-length spans", num_tokens)
        return [(0, 0)] * num_tokens
    spans: list[list[float]] = []
    is_token: list[bool] = []
    if places[0] > _START_END_FRAMES:
        spans.append([0.0, places[0] * unit])
        is_token.append(False)
    for i in range(len(places) - 1):
        is_token.append(True)
        if places[i + 1] - places[i] <= _MAX_TOKEN_FRAMES:
            spans.append([places[i] * unit, places[i + 1] * unit])
        else:
            split = places[i] + _MAX_TOKEN_FRAMES
            spans.append([places[i] * unit, split * unit])
            spans.append([split * unit, places[i + 1] * unit])
            is_token.append(False)
    if not spans:
        spans.append([places[0] * unit, places[0] * unit])
        is_token.append(True)
    if n_frames - places[-1] > _START_END_FRAMES:
        end = (n_frames + places[-1]) * 0.5
        spans[-1][1] = end * unit
        spans.append([end * unit, n_frames * unit])
        is_token.append(False)
    else:
        spans[-1][1] = n_frames * unit
    out = [(int(s * 1000), int(e * 1000)) for (s, e), tok in zip(spans, is_token, strict=True) if tok]
    if len(out) != num_tokens:
        # FunASR assumes one more fire than tokens here (it would misalign or raise otherwise).
        log.warning("CIF timestamps: %d spans for %d tokens", len(out), num_tokens)
        out = (out + [out[-1]] * num_tokens)[:num_tokens]
    return out
