"""FunASR's WavFrontend on torch: Kaldi fbank, LFR stacking and CMVN, batched on any device.

The values follow ``torchaudio.compliance.kaldi.fbank`` as FunASR calls it (snip_edges, DC removal,
pre-emphasis 0.97, symmetric Hamming window, power spectrum, Kaldi mel bank, log with a float32-eps
floor), on the waveform scaled to int16 units. ``Frontend`` featurises a whole batch with one set of tensor
ops: all frames of all items are gathered into one matrix, and LFR stacking is one gather; each item only
ever sees its own samples, so its features do not depend on the rest of the batch.

Rules for short inputs (FunASR's): the frame length is ``min(frame_length_ms, duration)``, so a clip
shorter than 25 ms gives one shorter frame (with its own FFT size and mel bank). A clip whose frame would be
shorter than 2 samples (FunASR raises there) yields zero frames: its length is 0 and its rows are all zero.
Features are always float32, whatever dtype the model runs in.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from asr_engine.errors import ModelLoadError
from asr_engine.host_memory import upload
from asr_engine.memo import BuildOnce
from asr_engine.models.base import FrontendConfig

__all__ = [
    "Frontend",
    "apply_cmvn",
    "apply_lfr",
    "fbank",
    "frontend_config_from_funasr",
    "load_cmvn",
    "mel_banks",
]

logger = logging.getLogger(__name__)

INT16_SCALE = 32768.0
PREEMPHASIS = 0.97
LOW_FREQ_HZ = 20.0
# Frames featurised per set of tensor ops; bounds the (frames x 512) FFT buffers to a few hundred MB.
FRAME_CHUNK = 65536

_tables: BuildOnce[torch.Tensor] = BuildOnce()  # mel banks and windows per (shape, device)


def _mel(freq: torch.Tensor | float) -> Any:
    if isinstance(freq, torch.Tensor):
        return 1127.0 * (1.0 + freq / 700.0).log()
    return 1127.0 * math.log(1.0 + freq / 700.0)


def mel_banks(n_mels: int, fft_size: int, sample_rate: int, device: torch.device) -> torch.Tensor:
    """Kaldi's triangular mel filters as a (fft_size//2 + 1, n_mels) float32 matrix.

    Filters are equally spaced on 1127 ln(1 + f/700) between 20 Hz and Nyquist and evaluated on FFT bins
    0 .. fft_size/2 - 1; the Nyquist bin's row is zero (Kaldi leaves it out). Built in float32 with the
    same operation order as torchaudio so the values agree to the last bit or two.
    """

    def build() -> torch.Tensor:
        n_bins = fft_size // 2
        bin_hz = float(sample_rate) / fft_size
        mel_low = _mel(LOW_FREQ_HZ)
        mel_high = _mel(0.5 * sample_rate)
        delta = (mel_high - mel_low) / (n_mels + 1)
        index = torch.arange(n_mels).unsqueeze(1)
        left = mel_low + index * delta
        center = mel_low + (index + 1.0) * delta
        right = mel_low + (index + 2.0) * delta
        mel = _mel(bin_hz * torch.arange(n_bins)).unsqueeze(0)
        up = (mel - left) / (center - left)
        down = (right - mel) / (right - center)
        weights = torch.clamp(torch.minimum(up, down), min=0.0)
        weights = F.pad(weights, (0, 1))  # Nyquist bin
        return weights.t().contiguous().to(device)

    return _tables.get(("mel", n_mels, fft_size, sample_rate, str(device)), build)


def _hamming(length: int, device: torch.device) -> torch.Tensor:
    return _tables.get(
        ("hamming", length, str(device)),
        lambda: torch.hamming_window(length, periodic=False, alpha=0.54, beta=0.46).to(device),
    )


def _fbank_frames(
    frames: torch.Tensor, n_mels: int, sample_rate: int, dither: float = 0.0, *, owned: bool = False
) -> torch.Tensor:
    """Log mel energies (F, n_mels) of raw frames (F, L) already in int16 units.

    ``owned``: ``frames`` is a temporary of the caller's that may be overwritten; with it the steps run in
    place, which keeps a batch's transient memory near two copies of its frames instead of six (on CUDA
    that memory stays cached by the allocator, bench/results/2026-11-22-h200-mem2). Same values either way.
    """
    length = frames.shape[1]
    fft_size = 1 << max(0, (length - 1).bit_length())
    if dither != 0.0:
        frames = frames + dither * torch.randn_like(frames)
        owned = True
    mean = frames.mean(dim=1, keepdim=True)
    frames = frames.sub_(mean) if owned else frames - mean
    # Pre-emphasis x[t] - 0.97 x[t-1], with x[-1] = x[0]; the right-hand side is computed before any write.
    previous = PREEMPHASIS * frames[:, :-1]
    frames[:, 1:] -= previous
    frames[:, :1] -= previous[:, :1]
    del previous
    frames.mul_(_hamming(length, frames.device))
    power = torch.fft.rfft(frames, n=fft_size).abs().pow_(2.0)
    del frames
    device = power.device
    # On CUDA a global TF32 setting would round this product to 10-bit mantissas, and a float32 product
    # on several streams (device workers) is not bit-reproducible across runs; float64 avoids both (the
    # float32 form let two-worker token ids differ from one worker's in float32, 2026-11-22-h100-s5-defaults).
    if device.type == "cuda":
        bank = _tables.get(
            ("mel64", n_mels, fft_size, sample_rate, str(device)),
            lambda: mel_banks(n_mels, fft_size, sample_rate, device).double(),
        )
        energies = (power.double() @ bank).float()
    else:
        energies = power @ mel_banks(n_mels, fft_size, sample_rate, device)
    eps = torch.finfo(torch.float32).eps
    return energies.clamp_(min=eps).log_()


def _padded_rows(n: int) -> int:
    """``n`` rounded up to one of four sizes per octave (at least 256).

    cuFFT plans are cached per shape, batch size included: a batch's exact frame count made nearly every
    batch build a new plan on the device thread (its FFT line held 38 % of that thread in the H200 profile,
    bench/results/2026-11-22-h200-mem2). Padding rows costs at most a quarter more FFT work.
    """
    return 256 if n <= 256 else quarter_octave(n)


def quarter_octave(n: int) -> int:
    """``n`` rounded up to one of four sizes per octave: 2^k times 1, 1.25, 1.5 or 1.75 (up to 8 as it is).

    The sizes have no prime factor above 7, which cuFFT transforms directly; at most a quarter more work.
    """
    step = 1 << max(0, n.bit_length() - 3)
    return -(-n // step) * step


def _window_samples(n_samples: int, sample_rate: int, frame_length_ms: float) -> int:
    """Frame length in samples, FunASR's way: ``min(frame_length_ms, duration)`` converted by ``int``."""
    length_ms = min(frame_length_ms, n_samples / sample_rate * 1000)
    return int(sample_rate * length_ms * 0.001)


