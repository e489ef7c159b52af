"""SeACo-Paraformer: Paraformer plus hotword biasing (bias LSTM, seaco decoder, hotword head).

Parameter names follow FunASR's ``SeacoParaformer`` / ``CifPredictorV3``. The first CIF head fires where
FunASR's sequential rule does (computed with the vectorised rule); a second, 3x-upsampled head
(ConvTranspose1d + BLSTM) only gives timestamps. Hotwords come
per request (``DecodeRequest.hotwords``; one ``Hotword`` = one FunASR hotword), so items of one batch may
bias towards different lists; without hotwords an item decodes as plain Paraformer would.

Exact batching: the upsampling BLSTM runs packed (each item's reverse pass starts at its own last frame)
and the ASF filter scores each item alone, so every item gets FunASR's single-utterance result.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from asr_engine.decoding.cif import add_tail, cif_fire, cif_sequential
from asr_engine.errors import ModelLoadError
from asr_engine.models.base import DecodeRequest, FrontendConfig, Hypothesis
from asr_engine.models.loader import ModelDir, assign_weights, load_checkpoint
from asr_engine.models.paraformer import (
    IGNORED_CHECKPOINT_PREFIXES,
    AcousticOutput,
    DecoderDims,
    DecoderLayer,
    ParaformerDecoder,
    ParaformerDims,
    ParaformerModel,
    ParaformerNet,
    PredictorDims,
    frontend_from_model_dir,
    parse_decoder_dims,
    parse_paraformer_dims,
)
from asr_engine.models.sanm import key_padding_bias, padding_mask
from asr_engine.tokens import Vocabulary, load_seg_dict, load_vocabulary
from asr_engine.types import Hotword

__all__ = [
    "ASF_MAX_HOTWORDS",
    "CifPredictorV3",
    "SeacoDims",
    "SeacoNet",
    "SeacoParaformerModel",
    "from_model_dir",
    "hotword_token_ids",
    "hotwords_from_funasr_text",
    "parse_seaco_dims",
]

log = logging.getLogger(__name__)

ASF_MAX_HOTWORDS = 50  # FunASR's nfilter: more hotwords than this are pre-filtered by attention scores
ASF_LAYERS = 6  # the filter reads the cross-attention of seaco decoder layer 5 (hard-coded in FunASR)
SOS_ID = 1
_CJK_OR_DIGITS = re.compile(r"^[\u4e00-\u9fa50-9]+$")


@dataclass(frozen=True, kw_only=True)
class SeacoDims:
    base: ParaformerDims
    seaco_decoder: DecoderDims
    upsample_times: int = 3
    smooth_factor2: float = 0.25
    noise_threshold2: float = 0.01
    no_bias_id: int = 8377


def parse_seaco_dims(config: Mapping[str, Any], *, vocab_size: int) -> SeacoDims:
    """Sizes of a SeacoParaformer config.yaml."""
    base = parse_paraformer_dims(config, vocab_size=vocab_size)
    d = base.encoder.output_size
    model_conf = dict(config.get("model_conf") or {})
    if int(model_conf.get("inner_dim", d)) != d:
        raise ModelLoadError(
            f"model_conf.inner_dim {model_conf['inner_dim']} differs from the encoder width {d}"
        )
    if model_conf.get("bias_encoder_type", "lstm") != "lstm" or model_conf.get("bias_encoder_bid", False):
        raise ModelLoadError("only a unidirectional LSTM bias encoder is supported")
    pconf = dict(config.get("predictor_conf") or {})
    if pconf.get("upsample_type", "cnn_blstm") != "cnn_blstm" or pconf.get("use_cif1_cnn", False):
        raise ModelLoadError("predictor_conf: only upsample_type cnn_blstm without use_cif1_cnn is supported")
    seaco_conf = dict(config.get("seaco_decoder_conf") or {})
    seaco = parse_decoder_dims(seaco_conf, d_model=d, vocab_size=0)
    no_bias = int(model_conf.get("NO_BIAS", 8377))
    if not 0 <= no_bias < vocab_size:
        raise ModelLoadError(f"model_conf.NO_BIAS {no_bias} is outside the vocabulary of {vocab_size}")
    return SeacoDims(
        base=base,
        seaco_decoder=seaco,
        upsample_times=int(pconf.get("upsample_times", 3)),
        smooth_factor2=float(pconf.get("smooth_factor2", 0.25)),
        noise_threshold2=float(pconf.get("noise_threshold2", 0.01)),
        no_bias_id=no_bias,
    )


class CifPredictorV3(nn.Module):
    """First head as CifPredictorV2; second head ``upsample_cnn`` -> ``blstm`` -> ``cif_output2``."""

    def __init__(self, dims: PredictorDims, upsample_times: int, smooth2: float, noise2: float) -> None:
        super().__init__()
        d = dims.d_model
        self.dims = dims
        self.upsample_times = upsample_times
        self.smooth2 = smooth2
        self.noise2 = noise2
        self.cif_conv1d = nn.Conv1d(d, d, dims.l_order + dims.r_order + 1)
        self.cif_output = nn.Linear(d, 1)
        self.upsample_cnn = nn.ConvTranspose1d(d, d, upsample_times, upsample_times)
        self.blstm = nn.LSTM(d, d, 1, batch_first=True, bidirectional=True)
        self.cif_output2 = nn.Linear(2 * d, 1)

    def forward(self, hidden: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """First-head alphas (B, T) float32, zero on padding (hidden zero on padding)."""
        x = F.pad(hidden.transpose(1, 2), (self.dims.l_order, self.dims.r_order))
        x = torch.relu(self.cif_conv1d(x)).transpose(1, 2)
        alphas = torch.sigmoid(self.cif_output(x).float()).squeeze(-1)
        alphas = torch.relu(alphas * self.dims.smooth_factor - self.dims.noise_threshold)
        return alphas * valid.to(torch.float32)

    def upsampled_alphas(self, hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Timestamp-head alphas (B, 3T) float32; the BLSTM sees only each item's own 3*T_i frames."""
        up = self.upsample_cnn(hidden.transpose(1, 2)).transpose(1, 2).float()
        up_lengths = (lengths * self.upsample_times).cpu()
        if bool((up_lengths == up.shape[1]).all()):
            out, _ = self.blstm(up)  # no padding: packing would only cost time
        else:
            packed = pack_padded_sequence(up, up_lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.blstm(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=up.shape[1])
        alphas = torch.sigmoid(self.cif_output2(out.to(self.cif_output2.weight.dtype)).float()).squeeze(-1)
        alphas = torch.relu(alphas * self.smooth2 - self.noise2)
        return alphas * padding_mask(lengths * self.upsample_times, up.shape[1]).to(torch.float32)


class SeacoNet(ParaformerNet):
    """SeACo weights: Paraformer's plus ``bias_encoder``, ``seaco_decoder``, ``hotword_output_layer``."""

    def __init__(self, dims: SeacoDims) -> None:
        super().__init__(dims.base)
        d = dims.base.encoder.output_size
        self.seaco_dims = dims
        self.predictor = CifPredictorV3(  # type: ignore[assignment]
            dims.base.predictor, dims.upsample_times, dims.smooth_factor2, dims.noise_threshold2
        )
        self.bias_encoder = nn.LSTM(d, d, 2, batch_first=True)
        self.seaco_decoder = ParaformerDecoder(dims.seaco_decoder)
        self.hotword_output_layer = nn.Linear(d, dims.base.vocab_size)


# --------------------------------------------------------------------------------------------- hotwords


def hotwords_from_funasr_text(text: str, is_file: bool) -> tuple[Hotword, ...]:
    """FunASR's ``hotword=`` argument as Hotwords: a string gives one hotword per whitespace-separated
    item; a ``.txt`` file's content gives one hotword per line (its words stay together).

    Empty lines are skipped (FunASR would build an empty hotword from them).
    """
    phrases = [" ".join(line.split()) for line in text.splitlines()] if is_file else text.split()
    return tuple(Hotword(phrase=p) for p in phrases if p)


def hotword_token_ids(
    phrase: str, vocabulary: Vocabulary, seg_dict: Mapping[str, Sequence[str]] | None
) -> list[int]:
    """Token ids of one hotword (funasr-spec §7.2): each word lower-cased and looked up in seg_dict,
    CJK/digit words character by character, anything else ``<unk>``; without seg_dict a word is a token."""
    pieces: list[str] = []
    for word in phrase.split():
        if seg_dict is None:
            pieces.append(word)
            continue
        word = word.lower()
        if word in seg_dict:
            pieces.extend(seg_dict[word])
        elif _CJK_OR_DIGITS.match(word):
            for char in word:
                pieces.extend(seg_dict.get(char, [vocabulary.unk_symbol]))
        else:
            pieces.append(vocabulary.unk_symbol)
    return [vocabulary.id_of(p) for p in pieces]


# ------------------------------------------------------------------------------------------------ model


class SeacoParaformerModel(ParaformerModel):
    """A loaded SeACo-Paraformer behind the ``AsrModel`` protocol."""

    family = "seaco_paraformer"
    hotword_mode = "seaco"
    always_spaced_text = True

    def __init__(
        self,
        net: SeacoNet,
        vocabulary: Vocabulary,
        frontend: FrontendConfig,
        *,
        seg_dict: Mapping[str, Sequence[str]] | None,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        super().__init__(net, vocabulary, frontend, device=device, dtype=dtype)
        self.seaco: SeacoNet = net
        for module in self.seaco.modules():  # LSTMs stay float32 (cuDNN has no bf16 RNN; small cost)
            if isinstance(module, nn.LSTM):
                module.float()
                module.flatten_parameters()
        self.seg_dict = seg_dict

    @torch.inference_mode()
    def acoustic(self, feats: torch.Tensor, feat_lengths: torch.Tensor) -> AcousticOutput:
        """Encoder and the CIF of the first predictor head."""
        feats = feats.to(self.device, self.dtype)
        lengths = feat_lengths.to(self.device, torch.int64)
        enc, _ = self.net.encoder(feats, lengths)
        valid = padding_mask(lengths, enc.shape[1])
        enc = enc * valid[..., None].to(enc.dtype)
        alphas = cast(CifPredictorV3, self.seaco.predictor)(enc, valid)
        hidden, alphas = add_tail(enc, alphas, lengths, self.net.dims.predictor.tail_threshold)
        token_num = torch.floor(alphas.sum(dim=-1)).to(torch.int64)
        # FunASR's V3 walks the frames one by one; the vectorised rule fires on the same frames except
        # where a running sum lies within float32 rounding of an integer, and is free of a Python loop.
        emb, _, fires = cif_fire(hidden, alphas)
        emb = emb[:, : max(int(token_num.max().item()), 0)]
        return AcousticOutput(enc, lengths, emb, token_num, alphas, fires)

    def hotword_embeddings(self, id_lists: Sequence[Sequence[int]]) -> torch.Tensor:
        """Bias-LSTM output at each hotword's last token: (n_hw, d)."""
        lengths = torch.tensor([len(ids) for ids in id_lists], device=self.device)
        padded = torch.zeros(len(id_lists), int(lengths.max().item()), dtype=torch.int64, device=self.device)
        for row, ids in enumerate(id_lists):
            padded[row, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
        out, _ = self.seaco.bias_encoder(self.net.decoder.embed(padded).float())
        return out[torch.arange(len(id_lists), device=self.device), lengths - 1].to(self.dtype)

    def _asf_select(self, hw: torch.Tensor, dec_hidden: torch.Tensor, n: int) -> torch.Tensor:
        """FunASR's attention-score filter for one item: keep the top 50 hotwords plus the last ([sos])."""
        dec = self.seaco.seaco_decoder
        n_hw = hw.shape[0]
        memory = hw[None]
        hw_len = torch.tensor([n_hw], device=self.device)
        tgt_len = torch.tensor([n], device=self.device)
        valid = padding_mask(tgt_len, n)
        bias = key_padding_bias(padding_mask(hw_len, n_hw), memory.dtype)
        x = dec_hidden[None, :n]
        for layer in dec.decoders[: ASF_LAYERS - 1]:
            x = layer(x, valid, memory, bias)
        last = cast(DecoderLayer, dec.decoders[ASF_LAYERS - 1])
        x = last.self_part(x, valid)
        if last.src_attn is None:
            raise ModelLoadError("the seaco decoder's layer 5 has no cross-attention (ASF needs it)")
        probs = last.src_attn.probabilities(last.norm3(x), memory, padding_mask(hw_len, n_hw))
        scores = probs[0].sum(0).sum(0)
        keep = torch.topk(scores, min(ASF_MAX_HOTWORDS, n_hw - 1)).indices.tolist()
        keep.append(n_hw - 1)
        return hw[keep]

    def _bias_logprobs(
        self, hw: torch.Tensor, emb: torch.Tensor, dec_hidden: torch.Tensor, token_num: torch.Tensor
    ) -> torch.Tensor:
        """Hotword-head log-probs (B, N, V) float32 for items sharing the hotword memory ``hw``."""
        b = emb.shape[0]
        memory = hw[None].expand(b, -1, -1)
        mem_len = torch.full((b,), hw.shape[0], device=self.device, dtype=torch.int64)
        dec = self.seaco.seaco_decoder
        merged = dec(emb, token_num, memory, mem_len) + dec(dec_hidden, token_num, memory, mem_len)
        return torch.log_softmax(self.seaco.hotword_output_layer(merged).float(), dim=-1)

    @torch.inference_mode()
    def decode_batch(
        self, feats: torch.Tensor, feat_lengths: torch.Tensor, requests: Sequence[DecodeRequest]
    ) -> list[Hypothesis]:
        ac = self.acoustic(feats, feat_lengths)
        if int(ac.token_num.max().item()) < 1:
            return [Hypothesis(token_ids=(), text="") for _ in requests]
        logprobs, dec_hidden = self.decoder_logprobs(ac)
        n_max = logprobs.shape[1]
        emb = ac.embeddings[:, :n_max].to(self.dtype)
        if emb.shape[1] < n_max:
            emb = F.pad(emb, (0, 0, 0, n_max - emb.shape[1]))
        groups: dict[tuple[tuple[int, ...], ...], list[int]] = {}
        for i, req in enumerate(requests):
            if req.hotwords and int(ac.token_num[i].item()) >= 1:
                lists = [hotword_token_ids(h.phrase, self.vocabulary, self.seg_dict) for h in req.hotwords]
                key = (*tuple(tuple(ids) for ids in lists if ids), (SOS_ID,))
                groups.setdefault(key, []).append(i)
        for key, items in groups.items():
            hw = self.hotword_embeddings(key)
            if hw.shape[0] > ASF_MAX_HOTWORDS:
                for i in items:
                    n = int(ac.token_num[i].item())
                    sel = self._asf_select(hw, dec_hidden[i], n)
                    self._merge(
                        logprobs,
                        i,
                        self._bias_logprobs(
                            sel, emb[i : i + 1], dec_hidden[i : i + 1], ac.token_num[i : i + 1]
                        ),
                    )
            else:
                idx = torch.tensor(items, device=self.device)
                bias_lp = self._bias_logprobs(hw, emb[idx], dec_hidden[idx], ac.token_num[idx])
                for row, i in enumerate(items):
                    self._merge(logprobs, i, bias_lp[row : row + 1])
        ids = logprobs.argmax(dim=-1).cpu()
        want_ts = any(r.timestamps for r in requests)
        us_alphas = self._timestamp_alphas(ac) if want_ts else None
        out = []
        for i, req in enumerate(requests):
            if us_alphas is not None and req.timestamps:
                weights = us_alphas[i]
                peaks = torch.from_numpy(cif_sequential(weights.numpy(), 1.0 - 1e-4))
                out.append(self.hypothesis(ids[i], ac, i, True, weights=weights, peaks=peaks, rate=3))
            else:
                out.append(
                    self.hypothesis(ids[i], ac, i, False, weights=ac.fires[i], peaks=ac.alphas[i], rate=3)
                )
        return out

    def _merge(self, logprobs: torch.Tensor, i: int, bias_lp: torch.Tensor) -> None:
        """Where the hotword head's argmax is not NO_BIAS, take its log-probs (seaco_weight 1.0)."""
        n = bias_lp.shape[1]
        use_bias = bias_lp[0].argmax(-1) != self.seaco.seaco_dims.no_bias_id
        logprobs[i, :n] = torch.where(use_bias[:, None], bias_lp[0], logprobs[i, :n])

    @torch.inference_mode()
    def _timestamp_alphas(self, ac: AcousticOutput) -> torch.Tensor:
        """Upsampled alphas rescaled to each item's token count, on the CPU (B, 3T) float32."""
        predictor = cast(CifPredictorV3, self.seaco.predictor)
        us = predictor.upsampled_alphas(ac.encoder_out, ac.lengths)
        scale = ac.token_num.to(torch.float32) / us.sum(-1)
        return (us * scale[:, None]).cpu()


def _load_seg_dict_near_cmvn(model_dir: ModelDir) -> dict[str, tuple[str, ...]] | None:
    """FunASR looks for ``seg_dict`` next to the CMVN file (funasr-spec §7.2)."""
    if model_dir.cmvn_file is None:
        return None
    path = Path(model_dir.cmvn_file).parent / "seg_dict"
    return load_seg_dict(path) if path.is_file() else None


def from_model_dir(model_dir: ModelDir, *, device: torch.device, dtype: torch.dtype) -> SeacoParaformerModel:
    """Build a SeACo-Paraformer from a FunASR directory (loader dispatch entry point)."""
    vocabulary = load_vocabulary(model_dir.require("token_list"))
    dims = parse_seaco_dims(model_dir.config, vocab_size=len(vocabulary))
    if dims.seaco_decoder.att_layer_num < ASF_LAYERS:
        log.warning(
            "seaco decoder has fewer than %d layers: more than %d hotwords will fail",
            ASF_LAYERS,
            ASF_MAX_HOTWORDS,
        )
    net = SeacoNet(dims)
    assign_weights(
        net, load_checkpoint(model_dir.require("checkpoint")), ignore_unexpected=IGNORED_CHECKPOINT_PREFIXES
    )
    return SeacoParaformerModel(
        net,
        vocabulary,
        frontend_from_model_dir(model_dir),
        seg_dict=_load_seg_dict_near_cmvn(model_dir),
        device=device,
        dtype=dtype,
    )
