"""Paraformer (non-autoregressive ASR): SAN-M encoder, CIF predictor V2, SAN-M decoder.

Module and parameter names follow FunASR's ``Paraformer`` / ``CifPredictorV2`` / ``ParaformerSANMDecoder``
so FunASR checkpoints load unchanged. Decoding (CIF firing, timestamps, text) lives in
``asr_engine.decoding``; ``ParaformerModel`` ties them together behind the ``AsrModel`` protocol.

Batching is exact: every item decodes as it would alone (padded encoder frames are zeroed before the
predictor and the CIF tail integrates a zero vector, unlike FunASR's own batched path).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from asr_engine.decoding.char_text import CharTable
from asr_engine.decoding.cif import add_tail, cif_fire, cif_fire_padded
from asr_engine.decoding.timestamps import token_spans_ms
from asr_engine.errors import ModelLoadError
from asr_engine.models.base import DecodeRequest, FrontendConfig, Hypothesis
from asr_engine.models.loader import ModelDir, assign_weights, load_checkpoint
from asr_engine.models.sanm import (
    SanmEncoder,
    SanmEncoderDims,
    add_layer_norm,
    frame_mask,
    fsmn_memory,
    key_padding_bias,
    linear_relu,
    padding_mask,
    parse_sanm_encoder_dims,
)
from asr_engine.tokens import Vocabulary, load_vocabulary

__all__ = [
    "CifPredictorV2",
    "CrossAttention",
    "DecoderDims",
    "ParaformerDecoder",
    "ParaformerDims",
    "ParaformerModel",
    "ParaformerNet",
    "PredictorDims",
    "build_random",
    "from_model_dir",
    "paraformer_large_config",
    "parse_decoder_dims",
    "parse_paraformer_dims",
    "token_bucket",
]

log = logging.getLogger(__name__)

FEATURE_DIM = 560  # n_mels 80 x lfr_m 7
BLANK_SOS_EOS = (0, 1, 2)
BLANK_SOS_EOS_SET = frozenset(BLANK_SOS_EOS)
LN_EPS = 1e-12
TOKEN_BUCKET = 8


def token_bucket(count: int) -> int:
    """The decoder's token axis for a batch whose longest item has ``count`` tokens.

    Rounded up to a multiple of 8: repeated shapes reuse the GPU's kernel plans (and CUDA graphs), and the
    decoder masks positions past each item's token count, so the valid positions do not change.
    """
    return max(1, -(-count // TOKEN_BUCKET) * TOKEN_BUCKET)


@dataclass(frozen=True, kw_only=True)
class DecoderDims:
    """ParaformerSANMDecoder sizes; ``vocab_size`` 0 = no embedding / output layer (SeACo's bias decoder)."""

    d_model: int
    memory_size: int
    attention_heads: int = 4
    linear_units: int = 2048
    att_layer_num: int = 6
    num_blocks: int = 6
    kernel_size: int = 21
    sanm_shift: int = 0
    vocab_size: int = 0


@dataclass(frozen=True, kw_only=True)
class PredictorDims:
    """CIF predictor sizes and constants (``predictor_conf``)."""

    d_model: int
    l_order: int = 1
    r_order: int = 1
    threshold: float = 1.0
    tail_threshold: float = 0.45
    smooth_factor: float = 1.0
    noise_threshold: float = 0.0


@dataclass(frozen=True, kw_only=True)
class ParaformerDims:
    encoder: SanmEncoderDims
    decoder: DecoderDims
    predictor: PredictorDims
    vocab_size: int


def parse_decoder_dims(decoder_conf: Mapping[str, Any], *, d_model: int, vocab_size: int) -> DecoderDims:
    """Read ``decoder_conf`` (FunASR defaults: att_layer_num 6, num_blocks 6, kernel 21)."""
    conf = dict(decoder_conf)
    with_io = not conf.get("wo_input_layer", False) and conf.get("use_output_layer", True)
    dims = DecoderDims(
        d_model=d_model,
        memory_size=d_model,
        attention_heads=int(conf.get("attention_heads", 4)),
        linear_units=int(conf.get("linear_units", 2048)),
        att_layer_num=int(conf.get("att_layer_num", 6)),
        num_blocks=int(conf.get("num_blocks", 6)),
        kernel_size=int(conf.get("kernel_size", 21)),
        sanm_shift=int(conf.get("sanm_shfit", conf.get("sanm_shift", 0)) or 0),
        vocab_size=vocab_size if with_io else 0,
    )
    if d_model % dims.attention_heads:
        raise ModelLoadError(f"decoder width {d_model} is not divisible by {dims.attention_heads} heads")
    return dims


def parse_paraformer_dims(config: Mapping[str, Any], *, vocab_size: int) -> ParaformerDims:
    """Sizes of a Paraformer-style config.yaml (encoder, decoder and predictor sections)."""
    encoder = parse_sanm_encoder_dims(config.get("encoder_conf") or {}, input_size=FEATURE_DIM)
    d = encoder.output_size
    pconf = dict(config.get("predictor_conf") or {})
    if int(pconf.get("idim", d)) != d:
        raise ModelLoadError(f"predictor_conf.idim {pconf['idim']} differs from the encoder width {d}")
    predictor = PredictorDims(
        d_model=d,
        l_order=int(pconf.get("l_order", 1)),
        r_order=int(pconf.get("r_order", 1)),
        threshold=float(pconf.get("threshold", 1.0)),
        tail_threshold=float(pconf.get("tail_threshold", 0.45)),
        smooth_factor=float(pconf.get("smooth_factor", 1.0)),
        noise_threshold=float(pconf.get("noise_threshold", 0.0)),
    )
    decoder = parse_decoder_dims(config.get("decoder_conf") or {}, d_model=d, vocab_size=vocab_size)
    return ParaformerDims(encoder=encoder, decoder=decoder, predictor=predictor, vocab_size=vocab_size)


def paraformer_large_config(base_config: Mapping[str, Any]) -> dict[str, Any]:
    """``base_config`` with the released paraformer-large sizes (use with a vocab of 8404)."""
    config = copy.deepcopy(dict(base_config))
    config.setdefault("encoder_conf", {}).update(
        output_size=512, attention_heads=4, linear_units=2048, num_blocks=50, kernel_size=11
    )
    config.setdefault("decoder_conf", {}).update(
        attention_heads=4, linear_units=2048, num_blocks=16, att_layer_num=16, kernel_size=11
    )
    config.setdefault("predictor_conf", {}).update(idim=512)
    return config


# ----------------------------------------------------------------------------------------------- modules


class CifPredictorV2(nn.Module):
    """Per-frame CIF weights: Conv1d (kernel l+r+1) -> ReLU -> Linear(d, 1) -> sigmoid."""

    def __init__(self, dims: PredictorDims) -> None:
        super().__init__()
        self.dims = dims
        self.cif_conv1d = nn.Conv1d(dims.d_model, dims.d_model, dims.l_order + dims.r_order + 1)
        self.cif_output = nn.Linear(dims.d_model, 1)

    def forward(self, hidden: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """hidden (B, T, d) (zero on padding), valid (B, T) -> alphas (B, T) float32, zero on padding."""
        x = F.pad(hidden.transpose(1, 2), (self.dims.l_order, self.dims.r_order))
        x = torch.relu(self.cif_conv1d(x)).transpose(1, 2)
        alphas = torch.sigmoid(self.cif_output(x).float()).squeeze(-1)
        alphas = torch.relu(alphas * self.dims.smooth_factor - self.dims.noise_threshold)
        return alphas * valid.to(torch.float32)


class DecoderFeedForward(nn.Module):
    """``w_2(LN(ReLU(w_1 x)))`` with a bias-less ``w_2`` (PositionwiseFeedForwardDecoderSANM)."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff)
        self.w_2 = nn.Linear(d_ff, d_model, bias=False)
        self.norm = nn.LayerNorm(d_ff, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(self.norm(linear_relu(x, self.w_1)))


class DecoderFsmn(nn.Module):
    """The decoder's "self-attention": an FSMN memory only (key ``fsmn_block``)."""

    def __init__(self, d_model: int, kernel_size: int, shift: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.shift = shift
        self.fsmn_block = nn.Conv1d(d_model, d_model, kernel_size, groups=d_model, bias=False)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return fsmn_memory(x, valid, self.fsmn_block, self.kernel_size, self.shift)


class CrossAttention(nn.Module):
    """Attention from target positions to a memory (keys ``linear_q``, ``linear_k_v``, ``linear_out``)."""

    def __init__(self, d_model: int, memory_size: int, heads: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.heads = heads
        self.linear_q = nn.Linear(d_model, d_model)
        self.linear_k_v = nn.Linear(memory_size, 2 * d_model)
        self.linear_out = nn.Linear(d_model, d_model)

    def _heads(self, z: torch.Tensor) -> torch.Tensor:
        b, t, _ = z.shape
        return z.reshape(b, t, self.heads, self.d_model // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x (B, N, d), memory (B, T, m), bias (B, 1, 1, T) additive -> (B, N, d)."""
        k, v = self.linear_k_v(memory).split(self.d_model, dim=-1)
        q = self._heads(self.linear_q(x))
        ctx = F.scaled_dot_product_attention(q, self._heads(k), self._heads(v), attn_mask=bias.to(q.dtype))
        return self.linear_out(ctx.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.d_model))

    def probabilities(
        self, x: torch.Tensor, memory: torch.Tensor, memory_valid: torch.Tensor
    ) -> torch.Tensor:
        """Attention probabilities (B, h, N, T) in float32, zero on padded memory frames."""
        k, _ = self.linear_k_v(memory).split(self.d_model, dim=-1)
        q = self._heads(self.linear_q(x)).float()
        scores = q @ self._heads(k).float().transpose(-1, -2) / (self.d_model // self.heads) ** 0.5
        scores = scores.masked_fill(~memory_valid[:, None, None, :], float("-inf"))
        return torch.softmax(scores, dim=-1).masked_fill(~memory_valid[:, None, None, :], 0.0)


class DecoderLayer(nn.Module):
    """DecoderLayerSANM: FFN -> (FSMN + residual) -> (cross-attention + residual); parts may be absent."""

    def __init__(
        self, d_model: int, d_ff: int, self_attn: DecoderFsmn | None, src_attn: CrossAttention | None
    ) -> None:
        super().__init__()
        self.feed_forward = DecoderFeedForward(d_model, d_ff)
        self.norm1 = nn.LayerNorm(d_model, eps=LN_EPS)
        self.self_attn = self_attn
        self.src_attn = src_attn
        if self_attn is not None:
            self.norm2 = nn.LayerNorm(d_model, eps=LN_EPS)
        if src_attn is not None:
            self.norm3 = nn.LayerNorm(d_model, eps=LN_EPS)

    def _self_terms(self, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The two terms of the FFN + FSMN part: (layer input, FSMN of the FFN output), whose sum is the
        part's output; without FSMN (FFN output, None)."""
        t = self.feed_forward(self.norm1(x))
        if self.self_attn is None:
            return t, None
        return x, self.self_attn(self.norm2(t), valid)

    def self_part(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """FFN then FSMN with the layer input as residual (or the FFN output alone without FSMN)."""
        base, fsmn = self._self_terms(x, valid)
        return base if fsmn is None else base + fsmn

    def forward(
        self, x: torch.Tensor, valid: torch.Tensor, memory: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        if self.src_attn is None:
            return self.self_part(x, valid)
        base, fsmn = self._self_terms(x, valid)
        if fsmn is None:
            x, y = base, self.norm3(base)
        else:  # the FSMN residual and norm3 as one step (a fused kernel where enabled)
            x, y = add_layer_norm(base, fsmn, self.norm3)
        return x + self.src_attn(y, memory, bias)


class ParaformerDecoder(nn.Module):
    """ParaformerSANMDecoder: ``decoders`` (FSMN + cross-attn), ``decoders2`` (FSMN), ``decoders3`` (FFN)."""

    def __init__(self, dims: DecoderDims) -> None:
        super().__init__()
        self.dims = dims
        d, ff = dims.d_model, dims.linear_units
        if dims.vocab_size:
            self.embed = nn.Sequential(nn.Embedding(dims.vocab_size, d))
        self.decoders = nn.ModuleList(
            [
                DecoderLayer(
                    d,
                    ff,
                    DecoderFsmn(d, dims.kernel_size, dims.sanm_shift),
                    CrossAttention(d, dims.memory_size, dims.attention_heads),
                )
                for _ in range(dims.att_layer_num)
            ]
        )
        n2 = dims.num_blocks - dims.att_layer_num
        self.decoders2 = (
            nn.ModuleList([DecoderLayer(d, ff, DecoderFsmn(d, dims.kernel_size, 0), None) for _ in range(n2)])
            if n2 > 0
            else None
        )
        self.decoders3 = nn.ModuleList([DecoderLayer(d, ff, None, None)])
        self.after_norm = nn.LayerNorm(d, eps=LN_EPS)
        if dims.vocab_size:
            self.output_layer = nn.Linear(d, dims.vocab_size)

    def forward(
        self,
        tgt: torch.Tensor,
        tgt_lengths: torch.Tensor,
        memory: torch.Tensor,
        memory_lengths: torch.Tensor,
    ) -> torch.Tensor:
        """tgt (B, N, d), memory (B, T, m) -> hidden (B, N, d) after ``after_norm``."""
        valid = frame_mask(padding_mask(tgt_lengths, tgt.shape[1]), tgt.dtype)
        bias = key_padding_bias(padding_mask(memory_lengths, memory.shape[1]), memory.dtype)
        x = tgt
        for layer in self.decoders:
            x = layer(x, valid, memory, bias)
        if self.decoders2 is not None:
            for layer in self.decoders2:
                x = layer(x, valid, memory, bias)
        x = self.decoders3[0](x, valid, memory, bias)
        return self.after_norm(x)


class ParaformerNet(nn.Module):
    """The weights of a Paraformer checkpoint: ``encoder``, ``predictor``, ``decoder``."""

    def __init__(self, dims: ParaformerDims) -> None:
        super().__init__()
        self.dims = dims
        self.encoder = SanmEncoder(dims.encoder)
        self.predictor = CifPredictorV2(dims.predictor)
        self.decoder = ParaformerDecoder(dims.decoder)


# ----------------------------------------------------------------------------------------- decoding face


@dataclass(frozen=True)
class AcousticOutput:
    """Encoder + CIF results for a batch (float32 where decisions are taken)."""

    encoder_out: torch.Tensor  # (B, T, d) model dtype, zero on padding
    lengths: torch.Tensor  # (B,)
    embeddings: torch.Tensor  # (B, N_max, d) float32
    token_num: torch.Tensor  # (B,) int64
    alphas: torch.Tensor  # (B, T+1) float32
    fires: torch.Tensor  # (B, T+1) float32


class ParaformerModel:
    """A loaded Paraformer behind the ``AsrModel`` protocol (read-only after construction)."""

    family = "paraformer"
    hotword_mode = "none"
    rich_tags = False
    languages: tuple[str, ...] = ("zh", "en")
    # FunASR returns timestamps-style text (words joined by spaces) for every SeACo call.
    always_spaced_text = False

    def __init__(
        self,
        net: ParaformerNet,
        vocabulary: Vocabulary,
        frontend: FrontendConfig,
        *,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        if len(vocabulary) != net.dims.vocab_size:
            raise ModelLoadError(f"vocabulary has {len(vocabulary)} tokens, the model {net.dims.vocab_size}")
        self.net = net.to(device=device, dtype=dtype).eval()
        self.vocabulary = vocabulary
        # FunASR's per-token string tests, made once here: results are built from ids under the GIL.
        self.char_table = CharTable(tuple(vocabulary.tokens))
        self.frontend = frontend
        self.device = device
        self.dtype = dtype

    def _weigh(
        self, feats: torch.Tensor, feat_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoder output (zero on padding), lengths, tailed float32 hidden and alphas, token counts."""
        feats = feats.to(self.device, self.dtype)
        lengths = feat_lengths.to(self.device, torch.int64)
        enc, _ = self.net.encoder(feats, lengths)
        valid = padding_mask(lengths, enc.shape[1])
        enc = enc * valid[..., None].to(enc.dtype)
        alphas = self.net.predictor(enc, valid)
        hidden, alphas = add_tail(enc, alphas, lengths, self.net.dims.predictor.tail_threshold)
        token_num = torch.floor(alphas.sum(dim=-1)).to(torch.int64)
        return enc, lengths, hidden, alphas, token_num

    @torch.inference_mode()
    def acoustic(self, feats: torch.Tensor, feat_lengths: torch.Tensor) -> AcousticOutput:
        """Encoder, CIF weights and CIF embeddings (B, N_max, d) of a padded batch (one host sync)."""
        enc, lengths, hidden, alphas, token_num = self._weigh(feats, feat_lengths)
        emb, _, fires = cif_fire(hidden, alphas)
        return AcousticOutput(enc, lengths, emb, token_num, alphas, fires)

    @torch.inference_mode()
    def acoustic_static(self, feats: torch.Tensor, feat_lengths: torch.Tensor) -> AcousticOutput:
        """``acoustic`` without a host sync: every shape follows from (B, T), so a CUDA graph can hold it.

        ``embeddings`` is (B, T+1, d) in the model dtype (what the decoder reads), zero past each count;
        its valid rows equal ``acoustic``'s, converted.
        """
        enc, lengths, hidden, alphas, token_num = self._weigh(feats, feat_lengths)
        emb, _, fires = cif_fire_padded(hidden, alphas)
        return AcousticOutput(enc, lengths, emb.to(self.dtype), token_num, alphas, fires)

    @torch.inference_mode()
    def decoder_logits(
        self, ac: AcousticOutput, max_tokens: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, N, V) in the model dtype, decoder hidden (B, N, d)) for the CIF embeddings.

        ``max_tokens`` is ``ac.token_num.max()`` when the caller already has it on the host (saves a sync).
        """
        n = max(int(ac.token_num.max().item()) if max_tokens is None else max_tokens, 1)
        emb = ac.embeddings[:, :n]
        if emb.shape[1] < n:
            emb = F.pad(emb, (0, 0, 0, n - emb.shape[1]))
        hidden = self.net.decoder(emb.to(self.dtype), ac.token_num.clamp(min=0), ac.encoder_out, ac.lengths)
        return self.net.decoder.output_layer(hidden), hidden

    @torch.inference_mode()
    def decoder_logprobs(
        self, ac: AcousticOutput, max_tokens: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probs (B, N, V) float32, decoder hidden (B, N, d)); see ``decoder_logits``."""
        logits, hidden = self.decoder_logits(ac, max_tokens)
        return torch.log_softmax(logits.float(), dim=-1), hidden

    @torch.inference_mode()
    def argmax_ids(self, ac: AcousticOutput, tokens: int) -> torch.Tensor:
        """Best token id per position (B, tokens) int64; no host sync (graph-safe for a fixed ``tokens``).

        FunASR takes the argmax of the float32 log-softmax. Log-softmax is monotonic but its float32
        rounding can merge two close logits into a tie (argmax then takes the first): for float32 logits
        that happens when they differ by less than ~5e-7, so float32 keeps the log-softmax. bf16/fp16 logits
        differ by at least one of their own ulps, far above float32's rounding of the log-softmax unless the
        row's largest logit is below 2^-12 in magnitude; there the argmax of the logits is the same answer
        without a (B, N, V) float32 copy, a log-softmax pass and a float32 argmax.
        """
        logits, _ = self.decoder_logits(ac, tokens)
        if logits.dtype == torch.float32:
            return torch.log_softmax(logits, dim=-1).argmax(dim=-1)
        return logits.argmax(dim=-1)

    @torch.inference_mode()
    def decode_static(
        self, feats: torch.Tensor, feat_lengths: torch.Tensor, tokens: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``acoustic_static`` then ``argmax_ids`` at a fixed token axis, packed for one copy each.

        Returns (B, 2 + tokens) int64 rows ``[token count, frame count, ids...]`` and (B, 2, T+1) float32
        ``[fires, alphas]`` (read for timestamps). No host sync and every shape follows from (B, T) and
        ``tokens``, so one CUDA graph holds the whole model (cuda_graphs.py). An item whose count exceeds
        ``tokens`` has ids for its first ``tokens`` positions only: the caller checks the counts and decodes
        it again (``token_overflow``).
        """
        ac = self.acoustic_static(feats, feat_lengths)
        ids = self.argmax_ids(ac, tokens)
        packed = torch.cat([ac.token_num[:, None], ac.lengths.to(torch.int64)[:, None], ids], dim=1)
        return packed, torch.stack([ac.fires, ac.alphas], dim=1)

    def decode_batch(
        self, feats: torch.Tensor, feat_lengths: torch.Tensor, requests: Sequence[DecodeRequest]
    ) -> list[Hypothesis]:
        """Decode a padded batch with a fixed number of device-to-host transfers, whatever its size.

        Token counts and frame lengths come to the host together once, the argmax ids once, and the CIF
        weights once when any item wants timestamps; the per-item work then runs on host data only.
        """
        ac = self.acoustic(feats, feat_lengths)
        counts, frames = torch.stack([ac.token_num, ac.lengths]).cpu().tolist()
        if max(counts, default=0) < 1:
            return [Hypothesis(token_ids=(), text="") for _ in requests]
        ids = self.argmax_ids(ac, token_bucket(max(counts))).cpu()
        return self.hypotheses(ac, ids, counts, frames, requests)

    def hypotheses(
        self,
        ac: AcousticOutput,
        ids: torch.Tensor,
        counts: Sequence[int],
        frames: Sequence[int],
        requests: Sequence[DecodeRequest],
    ) -> list[Hypothesis]:
        """Per-item results from host ``ids`` (B', N) and counts; CIF weights are read once, if needed."""
        weights = None
        if any(req.timestamps for req in requests):
            n = len(requests)
            weights = torch.stack([ac.fires[:n], ac.alphas[:n]], dim=1).cpu()
        return self.host_hypotheses(ids, counts, frames, requests, weights)

    def host_hypotheses(
        self,
        ids: torch.Tensor,
        counts: Sequence[int],
        frames: Sequence[int],
        requests: Sequence[DecodeRequest],
        weights: torch.Tensor | None = None,
    ) -> list[Hypothesis]:
        """Per-item results from host data only: ``ids`` (B', N), counts, frame counts and, when any item
        wants timestamps, ``weights`` (B', 2, T+1) = [fires, alphas]. Reads nothing on the device, so it
        can run on any thread once the copies have arrived (cuda_graphs.py builds results so).

        The engine runs this under the GIL beside the device thread, so it is plain Python on lists: the
        ids come over once for the whole chunk, float32 host weights are read in place as arrays, and the
        vocabulary's ``CharTable`` answers every per-token string test.
        """
        if weights is None and any(req.timestamps for req in requests):
            raise ValueError("timestamps need the CIF weights")
        rows: list[list[int]] = ids.tolist()
        table = self.char_table
        host: np.ndarray | torch.Tensor | None = weights
        if weights is not None and weights.dtype == torch.float32 and weights.device.type == "cpu":
            host = weights.detach().numpy()
        out = []
        for i, req in enumerate(requests):
            ts = req.timestamps
            out.append(
                self._hypothesis(
                    table,
                    rows[i],
                    counts[i],
                    ts,
                    host[i, 0] if ts and host is not None else None,
                    host[i, 1] if ts and host is not None else None,
                    rate=1,
                    frame_count=frames[i] if ts else 0,
                )
            )
        return out

    def hypothesis(
        self,
        argmax_ids: torch.Tensor,
        ac: AcousticOutput | None,
        i: int,
        timestamps: bool,
        *,
        weights: torch.Tensor | None,
        peaks: torch.Tensor | None,
        rate: int,
        token_count: int | None = None,
        frame_count: int | None = None,
    ) -> Hypothesis:
        """Item ``i``'s result from its argmax ids; timestamps from ``weights``/``peaks`` (FunASR's slots).

        ``token_count``/``frame_count`` are item ``i``'s ``token_num``/``lengths`` when already on the host
        (then ``ac`` may be None); ``weights``/``peaks`` may be None without timestamps.
        """
        if token_count is None:
            assert ac is not None, "without ac the token count must come from the host"
            token_count = int(ac.token_num[i].item())
        if token_count < 1:
            return Hypothesis(token_ids=(), text="")
        if timestamps and frame_count is None:
            assert ac is not None, "without ac the frame count must come from the host"
            frame_count = int(ac.lengths[i].item())
        return self._hypothesis(
            self.char_table,
            argmax_ids[:token_count].tolist(),
            token_count,
            timestamps,
            weights,
            peaks,
            rate=rate,
            frame_count=frame_count or 0,
        )

    def _hypothesis(
        self,
        table: CharTable,
        ids: list[int],
        token_count: int,
        timestamps: bool,
        weights: torch.Tensor | np.ndarray | None,
        peaks: torch.Tensor | np.ndarray | None,
        *,
        rate: int,
        frame_count: int,
    ) -> Hypothesis:
        """One item's result from its host ids (the first ``token_count`` count; 0/1/2 are dropped)."""
        if token_count < 1:
            return Hypothesis(token_ids=(), text="")
        head = ids[:token_count]
        kept = head if BLANK_SOS_EOS_SET.isdisjoint(head) else [t for t in head if t not in BLANK_SOS_EOS_SET]
        if not timestamps:
            return Hypothesis(token_ids=tuple(kept), text=table.text(kept, spaced=self.always_spaced_text))
        assert weights is not None and peaks is not None, "timestamps need the CIF weights"
        length = frame_count + 1 if rate == 1 else frame_count * rate
        spans = token_spans_ms(weights[:length], peaks[:length], len(kept), upsample_rate=rate)
        out = table.assemble(kept, spans)
        return Hypothesis(token_ids=tuple(kept), text=out.text, words=out.words)


# ------------------------------------------------------------------------------------------ construction


def build_random(
    config: Mapping[str, Any],
    vocabulary: Vocabulary,
    *,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> ParaformerModel:
    """A Paraformer with random weights for benchmarks (e.g. ``paraformer_large_config(config)``)."""
    torch.manual_seed(seed)
    dims = parse_paraformer_dims(config, vocab_size=len(vocabulary))
    return ParaformerModel(ParaformerNet(dims), vocabulary, FrontendConfig(), device=device, dtype=dtype)


def frontend_from_model_dir(model_dir: ModelDir) -> FrontendConfig:
    from asr_engine.features import frontend_config_from_funasr

    return frontend_config_from_funasr(model_dir.config.get("frontend_conf"), model_dir.cmvn_file)


# FunASR checkpoints trained with a CTC branch carry ``ctc.*`` tensors that inference never uses.
IGNORED_CHECKPOINT_PREFIXES = ("ctc.",)


def from_model_dir(model_dir: ModelDir, *, device: torch.device, dtype: torch.dtype) -> ParaformerModel:
    """Build a Paraformer from a FunASR directory (loader dispatch entry point)."""
    vocabulary = load_vocabulary(model_dir.require("token_list"))
    dims = parse_paraformer_dims(model_dir.config, vocab_size=len(vocabulary))
    net = ParaformerNet(dims)
    assign_weights(
        net, load_checkpoint(model_dir.require("checkpoint")), ignore_unexpected=IGNORED_CHECKPOINT_PREFIXES
    )
    return ParaformerModel(net, vocabulary, frontend_from_model_dir(model_dir), device=device, dtype=dtype)
