"""FSMN-VAD scorer: FunASR's ``FsmnVADStreaming`` network with FunASR's state-dict key names.

The network maps 400-dim LFR(5,1)+CMVN frames (one per 10 ms) to a softmax over 248 classes; class 0 is
silence. Its FSMN memory blocks look only backwards, so a long recording can be scored in chunks with
each block's last ``(lorder - 1) * lstride`` projected frames carried over: the result equals one pass
over the whole file. The end-point logic lives in ``asr_engine.vad.fsmn_endpoint``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from asr_engine.errors import ModelLoadError

if TYPE_CHECKING:
    from asr_engine.models.loader import ModelDir
    from asr_engine.vad.fsmn import FsmnVad

__all__ = ["FsmnBlock", "FsmnDims", "FsmnEncoder", "FsmnVadNet", "from_model_dir", "parse_fsmn_dims"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class FsmnDims:
    """Sizes from ``encoder_conf`` (released model: 400/140/250/128, 4 layers, lorder 20, 140/248)."""

    input_dim: int = 400
    input_affine_dim: int = 140
    fsmn_layers: int = 4
    linear_dim: int = 250
    proj_dim: int = 128
    lorder: int = 20
    lstride: int = 1
    output_affine_dim: int = 140
    output_dim: int = 248

    @property
    def memory_frames(self) -> int:
        """Past projected frames one FSMN block needs: the carried state of chunked scoring."""
        return (self.lorder - 1) * self.lstride


def parse_fsmn_dims(encoder_conf: dict[str, Any]) -> FsmnDims:
    """Read the FSMN sizes; look-ahead taps (``rorder`` > 0) are rejected, the scorer must stay causal."""
    rorder = int(encoder_conf.get("rorder", 0))
    if rorder != 0:
        raise ModelLoadError(f"FSMN encoder_conf.rorder={rorder}: only causal FSMN-VAD models are supported")
    try:
        return FsmnDims(
            input_dim=int(encoder_conf["input_dim"]),
            input_affine_dim=int(encoder_conf["input_affine_dim"]),
            fsmn_layers=int(encoder_conf["fsmn_layers"]),
            linear_dim=int(encoder_conf["linear_dim"]),
            proj_dim=int(encoder_conf["proj_dim"]),
            lorder=int(encoder_conf["lorder"]),
            lstride=int(encoder_conf.get("lstride", 1)),
            output_affine_dim=int(encoder_conf["output_affine_dim"]),
            output_dim=int(encoder_conf["output_dim"]),
        )
    except KeyError as exc:
        raise ModelLoadError(f"FSMN encoder_conf lacks {exc.args[0]!r}") from exc


class _Affine(nn.Module):
    """A Linear wrapped so that its keys read ``<name>.linear.weight`` as in FunASR."""

    def __init__(self, in_dim: int, out_dim: int, *, bias: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class _CausalMemory(nn.Module):
    """Depthwise causal convolution over time; ``conv_left.weight`` is (P, 1, lorder, 1) as in FunASR."""

    def __init__(self, dim: int, lorder: int, lstride: int) -> None:
        super().__init__()
        self.lorder = lorder
        self.lstride = lstride
        self.conv_left = nn.Conv2d(dim, dim, (lorder, 1), dilation=(lstride, 1), groups=dim, bias=False)

    def forward(self, p: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        """``p`` (B, T, P), ``past`` (B, M, P) = the (lorder-1)*lstride frames before ``p`` -> (B, T, P)."""
        x = torch.cat([past, p], dim=1).transpose(1, 2)  # (B, P, M + T)
        weight = self.conv_left.weight.squeeze(-1)  # (P, 1, lorder)
        memory = F.conv1d(x, weight, dilation=self.lstride, groups=weight.shape[0])  # (B, P, T)
        return p + memory.transpose(1, 2)


class FsmnBlock(nn.Module):
    """Projection (no bias), causal memory, affine back to the linear width, ReLU."""

    def __init__(self, dims: FsmnDims) -> None:
        super().__init__()
        self.linear = _Affine(dims.linear_dim, dims.proj_dim, bias=False)
        self.fsmn_block = _CausalMemory(dims.proj_dim, dims.lorder, dims.lstride)
        self.affine = _Affine(dims.proj_dim, dims.linear_dim)

    def forward(self, x: torch.Tensor, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, T, L) -> (B, T, L) and the projected frames to carry into the next chunk."""
        p = self.linear(x)
        carried = torch.cat([past, p], dim=1)[:, -past.shape[1] :] if past.shape[1] else past
        return torch.relu(self.affine(self.fsmn_block(p, past))), carried


class FsmnEncoder(nn.Module):
    """``encoder.*`` of FunASR's FSMN-VAD: in_linear1/2, FSMN blocks, out_linear1/2, softmax."""

    def __init__(self, dims: FsmnDims) -> None:
        super().__init__()
        self.dims = dims
        self.in_linear1 = _Affine(dims.input_dim, dims.input_affine_dim)
        self.in_linear2 = _Affine(dims.input_affine_dim, dims.linear_dim)
        self.fsmn = nn.ModuleList(FsmnBlock(dims) for _ in range(dims.fsmn_layers))
        self.out_linear1 = _Affine(dims.linear_dim, dims.output_affine_dim)
        self.out_linear2 = _Affine(dims.output_affine_dim, dims.output_dim)

    def initial_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
        """Zero memory for every block: what FunASR pads with at the start of a recording."""
        shape = (batch, self.dims.memory_frames, self.dims.proj_dim)
        return [torch.zeros(shape, device=device, dtype=dtype) for _ in self.fsmn]

    def forward(
        self, feats: torch.Tensor, state: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``feats`` (B, T, 400) -> class probabilities (B, T, 248) and the state for the next chunk."""
        if state is None:
            state = self.initial_state(feats.shape[0], device=feats.device, dtype=feats.dtype)
        x = torch.relu(self.in_linear2(self.in_linear1(feats)))
        new_state = []
        for block, past in zip(self.fsmn, state, strict=True):
            x, carried = block(x, past)
            new_state.append(carried)
        logits = self.out_linear2(self.out_linear1(x))
        return torch.softmax(logits, dim=-1), new_state


class FsmnVadNet(nn.Module):
    """Top module so that keys start with ``encoder.`` exactly as in FunASR's model.pt."""

    def __init__(self, dims: FsmnDims) -> None:
        super().__init__()
        self.encoder = FsmnEncoder(dims)

    def forward(
        self, feats: torch.Tensor, state: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.encoder(feats, state)


def from_model_dir(model_dir: ModelDir, *, device: torch.device, dtype: torch.dtype) -> FsmnVad:
    """Build the FSMN voice activity detector of a FunASR directory (loader dispatch entry point)."""
    from asr_engine.vad.fsmn import FsmnVad

    return FsmnVad.from_model_dir(model_dir, device=device, dtype=dtype)
