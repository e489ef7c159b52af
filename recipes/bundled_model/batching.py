"""Sync-free training batches: host-side assembly in a thread, one pinned copy, batched features.

Why: session 1's steps (~110 ms) were bound by Python and by hidden CUDA synchronisations — every
``torch.tensor(list, device=cuda)`` waits for the stream, as do ``nonzero`` and ``.item()``. Here a
background thread samples the batch and packs every integer the step needs (starts, lengths, prompt rows,
targets, augmentation choices) into one pinned tensor; the step copies it with ``non_blocking=True`` and
computes features from the padded batch without per-utterance slicing, using lengths known on the host.
"""

from __future__ import annotations

import itertools
import queue
import random
import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from asr_engine.features import FRAME_CHUNK, INT16_SCALE, Frontend, _fbank_frames, apply_cmvn
from recipes.bundled_model import augment
from recipes.bundled_model.data import Pool
from recipes.bundled_model.network import LANG_ROWS

SR = 16000


@dataclass
class HostBatch:
    """One step's inputs on the host; ``packed`` is pinned when CUDA is used."""

    size: int
    lengths: np.ndarray  # samples per utterance after speed perturbation
    speed: float  # resampling factor (> 1 is faster speech, fewer samples)
    seconds: float  # audio seconds before perturbation
    n_targets: int
    reverb: int  # rows 0..reverb-1 of the shuffled order get reverb (indices packed)
    phone: int
    packed: torch.Tensor  # starts, src_lengths, lengths, rows, tlens, on, reverb idx, phone idx, mulaw,
    # wide-VTLP rows, targets


class BatchBuilder:
    """Background thread producing ``HostBatch`` objects from the pool (at most ``depth`` ahead)."""

    def __init__(
        self,
        pool: Pool,
        rng: random.Random,
        budget: int,
        pin: bool,
        aug_p: float,
        speed_p: float,
        speed_range: tuple[float, float],
        depth: int = 3,
        wide_engines: frozenset[str] = frozenset(),
    ) -> None:
        self.pool, self.rng, self.budget, self.pin = pool, rng, budget, pin
        self.wide_engines = wide_engines  # engines whose rows get the wider VTLP range
        self.aug_p, self.speed_p, self.speed_range = aug_p, speed_p, speed_range
        self.q: queue.Queue[HostBatch] = queue.Queue(maxsize=depth)
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def set_aug_p(self, p: float) -> None:
        self.aug_p = p

    def _run(self) -> None:
        plan: list[list[int]] = []
        while not self.stop_flag.is_set():
            if not plan:
                plan = self.pool.batches(self.rng, self.budget)
            hb = self.build(plan.pop())
            while not self.stop_flag.is_set():
                try:
                    self.q.put(hb, timeout=0.5)
                    break
                except queue.Full:
                    continue

    def build(self, batch: list[int]) -> HostBatch:
        pool, rng = self.pool, self.rng
        b = len(batch)
        src = np.fromiter((pool.lengths[i] for i in batch), dtype=np.int64, count=b)
        starts = np.fromiter((pool.starts[i] for i in batch), dtype=np.int64, count=b)
        speed = 1.0
        if rng.random() < self.speed_p:
            speed = rng.uniform(*self.speed_range)
        lengths = np.floor(src / speed).astype(np.int64) if speed != 1.0 else src.copy()
        rows = np.fromiter(
            (LANG_ROWS[pool.langs[i]] if rng.random() < 0.5 else 0 for i in batch), dtype=np.int64, count=b
        )
        targets = [pool.targets[i] for i in batch]
        tlens = np.fromiter((len(t) for t in targets), dtype=np.int64, count=b)
        flat = np.fromiter(itertools.chain.from_iterable(targets), dtype=np.int64, count=int(tlens.sum()))
        on = [i for i in range(b) if rng.random() < self.aug_p]
        rev = [i for i in on if rng.random() < 0.3]
        tel = [i for i in on if rng.random() < 0.15]
        mulaw = np.fromiter((rng.random() < 0.5 for _ in range(b)), dtype=np.int64, count=b)
        onmask = np.zeros(b, dtype=np.int64)
        onmask[on] = 1
        parts = [starts, src, lengths, rows, tlens, onmask, np.array(rev, np.int64), np.array(tel, np.int64)]
        wide = np.fromiter((pool.engines[i] in self.wide_engines for i in batch), dtype=np.int64, count=b)
        parts += [mulaw, wide, flat]
        host = torch.from_numpy(np.concatenate(parts))
        if self.pin:
            host = host.pin_memory()
        return HostBatch(b, lengths, speed, float(src.sum()) / SR, len(flat), len(rev), len(tel), host)

    def get(self) -> HostBatch:
        """The next batch; raises when the builder thread has died instead of waiting for ever."""
        while True:
            try:
                return self.q.get(timeout=5.0)
            except queue.Empty:
                if not self.thread.is_alive():
                    raise RuntimeError("batch builder thread stopped") from None

    def stop(self) -> None:
        self.stop_flag.set()


