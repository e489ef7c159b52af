"""SenseVoiceSmall: SAN-M encoder behind four prompt embeddings, a CTC head, sentencepiece text.

The encoder sees ``[E[language], E[1], E[2], E[itn], features...]`` (funasr-spec §8.1); the CTC output of
the four prompt frames spells the ``<|lang|><|EMOTION|><|Event|><|itn|>`` tags. Decoding is greedy (as
FunASR) unless a request carries hotwords, which switches that item to prefix beam search with a
context graph (``asr_engine.decoding``), followed by the CTC word spotter (``decoding.word_spotter``): a
rare name whose pieces the beam cannot reach step by step can still replace the words that the
hypothesis put over its frames, when its whole alignment there, plus the boost per token, scores higher.

Memory: the CTC head's output is vocabulary-sized (25,055 pieces for the real SenseVoiceSmall, so one
30 s item is 12.6 M fp32 log-probs), which the scheduler's padded-sample budget does not see. A batch is
therefore encoded whole but goes through the head, log-softmax and decoding a few items at a time, with
at most ``LOG_PROB_CHUNK_VALUES`` log-probs alive: their memory no longer grows with the batch, and each
item's values are the ones the whole-batch form gave.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sentencepiece as spm
import torch
from torch import nn

from asr_engine.decoding.context_graph import ContextGraph
from asr_engine.decoding.ctc import greedy_decode, prefix_beam_search
from asr_engine.decoding.ctc_timestamps import sensevoice_words
from asr_engine.decoding.word_spotter import PieceClasses, SpotTarget, spot_hotwords
from asr_engine.errors import InvalidOptionsError, ModelLoadError
from asr_engine.models.base import DecodeRequest, FrontendConfig, Hypothesis
from asr_engine.models.loader import ModelDir, assign_weights, load_checkpoint
from asr_engine.models.sanm import SanmEncoder, SanmEncoderDims, parse_sanm_encoder_dims
from asr_engine.text.rich import parse_tags, strip_tags
from asr_engine.types import Hotword

__all__ = [
    "DEFAULT_HOTWORD_BOOST",
    "LANGUAGE_ROWS",
    "PROMPT_FRAMES",
    "SenseVoiceDims",
    "SenseVoiceModel",
    "SenseVoiceNet",
    "from_model_dir",
    "parse_sensevoice_dims",
    "strip_tags",
]

log = logging.getLogger(__name__)

# Rows of ``embed.weight`` (16 x input_size): language queries, the fixed event/emotion queries, ITN.
LANGUAGE_ROWS: dict[str, int] = {"auto": 0, "zh": 3, "en": 4, "yue": 7, "ja": 11, "ko": 12, "nospeech": 13}
EVENT_ROW = 1
EMOTION_ROW = 2
WITH_ITN_ROW = 14
WITHOUT_ITN_ROW = 15
PROMPT_ROWS = 16
PROMPT_FRAMES = 4
BLANK_ID = 0
# per-token log bonus: measured on the bundled model (bench/bundled_model.md), 6 lifts rare-name recall
# several-fold at no WER cost; 8+ starts to cost English WER
DEFAULT_HOTWORD_BOOST = 6.0
DEFAULT_BEAM_SIZE = 10
# the word spotter's bonus per hotword token is the hotword's boost times this; a spot replaces the
# hypothesis' words when its log-prob plus that bonus beats theirs by more than SPOT_MARGIN, and where
# its own alignment averages at least SPOT_MIN_TOKEN_LOG_PROB per token (absolute evidence, so that a
# large boost cannot put a name over speech that sounds nothing like it). Tuned on the recipe's dev
# split (other names and sentences than the test's; bench/bundled_model.md, "hotword tuning, session 3")
SPOT_BONUS_SCALE = 1.4
SPOT_MARGIN = 0.0
SPOT_MIN_TOKEN_LOG_PROB = -7.0
# fp32 log-probs (frames x vocabulary) computed at once in decode_batch; one item is never split.
LOG_PROB_CHUNK_VALUES = 1 << 25
# the tag that ends the output's tag prefix; a hotword pinned to the text start follows it
TEXT_NORM_TAG_PIECES = ("<|woitn|>", "<|withitn|>")
EMO_UNKNOWN_PIECE = "<|EMO_UNKNOWN|>"


@dataclass(frozen=True, kw_only=True)
class SenseVoiceDims:
    """Encoder sizes (LayerNorm eps 1e-5), vocabulary size and prompt rows."""

    encoder: SanmEncoderDims
    vocab_size: int
    prompt_rows: int = PROMPT_ROWS


def parse_sensevoice_dims(config: Mapping[str, Any], *, vocab_size: int, input_size: int) -> SenseVoiceDims:
    """Sizes from a SenseVoiceSmall config.yaml (``input_size`` = n_mels * lfr_m of the frontend)."""
    encoder = config.get("encoder", "SenseVoiceEncoderSmall")
    if encoder != "SenseVoiceEncoderSmall":
        raise ModelLoadError(f"encoder {encoder!r} is not supported for SenseVoiceSmall")
    conf = config.get("encoder_conf") or {}
    if not isinstance(conf, Mapping):
        raise ModelLoadError("encoder_conf is not a mapping")
    enc = parse_sanm_encoder_dims(conf, input_size=input_size, layer_norm_eps=1e-5)
    if vocab_size < 1:
        raise ModelLoadError(f"vocabulary size must be positive, got {vocab_size}")
    return SenseVoiceDims(encoder=enc, vocab_size=int(vocab_size))


class CtcHead(nn.Module):
    """``ctc_lo``: encoder width -> vocabulary logits."""

    def __init__(self, d_model: int, vocab_size: int) -> None:
        super().__init__()
        self.ctc_lo = nn.Linear(d_model, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ctc_lo(x)


class SenseVoiceNet(nn.Module):
    """The network with FunASR's key names: ``embed``, ``encoder.*``, ``ctc.ctc_lo``."""

    def __init__(self, dims: SenseVoiceDims) -> None:
        super().__init__()
        self.dims = dims
        self.embed = nn.Embedding(dims.prompt_rows, dims.encoder.input_size)
        self.encoder = SanmEncoder(dims.encoder)
        self.ctc = CtcHead(dims.encoder.output_size, dims.vocab_size)

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor, prompt_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, D), lengths (B,), prompt_ids (B, 4) -> log-probs (B, T+4, V) float32, lengths+4."""
        enc, out_lengths = self.encode(feats, lengths, prompt_ids)
        return self.head_log_probs(enc), out_lengths

    def encode(
        self, feats: torch.Tensor, lengths: torch.Tensor, prompt_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder output (B, T+4, d_model) in the model's dtype, and lengths+4."""
        prompts = self.embed(prompt_ids).to(feats.dtype)
        x = torch.cat([prompts, feats], dim=1)
        enc, out_lengths = self.encoder(x, lengths + PROMPT_FRAMES)
        return enc, out_lengths

    def head_log_probs(self, enc: torch.Tensor) -> torch.Tensor:
        """CTC log-probs (..., V) float32 of encoder frames."""
        return torch.log_softmax(self.ctc(enc).float(), dim=-1)


