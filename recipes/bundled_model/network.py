"""The training-time SenseVoiceSmall: the engine's SAN-M encoder, a CTC head and the 16-row prompt table.

Parameter names equal FunASR's SenseVoiceSmall state dict (``encoder.*``, ``ctc.ctc_lo.*``,
``embed.weight``), so the exported weights load into ``asr_engine.models.sensevoice`` unchanged. Dropout
is added with forward hooks on the residual branches, so it leaves the state dict alone.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from asr_engine.models.sanm import SanmEncoder, SanmEncoderDims

LANG_ROWS = {"auto": 0, "zh": 3, "en": 4, "yue": 7, "ja": 11, "ko": 12, "nospeech": 13}
EVENT_ROW, EMOTION_ROW = 1, 2
WITHITN_ROW, WOITN_ROW = 14, 15


class CtcHead(nn.Module):
    def __init__(self, d: int, vocab: int) -> None:
        super().__init__()
        self.ctc_lo = nn.Linear(d, vocab)


class SenseVoiceTrainNet(nn.Module):
    def __init__(self, dims: SanmEncoderDims, vocab: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = SanmEncoder(dims)
        self.ctc = CtcHead(dims.output_size, vocab)
        self.embed = nn.Embedding(16, dims.input_size)
        self.dropout = dropout
        layers = (
            list(self.encoder.encoders0)
            + list(self.encoder.encoders)
            + list(getattr(self.encoder, "tp_encoders", []))
        )
        for layer in layers:
            layer.self_attn.register_forward_hook(self._drop)
            layer.feed_forward.register_forward_hook(self._drop)

    def _drop(self, module: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
        return F.dropout(out, self.dropout, self.training)

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor, lang_rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC log-probs (B, T+4, V) over the prompt and feature frames, and their lengths."""
        b = feats.shape[0]
        rows = torch.stack(
            [
                lang_rows,
                torch.full_like(lang_rows, EVENT_ROW),
                torch.full_like(lang_rows, EMOTION_ROW),
                torch.full_like(lang_rows, WOITN_ROW),
            ],
            dim=1,
        )
        prompt = self.embed(rows).to(feats.dtype)
        x = torch.cat([prompt, feats], dim=1)
        out, out_lens = self.encoder(x, lengths + 4)
        logits = self.ctc.ctc_lo(out)
        assert logits.shape[0] == b
        return logits.float().log_softmax(-1), out_lens

    def export_state(self) -> dict[str, torch.Tensor]:
        """Weights for the model directory: untrained prompt rows copy trained ones.

        ``withitn`` (row 14) copies ``woitn`` (15): the model always writes spoken form and the engine's
        ITN runs afterwards. Unused language rows (yue, ja, ko, nospeech) copy ``auto`` (0).
        """
        state = {k: v.detach().float().cpu().clone() for k, v in self.state_dict().items()}
        emb = state["embed.weight"]
        emb[WITHITN_ROW] = emb[WOITN_ROW]
        for r in (5, 6, 7, 8, 9, 10, 11, 12, 13):
            emb[r] = emb[0]
        return state
