"""CT-Transformer punctuation network (FunASR ``CTTransformer``) with FunASR's state-dict keys.

Word ids -> ``embed`` (V x d) -> SAN-M encoder (√d scaling, positions from 1, input width == d)
-> ``decoder`` Linear(d -> number of marks). Text handling (word splitting, mini-sentences, assembly)
lives in ``asr_engine.text.punctuation``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from asr_engine.errors import ModelLoadError
from asr_engine.models.sanm import SanmEncoder, parse_sanm_encoder_dims

if TYPE_CHECKING:
    from asr_engine.models.loader import ModelDir
    from asr_engine.text.punctuation import Punctuator

__all__ = ["CtPuncDims", "CtTransformer", "from_model_dir", "parse_ct_punc_dims"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class CtPuncDims:
    """Sizes and labels from config.yaml (``model_conf`` + ``encoder_conf``) and the vocabulary size."""

    vocab_size: int
    embed_unit: int
    att_unit: int
    punc_list: tuple[str, ...]
    sentence_end_id: int


def parse_ct_punc_dims(config: dict[str, Any], *, vocab_size: int) -> CtPuncDims:
    conf = config.get("model_conf") or {}
    punc_list = tuple(str(p) for p in conf.get("punc_list") or ())
    if len(punc_list) < 2 or "_" not in punc_list:
        raise ModelLoadError(f"model_conf.punc_list must list the marks including '_', got {list(punc_list)}")
    dims = CtPuncDims(
        vocab_size=vocab_size,
        embed_unit=int(conf.get("embed_unit", 128)),
        att_unit=int(conf.get("att_unit", 256)),
        punc_list=punc_list,
        sentence_end_id=int(conf.get("sentence_end_id", 3)),
    )
    if not 0 <= dims.sentence_end_id < len(punc_list):
        raise ModelLoadError(f"model_conf.sentence_end_id {dims.sentence_end_id} is not a punc_list index")
    return dims


class CtTransformer(nn.Module):
    """``embed`` + ``encoder`` (SAN-M) + ``decoder``: (B, T) word ids -> (B, T, marks) logits."""

    def __init__(self, dims: CtPuncDims, encoder_conf: dict[str, Any]) -> None:
        super().__init__()
        self.dims = dims
        enc_dims = parse_sanm_encoder_dims(encoder_conf, input_size=dims.embed_unit)
        if enc_dims.output_size != dims.att_unit:
            raise ModelLoadError(
                f"encoder output_size {enc_dims.output_size} != model_conf.att_unit {dims.att_unit}"
            )
        self.embed = nn.Embedding(dims.vocab_size, dims.embed_unit)
        self.encoder = SanmEncoder(enc_dims)
        self.decoder = nn.Linear(dims.att_unit, len(dims.punc_list))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``ids`` (B, T) int64 padded anyhow, ``lengths`` (B,) -> logits (B, T, marks)."""
        hidden, _ = self.encoder(self.embed(ids), lengths)
        return self.decoder(hidden)


def from_model_dir(model_dir: ModelDir, *, device: torch.device, dtype: torch.dtype) -> Punctuator:
    """Loader dispatch entry point: the ready-to-use punctuator of a FunASR CT-punc directory."""
    from asr_engine.text.punctuation import Punctuator

    return Punctuator.from_model_dir(model_dir, device=device, dtype=dtype)