def fbank(
    wave: torch.Tensor,
    *,
    sample_rate: int = 16000,
    n_mels: int = 80,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    dither: float = 0.0,
) -> torch.Tensor:
    """Kaldi fbank (T, n_mels) float32 of one mono waveform in [-1, 1] (scaled by 32768 here).

    ``dither`` > 0 adds Gaussian noise as Kaldi does (non-deterministic; the engine always passes 0).
    """
    wave = wave.reshape(-1).to(torch.float32) * INT16_SCALE
    n = wave.shape[0]
    length = _window_samples(n, sample_rate, frame_length_ms)
    shift = int(sample_rate * frame_shift_ms * 0.001)
    if length < 2 or n < length:
        return wave.new_zeros((0, n_mels))
    count = 1 + (n - length) // shift
    frames = wave.as_strided((count, length), (shift, 1))
    return _fbank_frames(frames, n_mels, sample_rate, dither)


def _lfr_index(counts: Sequence[int], lfr_m: int, lfr_n: int) -> tuple[np.ndarray, list[int]]:
    """Row indices (B, T_lfr_max, m) into the items' concatenated frames, and T_lfr per item.

    Output row j of an item stacks padded rows j*n .. j*n+m-1, where the padding is (m-1)//2 copies of
    the first frame in front and copies of the last frame behind: a clamp of the frame index. Computed on
    the host from counts the host already has: on CUDA the tensor form read ``max()`` back (a sync per
    batch) and queued a dozen small kernels on the device thread, whose time under load went to features.
    """
    counts_np = np.asarray(counts, dtype=np.int64).reshape(-1)
    lfr_counts = (counts_np + lfr_n - 1) // lfr_n
    t_max = int(lfr_counts.max()) if counts_np.size else 0
    # Items without frames point at row 0 (any valid row): all their output rows are masked anyway.
    offsets = np.where(counts_np > 0, np.cumsum(counts_np) - counts_np, 0)
    j = np.arange(t_max, dtype=np.int64).reshape(1, -1, 1)
    k = np.arange(lfr_m, dtype=np.int64).reshape(1, 1, -1)
    rows = j * lfr_n + k - (lfr_m - 1) // 2
    last = np.clip(counts_np - 1, 0, None).reshape(-1, 1, 1)
    rows = np.minimum(np.clip(rows, 0, None), last) + offsets.reshape(-1, 1, 1)
    return rows, lfr_counts.tolist()