@dataclass
class DeviceBatch:
    starts: torch.Tensor
    src_lengths: torch.Tensor
    lengths: torch.Tensor
    rows: torch.Tensor
    tlens: torch.Tensor
    aug_on: torch.Tensor
    reverb_idx: torch.Tensor
    phone_idx: torch.Tensor
    mulaw: torch.Tensor
    vtlp_wide: torch.Tensor  # 1 where the row's engine takes the wider VTLP range
    targets: torch.Tensor


def to_device(hb: HostBatch, device: torch.device) -> DeviceBatch:
    """One asynchronous copy, then views (no synchronisation)."""
    d = hb.packed.to(device, non_blocking=True)
    b = hb.size
    sizes = [b, b, b, b, b, b, hb.reverb, hb.phone, b, b, hb.n_targets]
    return DeviceBatch(*torch.split(d, sizes))


def gather_waves(pool: Pool, hb: HostBatch, db: DeviceBatch) -> torch.Tensor:
    """(B, Lmax) float waveforms of the source utterances, zero-padded (Lmax from the host)."""
    lmax = int(hb.packed[hb.size : 2 * hb.size].max())
    ar = torch.arange(lmax, device=pool.device)[None, :]
    valid = ar < db.src_lengths[:, None]
    pos = (db.starts[:, None] + ar).clamp(max=pool.used - 1)
    return pool.buffer[pos].float() / 32768.0 * valid


def speed_perturb(x: torch.Tensor, hb: HostBatch) -> torch.Tensor:
    """Resample the whole batch by one factor (tempo and pitch together, like Kaldi speed perturbation)."""
    if hb.speed == 1.0:
        return x
    new_len = int(hb.lengths.max())
    return F.interpolate(x[:, None, :], size=new_len, mode="linear", align_corners=False)[:, 0]


def padded_features(
    frontend: Frontend, x: torch.Tensor, host_lengths: np.ndarray, device_lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The engine's features of every row of a padded batch, equal to ``frontend([x[i, :n_i]])``.

    Every utterance must be at least one frame long (the corpus keeps >= 0.1 s). Frame and LFR counts come
    from the host lengths, so nothing waits for the device. The frame rows of each FFT are padded to
    ``augment.fft_size`` (a batch's exact frame count made cuFFT build a plan nearly every step).
    """
    cfg = frontend.config
    dev = x.device
    b, width = x.shape
    length = frontend._length
    shift = frontend._shift_samples
    counts_h = 1 + (host_lengths - length) // shift
    total = int(counts_h.sum())
    counts = 1 + torch.div(device_lengths - length, shift, rounding_mode="floor")
    offsets = torch.cumsum(counts, 0) - counts
    item = torch.repeat_interleave(torch.arange(b, device=dev), counts, output_size=total)
    within = torch.arange(total, device=dev) - torch.repeat_interleave(offsets, counts, output_size=total)
    starts = item * width + within * shift
    flat = x.reshape(-1) * INT16_SCALE
    flat = torch.cat([flat, flat.new_zeros(length)])
    taps = torch.arange(length, device=dev)
    out = []
    for lo in range(0, total, FRAME_CHUNK):
        count = min(FRAME_CHUNK, total - lo)
        # rows padded with frames at sample 0 (computed, then dropped) to a size whose cuFFT plan recurs
        first = F.pad(starts[lo : lo + count], (0, augment.fft_size(count) - count))
        frames = flat[first[:, None] + taps[None, :]]
        out.append(_fbank_frames(frames, cfg.n_mels, SR, owned=True)[:count])
    frames = torch.cat(out) if len(out) > 1 else out[0]
    lfr_m, lfr_n = cfg.lfr_m, cfg.lfr_n
    t_max = int(((counts_h + lfr_n - 1) // lfr_n).max())
    lfr_counts = torch.div(counts + lfr_n - 1, lfr_n, rounding_mode="floor")
    j = torch.arange(t_max, device=dev).view(1, -1, 1)
    k = torch.arange(lfr_m, device=dev).view(1, 1, -1)
    rows = j * lfr_n + k - (lfr_m - 1) // 2
    rows = torch.minimum(rows.clamp(min=0), (counts - 1).view(-1, 1, 1)) + offsets.view(-1, 1, 1)
    feats = frames[rows.reshape(-1)].reshape(b, t_max, lfr_m * frames.shape[1])
    if frontend._shift is not None and frontend._scale is not None:
        feats = apply_cmvn(feats, frontend._shift, frontend._scale)
    valid = torch.arange(t_max, device=dev)[None, :] < lfr_counts[:, None]
    return feats * valid.unsqueeze(-1).to(feats.dtype), lfr_counts