def prompt_row_ids(request: DecodeRequest) -> list[int]:
    """The four embedding rows of one request; an unknown language is an error (FunASR maps it to auto)."""
    language = request.language if request.language not in (None, "") else "auto"
    row = LANGUAGE_ROWS.get(str(language))
    if row is None:
        supported = ", ".join(sorted(LANGUAGE_ROWS))
        raise InvalidOptionsError(
            "language", f"{language!r} is not supported by SenseVoice (use one of {supported})"
        )
    return [row, EVENT_ROW, EMOTION_ROW, WITH_ITN_ROW if request.itn else WITHOUT_ITN_ROW]


class SenseVoiceModel:
    """A loaded SenseVoiceSmall behind the ``AsrModel`` protocol (read-only after construction)."""

    family = "sensevoice"
    hotword_mode = "context_graph"
    rich_tags = True
    languages: tuple[str, ...] = ("zh", "en", "yue", "ja", "ko")

    def __init__(
        self,
        net: SenseVoiceNet,
        pieces: spm.SentencePieceProcessor,
        frontend: FrontendConfig,
        *,
        device: torch.device,
        dtype: torch.dtype,
        ban_emo_unk: bool = False,
        beam_size: int = DEFAULT_BEAM_SIZE,
    ) -> None:
        if pieces.get_piece_size() != net.dims.vocab_size:
            raise ModelLoadError(
                f"sentencepiece model has {pieces.get_piece_size()} pieces, "
                f"the CTC head {net.dims.vocab_size}"
            )
        if frontend.feature_dim != net.dims.encoder.input_size:
            raise ModelLoadError(
                f"features have {frontend.feature_dim} values per frame, the model expects "
                f"{net.dims.encoder.input_size}"
            )
        self.net = net.to(device=device, dtype=dtype).eval()
        self.pieces = pieces
        self.frontend = frontend
        self.device = device
        self.dtype = dtype
        self.beam_size = beam_size
        self.banned_ids: tuple[int, ...] = ()
        if ban_emo_unk:
            banned = pieces.piece_to_id(EMO_UNKNOWN_PIECE)
            if banned == pieces.unk_id() and pieces.id_to_piece(banned) != EMO_UNKNOWN_PIECE:
                raise ModelLoadError(f"ban_emo_unk: the vocabulary has no {EMO_UNKNOWN_PIECE} piece")
            self.banned_ids = (banned,)
        self._special_ids = frozenset(
            i for i in range(pieces.get_piece_size()) if pieces.is_control(i) or pieces.is_unknown(i)
        ) | frozenset(i for i in range(pieces.get_piece_size()) if pieces.id_to_piece(i).startswith("<|"))
        self._text_norm_tag_ids = tuple(
            pieces.piece_to_id(p)
            for p in TEXT_NORM_TAG_PIECES
            if pieces.id_to_piece(pieces.piece_to_id(p)) == p
        )
        self._graph_cache = functools.lru_cache(maxsize=64)(self._build_graph)
        self._spot_cache = functools.lru_cache(maxsize=64)(self._build_spot_targets)
        self.piece_classes = PieceClasses.from_pieces(
            [pieces.id_to_piece(i) for i in range(pieces.get_piece_size())], sorted(self._special_ids)
        )

    def _encode(
        self, feats: torch.Tensor, feat_lengths: torch.Tensor, requests: Sequence[DecodeRequest]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if feats.shape[0] != len(requests):
            raise ValueError(f"{feats.shape[0]} feature rows but {len(requests)} requests")
        prompt = torch.tensor([prompt_row_ids(r) for r in requests], dtype=torch.int64, device=self.device)
        return self.net.encode(
            feats.to(self.device, self.dtype), feat_lengths.to(self.device, torch.int64), prompt
        )

    def _head(self, enc: torch.Tensor) -> torch.Tensor:
        """fp32 log-probs of encoder frames, banned pieces at -inf (after normalisation, as before)."""
        lp = self.net.head_log_probs(enc)
        if self.banned_ids:
            lp[..., list(self.banned_ids)] = float("-inf")
        return lp

    @torch.inference_mode()
    def log_probs(
        self, feats: torch.Tensor, feat_lengths: torch.Tensor, requests: Sequence[DecodeRequest]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC log-probs (B, T+4, V) float32 over prompt + speech frames, and their lengths (B,).

        The whole batch at once (B x T x V values): for inspection and tests; decoding uses
        ``decode_batch``, which keeps at most ``LOG_PROB_CHUNK_VALUES`` of them.
        """
        enc, lengths = self._encode(feats, feat_lengths, requests)
        return self._head(enc), lengths

    @torch.inference_mode()
    def decode_batch(
        self, feats: torch.Tensor, feat_lengths: torch.Tensor, requests: Sequence[DecodeRequest]
    ) -> list[Hypothesis]:
        enc, lengths = self._encode(feats, feat_lengths, requests)
        per_item = enc.shape[1] * self.net.dims.vocab_size
        group = max(1, LOG_PROB_CHUNK_VALUES // max(1, per_item))
        out: list[Hypothesis] = []
        for lo in range(0, len(requests), group):
            hi = min(lo + group, len(requests))
            frames = int(lengths[lo:hi].max().item())
            lp = self._head(enc[lo:hi, :frames])  # (k, frames, V): the group's items only
            greedy = greedy_decode(lp, lengths[lo:hi], blank=BLANK_ID)
            for j, request in enumerate(requests[lo:hi]):
                n = int(lengths[lo + j].item())
                ids = greedy[j]
                if request.hotwords:
                    ids = self._decode_hotwords(lp[j, :n], ids, request.hotwords)
                out.append(self._hypothesis(ids, lp[j, PROMPT_FRAMES:n] if request.timestamps else None))
            del lp
        return out

    def _decode_hotwords(self, lp: torch.Tensor, greedy: list[int], hotwords: Sequence[Hotword]) -> list[int]:
        """One item's ids with hotwords: beam search with the context graph, then the word spotter.

        lp (T, V): the item's log-probs over prompt + speech frames; ``greedy`` its greedy ids.
        """
        ids = greedy
        path = None
        graph = self.context_graph(hotwords)
        if graph is not None:
            ids = list(prefix_beam_search(lp, lp.shape[0], self.beam_size, graph, blank=BLANK_ID).token_ids)
        if ids == greedy:
            path = lp.argmax(dim=-1).cpu().numpy()  # greedy's own frame path; no alignment needed
        targets = self.spot_targets(hotwords)
        if not targets:
            return ids
        spotted = spot_hotwords(
            lp,
            ids,
            targets,
            self.piece_classes,
            path=path,
            first_frame=PROMPT_FRAMES,
            margin=SPOT_MARGIN,
            min_token_log_prob=SPOT_MIN_TOKEN_LOG_PROB,
            blank=BLANK_ID,
        )
        return list(spotted.token_ids)

    def _hypothesis(self, ids: list[int], speech_log_probs: torch.Tensor | None) -> Hypothesis:
        text = self.pieces.DecodeIds(ids)
        tags = parse_tags(text)
        words = () if speech_log_probs is None else sensevoice_words(self.pieces, text, speech_log_probs)
        return Hypothesis(
            token_ids=tuple(ids), text=text, words=words, language=tags.language, tags=tags.tags
        )

    # ------------------------------------------------------------------------------------------ hotwords

    def context_graph(self, hotwords: Sequence[Hotword]) -> ContextGraph | None:
        """The biasing graph of ``hotwords`` (cached), or None when none of them can bias anything."""
        return self._graph_cache(tuple(hotwords))

    def hotword_token_ids(self, phrase: str) -> list[tuple[int, ...]]:
        """Token sequences that spell ``phrase``: as it appears after a space, and as encoded alone.

        Where the phrase starts a word of a space-delimited script (after a space it begins with a
        ``▁``-word piece, or with a lone ``▁`` and a Latin piece), the unspaced spelling only occurs at
        the start of the text, so it is pinned
        there by the text-normalisation tag that ends the tag prefix; elsewhere it would match inside
        other words and bias the search toward fragments. Sequences with pieces the model cannot emit
        as text (unknown, control, ``<|tag|>``) are dropped.
        """
        phrase = phrase.strip()
        if not phrase:
            return []
        variants: list[list[int]] = []
        alone = list(self.pieces.EncodeAsIds(phrase))
        space_id = self.pieces.piece_to_id("▁")
        if alone and alone[0] == space_id and self.pieces.id_to_piece(space_id) == "▁":
            alone = alone[1:]
        anchor = list(self.pieces.EncodeAsIds("a"))
        in_context = list(self.pieces.EncodeAsIds("a " + phrase))
        spaced: list[int] = []
        if in_context[: len(anchor)] == anchor:
            spaced = in_context[len(anchor) :]
        word_start = bool(spaced) and self.pieces.id_to_piece(spaced[0]).startswith("▁")
        if word_start and spaced[0] == space_id:
            # a lone "▁" starts a word only where a Latin piece follows ("▁ x im en a" of "ximena", no
            # "▁x" piece): the bare spelling would glue onto the word before it. Before a CJK phrase it
            # is no word break, and the bare phrase may stand anywhere.
            word_start = len(spaced) > 1 and bool(self.piece_classes.continues[spaced[1]])
        if word_start and alone and alone != spaced:
            variants.append(spaced)
            usable = not any(t in self._special_ids for t in alone)
            variants += [[tag, *alone] for tag in self._text_norm_tag_ids if usable]
        else:
            variants += [alone, spaced]
        seen: list[tuple[int, ...]] = []
        for seq in variants:
            key = tuple(seq)
            body = key[1:] if key and key[0] in self._text_norm_tag_ids else key
            if body and key not in seen and not any(t in self._special_ids for t in body):
                seen.append(key)
        return seen

    def spot_targets(self, hotwords: Sequence[Hotword]) -> tuple[SpotTarget, ...]:
        """What the word spotter looks for (cached): each hotword's token spellings and its bonus."""
        return self._spot_cache(tuple(hotwords))

    def _build_spot_targets(self, hotwords: tuple[Hotword, ...]) -> tuple[SpotTarget, ...]:
        space_id = self.pieces.piece_to_id("▁")
        continues = self.piece_classes.continues
        targets: dict[tuple[tuple[int, ...], bool], float] = {}
        for hotword in hotwords:
            boost = DEFAULT_HOTWORD_BOOST if hotword.boost is None else float(hotword.boost)
            if boost <= 0.0:
                continue
            for seq in self.hotword_token_ids(hotword.phrase):
                pinned = seq[0] in self._text_norm_tag_ids
                body = seq[1:] if pinned else seq
                lone_space = bool(body) and body[0] == space_id and self.pieces.id_to_piece(space_id) == "▁"
                if lone_space and (len(body) == 1 or not continues[body[1]]):
                    body = body[1:]  # a lone "▁" before a CJK phrase: nothing to hear
                # a spelling that would glue onto the word before it ("x im en a" of "ximena", whose
                # spaced form is "▁ x im en a") makes a word only where the text starts
                pinned = pinned or (bool(body) and bool(continues[body[0]]))
                if body:
                    key = (body, pinned)
                    targets[key] = max(targets.get(key, 0.0), boost * SPOT_BONUS_SCALE)
        return tuple(
            SpotTarget(token_ids=body, bonus=bonus, text_start_only=pinned)
            for (body, pinned), bonus in targets.items()
        )

    def _build_graph(self, hotwords: tuple[Hotword, ...]) -> ContextGraph | None:
        seqs: list[tuple[int, ...]] = []
        boosts: list[float] = []
        for hotword in hotwords:
            boost = DEFAULT_HOTWORD_BOOST if hotword.boost is None else float(hotword.boost)
            if boost == 0.0:
                continue
            variants = self.hotword_token_ids(hotword.phrase)
            if not variants:
                log.debug("hotword %r has no usable token sequence; ignored", hotword.phrase)
            for seq in variants:
                seqs.append(seq)
                boosts.append(boost)
        if not seqs:
            return None
        return ContextGraph.build(seqs, boosts)


# ------------------------------------------------------------------------------------------ construction


def _load_pieces(path: Path) -> spm.SentencePieceProcessor:
    processor = spm.SentencePieceProcessor()
    try:
        processor.Load(str(path))
    except (OSError, RuntimeError) as exc:
        raise ModelLoadError(f"{path}: cannot load the sentencepiece model: {exc}") from exc
    return processor


def from_model_dir(
    model_dir: ModelDir, *, device: torch.device, dtype: torch.dtype, ban_emo_unk: bool = False
) -> SenseVoiceModel:
    """Build SenseVoiceSmall from a FunASR directory (loader dispatch entry point)."""
    from asr_engine.features import frontend_config_from_funasr

    pieces = _load_pieces(model_dir.require("bpe_model"))
    frontend = frontend_config_from_funasr(model_dir.config.get("frontend_conf"), model_dir.cmvn_file)
    dims = parse_sensevoice_dims(
        model_dir.config, vocab_size=pieces.get_piece_size(), input_size=frontend.feature_dim
    )
    net = SenseVoiceNet(dims)
    assign_weights(net, load_checkpoint(model_dir.require("checkpoint")))
    return SenseVoiceModel(net, pieces, frontend, device=device, dtype=dtype, ban_emo_unk=ban_emo_unk)
