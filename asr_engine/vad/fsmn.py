"""FSMN-VAD from a FunASR directory: incremental features and scores, FunASR-exact segments, streams.

``FsmnScorer`` turns samples into the silence probability of every released 10 ms frame, exactly as
FunASR's online frontend releases them (fbank, LFR 5/1 with two frames held back until the next chunk or
the end, CMVN) and scores them with the FSMN network whose causal memory is carried over. A 2-hour file
is therefore processed in bounded memory, in blocks, with the same result as one pass.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import torch

from asr_engine.errors import ModelLoadError
from asr_engine.features import apply_cmvn, fbank, frontend_config_from_funasr
from asr_engine.models.base import FrontendConfig
from asr_engine.models.fsmn_vad import FsmnVadNet, parse_fsmn_dims
from asr_engine.vad.base import DEFAULT_MAX_SEGMENT_MS, VadEvent, as_mono
from asr_engine.vad.fsmn_options import FsmnRunSettings, FsmnVadOptions, parse_fsmn_vad_options
from asr_engine.vad.fsmn_session import (
    FRAME_SHIFT,
    LFR_HELD_BACK,
    FsmnSession,
    decided_frames,
    fbank_frames,
    offline_segments,
)

if TYPE_CHECKING:
    from asr_engine.models.loader import ModelDir

__all__ = ["FsmnScorer", "FsmnVad", "FsmnVadStream"]

log = logging.getLogger(__name__)

_OFFLINE_BLOCK_SAMPLES = 16000 * 600  # features of 10 minutes at a time (~100 MB of LFR frames)


class FsmnScorer:
    """Silence probabilities of one recording or stream, released the way FunASR's frontend does."""

    def __init__(self, vad: FsmnVad) -> None:
        self._vad = vad
        self._wave = np.zeros(0, dtype=np.float32)  # samples from fbank frame ``_fbank_done`` on
        self._fbank_done = 0
        self._rows = torch.zeros(0, vad.frontend.n_mels)  # fbank rows from index ``_rows_from`` on
        self._rows_from = 0
        self._samples = 0
        self._released = 0
        self._state: list[torch.Tensor] | None = None

    @property
    def released(self) -> int:
        return self._released

    @torch.inference_mode()
    def push(self, samples: np.ndarray, *, final: bool) -> np.ndarray:
        """Add samples; return the silence probability of each frame released by them (float32)."""
        vad = self._vad
        cfg = vad.frontend
        self._samples += samples.size
        self._wave = np.concatenate([self._wave, samples]) if self._wave.size else samples
        new = fbank_frames(self._wave.size)
        if new:
            used = (new - 1) * FRAME_SHIFT + 400
            wave = torch.from_numpy(np.ascontiguousarray(self._wave[:used])).to(vad.device)
            rows = fbank(wave, sample_rate=cfg.sample_rate, n_mels=cfg.n_mels).to(torch.float32)
            self._rows = torch.cat([self._rows.to(rows.device), rows])
            self._fbank_done += new
            self._wave = self._wave[new * FRAME_SHIFT :]
        upto = decided_frames(self._samples, final=final)
        if upto <= self._released:
            return np.zeros(0, dtype=np.float32)
        first = self._released
        # LFR row i stacks fbank rows i-2..i+2, clamped to the recording (FunASR's edge copies).
        index = torch.arange(first, upto).view(-1, 1) + torch.arange(-LFR_HELD_BACK, LFR_HELD_BACK + 1)
        index = index.clamp(0, self._fbank_done - 1) - self._rows_from
        feats = self._rows[index.to(self._rows.device)].reshape(1, upto - first, -1)
        if cfg.cmvn_shift is not None and cfg.cmvn_scale is not None:
            feats = apply_cmvn(feats, cfg.cmvn_shift, cfg.cmvn_scale)
        probs, self._state = vad.net(feats.to(vad.dtype), self._state)
        sil = probs[0, :, list(vad.options.sil_pdf_ids)].sum(dim=-1, dtype=torch.float64)
        self._released = upto
        keep_from = max(0, upto - LFR_HELD_BACK)
        self._rows = self._rows[keep_from - self._rows_from :]
        self._rows_from = keep_from
        return sil.cpu().numpy().astype(np.float32)