def _stack_lfr(
    frames: torch.Tensor, counts: Sequence[int], lfr_m: int, lfr_n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """LFR of concatenated per-item frames (sum T, D) -> zero-padded (B, T_lfr_max, m*D), lengths."""
    rows, lfr_counts = _lfr_index(counts, lfr_m, lfr_n)
    batch, t_max, _ = rows.shape
    dim = frames.shape[1]
    lengths = upload(np.asarray(lfr_counts, dtype=np.int64), frames.device)
    if frames.shape[0] == 0:
        return frames.new_zeros((batch, t_max, lfr_m * dim)), lengths
    index = upload(rows.reshape(-1), frames.device)
    stacked = frames[index].reshape(batch, t_max, lfr_m * dim)
    return stacked, lengths


def apply_lfr(feats: torch.Tensor, lfr_m: int, lfr_n: int) -> torch.Tensor:
    """Low frame rate stacking of one item's frames (T, D) -> (ceil(T/n), m*D); T = 0 gives 0 rows."""
    stacked, _ = _stack_lfr(feats, [feats.shape[0]], lfr_m, lfr_n)
    return stacked[0]


def apply_cmvn(feats: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``(feats + shift) * scale`` over the last axis (FunASR's am.mvn transform), float32."""
    dim = feats.shape[-1]
    shift = shift[:dim].to(feats.device, torch.float32)
    scale = scale[:dim].to(feats.device, torch.float32)
    return (feats.to(torch.float32) + shift) * scale


class Frontend:
    """A model's feature extractor, fixed at load time and shared by all requests (holds no request state)."""

    def __init__(self, config: FrontendConfig, device: torch.device | str) -> None:
        self.config = config
        self.device = torch.device(device)
        if config.dither != 0.0:
            logger.warning("frontend dither %s ignored: features are computed with dither 0", config.dither)
        self._shift = None if config.cmvn_shift is None else config.cmvn_shift.to(self.device, torch.float32)
        self._scale = None if config.cmvn_scale is None else config.cmvn_scale.to(self.device, torch.float32)
        self._length = _window_samples(1 << 62, config.sample_rate, config.frame_length_ms)
        self._shift_samples = int(config.sample_rate * config.frame_shift_ms * 0.001)
        if self._shift_samples < 1:
            raise ModelLoadError(f"frame_shift {config.frame_shift_ms} ms is shorter than one sample")

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    def output_lengths(self, n_samples: Sequence[int]) -> list[int]:
        """Feature rows (after LFR) that ``__call__`` gives each waveform length: its lengths, on the host."""
        return [
            (count + self.config.lfr_n - 1) // self.config.lfr_n for count in self.frame_counts(n_samples)
        ]

    def frame_counts(self, n_samples: Sequence[int]) -> list[int]:
        """Fbank frames each waveform length gives (before LFR); 0 where no frame fits."""
        cfg = self.config
        counts = []
        for n in n_samples:
            length = _window_samples(n, cfg.sample_rate, cfg.frame_length_ms)
            counts.append(0 if length < 2 or n < length else 1 + (n - length) // self._shift_samples)
        return counts

    def __call__(self, waves: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (B, T_lfr_max, n_mels*lfr_m) float32, zero-padded, and their lengths (B,) int64.

        ``waves`` are mono float waveforms in [-1, 1] at the model's sample rate, on any device.
        """
        flat = [w.reshape(-1).to(self.device, torch.float32) for w in waves]
        sizes = [w.shape[0] for w in flat]
        if not flat:
            return self.joined(torch.zeros(0, device=self.device), sizes)
        return self.joined(torch.cat(flat) if len(flat) > 1 else flat[0], sizes)

    def joined(self, flat: torch.Tensor, sizes: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``__call__`` of waveforms laid end to end in one float32 tensor (``sizes`` samples each).

        The engine uploads a batch as one buffer: featurising it as it lies saves splitting it into
        per-item views and joining them again, a copy of the whole batch and Python per item.
        """
        cfg = self.config
        flat = flat.reshape(-1).to(self.device, torch.float32)  # no copy when it already is
        counts = self.frame_counts(sizes)
        frames = self._all_frames(flat, sizes, counts)
        feats, lengths = _stack_lfr(frames, counts, cfg.lfr_m, cfg.lfr_n)
        if self._shift is not None and self._scale is not None:
            feats = apply_cmvn(feats, self._shift, self._scale)
        if feats.numel():
            valid = torch.arange(feats.shape[1], device=self.device)[None, :] < lengths[:, None]
            feats = feats * valid.unsqueeze(-1).to(feats.dtype)
        return feats, lengths

    def _all_frames(self, flat: torch.Tensor, sizes: Sequence[int], counts: Sequence[int]) -> torch.Tensor:
        """Log-mel frames of every item, concatenated in item order: (sum counts, n_mels)."""
        cfg = self.config
        short = {i for i, n in enumerate(sizes) if counts[i] > 0 and n < self._length}
        regular = self._regular_frames(flat, sizes, [0 if i in short else c for i, c in enumerate(counts)])
        if not short:  # the usual case: every item with frames has full-length ones, already in order
            return regular
        starts = np.cumsum(sizes) - np.asarray(sizes)
        parts: list[torch.Tensor] = []
        done = 0
        for i, count in enumerate(counts):
            if count == 0:
                continue
            if i in short:  # shorter than one frame: one frame of its own length
                item = flat[int(starts[i]) : int(starts[i]) + sizes[i]]
                parts.append(
                    fbank(
                        item,
                        sample_rate=cfg.sample_rate,
                        n_mels=cfg.n_mels,
                        frame_length_ms=cfg.frame_length_ms,
                        frame_shift_ms=cfg.frame_shift_ms,
                    )
                )
            else:
                parts.append(regular[done : done + count])
                done += count
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def _regular_frames(
        self, flat: torch.Tensor, sizes: Sequence[int], counts: Sequence[int]
    ) -> torch.Tensor:
        """Fbank of the full-length frames of items laid end to end in ``flat`` (``counts`` frames each)."""
        cfg = self.config
        total = int(sum(counts))
        if total == 0:
            return torch.zeros((0, cfg.n_mels), device=self.device)
        # Each frame's first sample in ``flat``, on the host (the tensor form synced twice per batch in
        # repeat_interleave on CUDA), for all chunks at once, uploaded once without waiting (``upload``).
        sizes_np = np.asarray(sizes, dtype=np.int64)
        counts_np = np.asarray(counts, dtype=np.int64)
        item_starts = np.cumsum(sizes_np) - sizes_np
        frame_offsets = np.cumsum(counts_np) - counts_np
        within = np.arange(total, dtype=np.int64) - np.repeat(frame_offsets, counts_np)
        starts_np = np.repeat(item_starts, counts_np) + within * self._shift_samples
        # Chunk rows padded with frames at sample 0 to a size cuFFT has a plan for (``_padded_rows``).
        chunks = [(lo, min(FRAME_CHUNK, total - lo)) for lo in range(0, total, FRAME_CHUNK)]
        rows = [_padded_rows(count) for _, count in chunks]
        padded = np.zeros(sum(rows), dtype=np.int64)
        at = 0
        for (lo, count), size in zip(chunks, rows, strict=True):
            padded[at : at + count] = starts_np[lo : lo + count]
            at += size
        starts = upload(padded, self.device)
        taps = torch.arange(self._length, device=self.device)
        out = []
        at = 0
        for (_, count), size in zip(chunks, rows, strict=True):
            frames = flat[starts[at : at + size, None] + taps[None, :]]
            frames.mul_(INT16_SCALE)  # a power of two: exact, as scaling the waveform first
            out.append(_fbank_frames(frames, cfg.n_mels, cfg.sample_rate, owned=True)[:count])
            at += size
        return torch.cat(out) if len(out) > 1 else out[0]


def load_cmvn(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(shift, scale) float32 vectors from a Kaldi nnet1 ``am.mvn``.

    The line after ``<AddShift>`` / ``<Rescale>`` must read ``<LearnRateCoef> r [ v1 ... vD ]``; its
    values are the vector. Raises ModelLoadError when the file or either vector is missing or malformed.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"cannot read CMVN file {path}: {exc}") from exc
    vectors: dict[str, list[float]] = {}
    for i, line in enumerate(lines):
        fields = line.split()
        if not fields or fields[0] not in ("<AddShift>", "<Rescale>"):
            continue
        nxt = lines[i + 1].split() if i + 1 < len(lines) else []
        if len(nxt) < 4 or nxt[0] != "<LearnRateCoef>" or nxt[2] != "[" or nxt[-1] != "]":
            raise ModelLoadError(f"{path}: line {i + 2} after {fields[0]} is not '<LearnRateCoef> r [ ... ]'")
        try:
            vectors[fields[0]] = [float(v) for v in nxt[3:-1]]
        except ValueError as exc:
            raise ModelLoadError(f"{path}: non-numeric value after {fields[0]}: {exc}") from exc
    for name in ("<AddShift>", "<Rescale>"):
        if not vectors.get(name):
            raise ModelLoadError(f"{path}: no {name} vector")
    shift, scale = vectors["<AddShift>"], vectors["<Rescale>"]
    if len(shift) != len(scale):
        raise ModelLoadError(f"{path}: <AddShift> has {len(shift)} values, <Rescale> {len(scale)}")
    return torch.tensor(shift, dtype=torch.float32), torch.tensor(scale, dtype=torch.float32)


# WavFrontend's constructor defaults (FunASR 1.4.16).
_DEFAULTS: dict[str, Any] = {
    "fs": 16000,
    "window": "hamming",
    "n_mels": 80,
    "frame_length": 25,
    "frame_shift": 10,
    "lfr_m": 1,
    "lfr_n": 1,
    "dither": 1.0,
    "snip_edges": True,
    "upsacle_samples": True,
}
_IGNORED = {"cmvn_file", "filter_length_min", "filter_length_max"}


def _positive(conf: Mapping[str, Any], key: str, kind: type) -> Any:
    value = conf.get(key, _DEFAULTS[key])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ModelLoadError(f"frontend_conf.{key}: expected a positive number, got {value!r}")
    if kind is int and value != int(value):
        raise ModelLoadError(f"frontend_conf.{key}: expected an integer, got {value!r}")
    return kind(value)


def frontend_config_from_funasr(
    frontend_conf: Mapping[str, Any] | None, cmvn_path: Path | None
) -> FrontendConfig:
    """Validate a config.yaml ``frontend_conf`` (+ optional am.mvn) into a FrontendConfig.

    Only what WavFrontend computes at 16 kHz with a Hamming window is supported; anything else raises
    ModelLoadError naming the key. A positive dither is logged and replaced by 0 (deterministic output).
    """
    conf = dict(frontend_conf or {})
    for key in conf:
        if key not in _DEFAULTS and key not in _IGNORED:
            logger.warning("frontend_conf.%s is not used by this frontend; ignored", key)
    if conf.get("window", "hamming") != "hamming":
        raise ModelLoadError(f"frontend_conf.window: only 'hamming' is supported, got {conf['window']!r}")
    fs = _positive(conf, "fs", int)
    if fs != 16000:
        raise ModelLoadError(f"frontend_conf.fs: only 16000 is supported, got {fs}")
    for flag in ("snip_edges", "upsacle_samples"):
        if conf.get(flag, True) is not True:
            raise ModelLoadError(f"frontend_conf.{flag}: only true is supported, got {conf[flag]!r}")
    dither = conf.get("dither", _DEFAULTS["dither"])
    if isinstance(dither, bool) or not isinstance(dither, (int, float)) or dither < 0:
        raise ModelLoadError(f"frontend_conf.dither: expected a number >= 0, got {dither!r}")
    if dither > 0:
        logger.warning("frontend_conf.dither is %s; using 0 so that results are deterministic", dither)
    n_mels = _positive(conf, "n_mels", int)
    lfr_m = _positive(conf, "lfr_m", int)
    shift = scale = None
    if cmvn_path is not None:
        shift, scale = load_cmvn(cmvn_path)
        dim = n_mels * lfr_m
        if shift.numel() < dim:
            raise ModelLoadError(f"{cmvn_path}: CMVN has {shift.numel()} values, the features have {dim}")
        shift, scale = shift[:dim].clone(), scale[:dim].clone()
    return FrontendConfig(
        sample_rate=fs,
        n_mels=n_mels,
        frame_length_ms=_positive(conf, "frame_length", float),
        frame_shift_ms=_positive(conf, "frame_shift", float),
        lfr_m=lfr_m,
        lfr_n=_positive(conf, "lfr_n", int),
        dither=0.0,
        cmvn_shift=shift,
        cmvn_scale=scale,
    )
