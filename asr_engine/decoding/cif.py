"""Continuous integrate-and-fire (CIF): turn per-frame weights into token-level acoustic embeddings.

``cif_fire`` is FunASR's vectorised rule (CifPredictorV2): prefix sums of the weights accumulated in
float64 then rounded to float32, a fire wherever the integer part grows. ``cif_fire_padded`` computes the
same embeddings with the same float operations into a fixed-size output and without reading anything back
to the host, so it can sit inside a CUDA graph. ``cif_sequential`` is the
frame-by-frame rule of CifPredictorV3 and of the timestamp routine (threshold subtracted on fire).
Everything runs in float32 whatever the model dtype: fire decisions sit on integer crossings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "CifOutput",
    "add_tail",
    "cif_fire",
    "cif_fire_padded",
    "cif_sequential",
    "cif_sequential_embeddings",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CifOutput:
    """embeddings (B, N_max, d) float32 (zero past each item's count), token_num (B,) int64,
    alphas and fires (B, T+1) float32."""

    embeddings: torch.Tensor
    token_num: torch.Tensor
    alphas: torch.Tensor
    fires: torch.Tensor


def add_tail(
    hidden: torch.Tensor, alphas: torch.Tensor, lengths: torch.Tensor, tail: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Append the tail frame right after each item's last valid frame.

    hidden (B, T, d) -> (B, T+1, d) float32 with every frame at or past an item's length set to zero (so
    the tail integrates zeros, as in a batch of one); alphas (B, T) (already zero on padding) ->
    (B, T+1) with ``tail`` added at index ``lengths[b]``.
    """
    b, t, d = hidden.shape
    pos = torch.arange(t + 1, device=hidden.device)[None, :]
    valid = (pos < lengths[:, None]).to(torch.float32)
    h = torch.cat([hidden.float(), hidden.new_zeros(b, 1, d, dtype=torch.float32)], dim=1) * valid[..., None]
    a = torch.cat([alphas.float(), alphas.new_zeros(b, 1, dtype=torch.float32)], dim=1)
    a = a + (pos == lengths[:, None]).to(torch.float32) * tail
    return h, a


def cif_fire(hidden: torch.Tensor, alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Vectorised CIF over a batch (threshold 1.0).

    hidden (B, L, d) float32, alphas (B, L) float32 -> (embeddings (B, N_max, d), fire counts (B,),
    fires (B, L)); N_max = the largest number of fires in the batch.
    """
    b, _, d = hidden.shape
    fired, counts, fires = _fire_positions(alphas)
    n_max = int(counts.max().item()) if b else 0
    out = hidden.new_zeros(b, n_max, d)
    if n_max == 0:
        return out, counts, fires
    hidden_prefix = torch.cumsum(alphas[..., None] * hidden, dim=1)
    rows, cols = fired.nonzero(as_tuple=True)  # row-major: each item's fires in time order
    frames = hidden_prefix[rows, cols]
    remains = fires[rows, cols] - torch.floor(fires[rows, cols])
    remain_frames = remains[:, None] * hidden[rows, cols]
    first = torch.ones_like(rows, dtype=torch.bool)
    first[1:] = rows[1:] != rows[:-1]
    prev_frames = torch.roll(frames, 1, dims=0)
    prev_remain = torch.roll(remain_frames, 1, dims=0)
    prev_frames[first] = 0
    prev_remain[first] = 0
    emb = frames - prev_frames + prev_remain - remain_frames
    ordinal = torch.cumsum(fired.to(torch.int64), dim=1)[rows, cols] - 1
    out[rows, ordinal] = emb
    return out, counts, fires


def _fire_positions(alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which frames fire (B, L) bool, the fire counts (B,) and FunASR's ``fires`` (B, L) float32."""
    b = alphas.shape[0]
    prefix = torch.cumsum(alphas, dim=1, dtype=torch.float64).to(torch.float32)
    floor = torch.floor(prefix)
    prev_floor = torch.cat([floor.new_zeros(b, 1), floor[:, :-1]], dim=1)
    fired = (floor - prev_floor) > 0
    fires = (fired.to(torch.float32) + prefix) - floor
    return fired, fired.sum(dim=1), fires


def cif_fire_padded(
    hidden: torch.Tensor, alphas: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``cif_fire`` with a fixed output size and no host synchronisation.

    hidden (B, L, d) float32, alphas (B, L) float32 -> (embeddings (B, L, d), fire counts (B,), fires
    (B, L)); embedding row j < count is the j-th fire's vector, bit for bit ``cif_fire``'s (the same
    operations in the same order, computed for every frame and scattered to each fire's ordinal), rows past
    the count are zero. L bounds the count: a frame fires at most once.
    """
    b, length, d = hidden.shape
    fired, counts, fires = _fire_positions(alphas)
    hidden_prefix = torch.cumsum(alphas[..., None] * hidden, dim=1)
    remain_frames = (fires - torch.floor(fires))[..., None] * hidden
    ordinal = torch.cumsum(fired.to(torch.int64), dim=1) - 1
    # Frames that do not fire all go to a spare row ``length``, dropped below.
    slot = torch.where(fired, ordinal, torch.full_like(ordinal, length))[..., None].expand(b, length, d)
    at_fire = hidden.new_zeros(b, length + 1, d).scatter_(1, slot, hidden_prefix)[:, :length]
    remain = hidden.new_zeros(b, length + 1, d).scatter_(1, slot, remain_frames)[:, :length]
    zero = hidden.new_zeros(b, 1, d)
    prev_frames = torch.cat([zero, at_fire[:, :-1]], dim=1)
    prev_remain = torch.cat([zero, remain[:, :-1]], dim=1)
    emb = at_fire - prev_frames + prev_remain - remain
    kept = torch.arange(length, device=hidden.device)[None, :] < counts[:, None]
    return torch.where(kept[..., None], emb, zero), counts, fires


def cif_sequential(alphas: np.ndarray, threshold: float) -> np.ndarray:
    """Frame-by-frame integrate-and-fire without hidden vectors, float32 like FunASR's loop.

    Records the accumulator after adding each weight (before subtracting ``threshold`` on a fire).
    """
    a = np.asarray(alphas, dtype=np.float32)
    thr = np.float32(threshold)
    out = np.empty_like(a)
    acc = np.float32(0.0)
    for i in range(a.shape[0]):
        acc = np.float32(acc + a[i])
        out[i] = acc
        if acc >= thr:
            acc = np.float32(acc - thr)
    return out


def cif_sequential_embeddings(
    hidden: torch.Tensor, alphas: torch.Tensor, threshold: float = 1.0
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """CifPredictorV3's sequential CIF for one item: hidden (L, d), alphas (L,) float32.

    Returns the list of emitted frames (each (d,)) and the recorded accumulator ("fires", (L,)).
    The accumulator is walked on the CPU; the frames are gathered as weighted sums on hidden's device.
    """
    a = alphas.detach().float().cpu().numpy()
    length = a.shape[0]
    thr = np.float32(threshold)
    acc = np.float32(0.0)
    fires = np.empty(length, dtype=np.float32)
    # Each emitted frame is sum_t w_t * h_t over a window; collect (frame index, t, w) triples.
    frame_of: list[int] = []
    time_of: list[int] = []
    weight_of: list[float] = []
    frame = 0
    for t in range(length):
        alpha = np.float32(a[t])
        completion = np.float32(np.float32(1.0) - acc)
        acc = np.float32(acc + alpha)
        fires[t] = acc
        if acc >= thr:
            acc = np.float32(acc - np.float32(1.0))
            frame_of.append(frame)
            time_of.append(t)
            weight_of.append(float(completion))
            frame += 1
            frame_of.append(frame)
            time_of.append(t)
            weight_of.append(float(np.float32(alpha - completion)))
        else:
            frame_of.append(frame)
            time_of.append(t)
            weight_of.append(float(alpha))
    device = hidden.device
    h = hidden.float()
    weights = torch.tensor(weight_of, dtype=torch.float32, device=device)
    times = torch.tensor(time_of, dtype=torch.int64, device=device)
    frames_idx = torch.tensor(frame_of, dtype=torch.int64, device=device)
    sums = torch.zeros(frame + 1, h.shape[1], dtype=torch.float32, device=device)
    sums.index_add_(0, frames_idx, weights[:, None] * h[times])
    return list(sums[:frame].unbind(0)), torch.from_numpy(fires)