class FsmnVad:
    """FunASR's FSMN-VAD: shared by all requests; each call or stream keeps its own state.

    ``settings`` are the load-time choices (FunASR's call-time ``max_end_silence_time`` etc.); the
    default reproduces a plain FunASR ``generate(file)`` (dynamic end-silence schedule).
    """

    kind = "fsmn"

    def __init__(
        self,
        net: FsmnVadNet,
        options: FsmnVadOptions,
        frontend: FrontendConfig,
        *,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        settings: FsmnRunSettings | None = None,
    ) -> None:
        if frontend.lfr_m != 1 + 2 * LFR_HELD_BACK or frontend.lfr_n != 1 or frontend.frame_shift_ms != 10:
            raise ModelLoadError("FSMN-VAD: the frontend must be LFR m=5 n=1 with 10 ms frames")
        if options.decibel_thres > -60.0 or options.snr_thres > -86.0:
            raise ModelLoadError("FSMN-VAD: decibel_thres/snr_thres gating is not supported (FunASR: -100)")
        self.net = net
        self.options = options
        self.frontend = frontend
        self.device = device
        self.dtype = dtype
        self.settings = settings or FsmnRunSettings()
        self.settings.validate()

    @classmethod
    def from_model_dir(
        cls,
        model_dir: ModelDir,
        *,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        settings: FsmnRunSettings | None = None,
        max_single_segment_ms: int | None = None,
    ) -> FsmnVad:
        """Load ``model_dir``; ``max_single_segment_ms`` plays FunASR's constructor-time vad_kwargs."""
        from asr_engine.models.loader import assign_weights, load_checkpoint

        config = model_dir.config
        net = FsmnVadNet(parse_fsmn_dims(config.get("encoder_conf") or {}))
        assign_weights(net, load_checkpoint(model_dir.require("checkpoint")))
        options = parse_fsmn_vad_options(
            config.get("model_conf") or {}, max_single_segment_time=max_single_segment_ms
        )
        frontend = frontend_config_from_funasr(config.get("frontend_conf"), model_dir.cmvn_file)
        net = net.to(device=device, dtype=dtype).eval().requires_grad_(False)
        log.info("FSMN-VAD loaded from %s on %s", model_dir.path, device)
        return cls(net, options, frontend, device=device, dtype=dtype, settings=settings)

    # ------------------------------------------------------------------ whole recordings
    def frame_probs(self, samples: np.ndarray | torch.Tensor) -> np.ndarray:
        """Silence probability of every 10 ms frame of a whole recording (FunASR's frame scores)."""
        audio = as_mono(samples)
        scorer = FsmnScorer(self)
        parts = []
        for start in range(0, max(audio.size, 1), _OFFLINE_BLOCK_SAMPLES):
            block = audio[start : start + _OFFLINE_BLOCK_SAMPLES]
            parts.append(scorer.push(block, final=start + _OFFLINE_BLOCK_SAMPLES >= audio.size))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def funasr_segments(
        self, samples: np.ndarray | torch.Tensor, settings: FsmnRunSettings | None = None
    ) -> list[tuple[int, int]]:
        """Exactly FunASR's ``generate(input=samples)`` ``value``: ``[(start_ms, end_ms), ...]``."""
        audio = as_mono(samples)
        probs = self.frame_probs(audio)
        return offline_segments(probs, audio.size, self.options, settings or self.settings)

    def segments(
        self, samples: np.ndarray | torch.Tensor, *, max_segment_ms: int = DEFAULT_MAX_SEGMENT_MS
    ) -> list[tuple[int, int]]:
        """FunASR's segments with ``max_single_segment_time = max_segment_ms``.

        FunASR's cut rule lets a forced cut overrun the limit by one frame (10 ms); we keep its rule.
        """
        settings = FsmnRunSettings(
            max_end_silence_ms=self.settings.max_end_silence_ms,
            speech_noise_thres=self.settings.speech_noise_thres,
            dynamic_silence=self.settings.dynamic_silence,
            silence_schedule=self.settings.silence_schedule,
            max_single_segment_ms=max_segment_ms,
        )
        return self.funasr_segments(samples, settings)

    def stream(
        self,
        *,
        chunk_ms: int = 600,
        settings: FsmnRunSettings | None = None,
        max_segment_ms: int | None = None,
    ) -> FsmnVadStream:
        return FsmnVadStream(self, chunk_ms=chunk_ms, settings=settings, max_segment_ms=max_segment_ms)


class FsmnVadStream:
    """FunASR's streaming VAD (``generate(chunk, cache, is_final, chunk_size=chunk_ms)``) as an object.

    ``feed`` takes any number of samples; every complete ``chunk_ms`` piece is processed as FunASR
    processes one, leftovers wait for the next call. Events are FunASR's ``[start, -1]`` /
    ``[-1, end]`` / ``[start, end]``.
    """

    def __init__(
        self,
        vad: FsmnVad,
        *,
        chunk_ms: int = 600,
        settings: FsmnRunSettings | None = None,
        max_segment_ms: int | None = None,
    ) -> None:
        if chunk_ms <= 0 or chunk_ms >= 15000:
            raise ValueError(f"chunk_ms must be in (0, 15000) for streaming output, got {chunk_ms}")
        base = settings or vad.settings
        if max_segment_ms is not None:
            base = FsmnRunSettings(
                max_end_silence_ms=base.max_end_silence_ms,
                speech_noise_thres=base.speech_noise_thres,
                dynamic_silence=base.dynamic_silence,
                silence_schedule=base.silence_schedule,
                max_single_segment_ms=max_segment_ms,
            )
        self._chunk_ms = chunk_ms
        self._stride = chunk_ms * vad.options.sample_rate // 1000
        self._scorer = FsmnScorer(vad)
        self._session = FsmnSession(vad.options, base, streaming=True)
        self._pending = np.zeros(0, dtype=np.float32)
        self._finished = False

    def _piece(self, piece: np.ndarray, *, final: bool) -> list[VadEvent]:
        self._session.begin_piece(self._chunk_ms)
        probs = self._scorer.push(piece, final=final)
        return [VadEvent(s, e) for s, e in self._session.run_piece(probs, final=final)]

    def feed(self, samples: np.ndarray) -> list[VadEvent]:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        data = np.concatenate([self._pending, as_mono(samples)])
        events: list[VadEvent] = []
        pieces = data.size // self._stride
        for k in range(pieces):
            events += self._piece(data[k * self._stride : (k + 1) * self._stride], final=False)
        self._pending = data[pieces * self._stride :].copy()
        return events

    def finish(self, samples: np.ndarray | None = None) -> list[VadEvent]:
        """The final call (optionally with its last samples): closes an open segment at the end."""
        if self._finished:
            return []
        data = self._pending if samples is None else np.concatenate([self._pending, as_mono(samples)])
        self._finished = True
        events: list[VadEvent] = []
        pieces = data.size // self._stride + 1
        for k in range(pieces):
            piece = data[k * self._stride : (k + 1) * self._stride]
            events += self._piece(piece, final=k == pieces - 1)
        return events
