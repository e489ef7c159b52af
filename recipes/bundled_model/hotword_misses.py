"""Per-sentence hotword diagnosis: why a rare name is missed even when it is given as a hotword.

For each sentence of a hotword split (``hot_en`` or ``hot_en_dev``), decoded with the whole name list
as hotwords (as ``evaluate``'s "with" condition), it keeps the text after each stage (greedy, prefix beam
search with the context graph, word spotter) and scores, under the decoder's own objective (CTC
log-likelihood of the token sequence plus the context graph's bonus), both the final output and that
output with the missed name put in place of the words aligned to it. If the patched text scores higher,
the search missed a better answer by its own measure (a search error); if lower, the model itself
prefers what it wrote, boost included. The word spotter's best window for the sentence's own name is
reported too (its gain with and without the floor on absolute log-prob).

    python -m recipes.bundled_model.hotword_misses --model asr_engine/bundled/lingting-mini \
        --corpus /tmp/s5test --split hot_en --out /tmp/misses_test.json

The engine's own ``decode_batch`` output is checked against the staged replay, so what is analysed is
what the evaluation scored.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from asr_engine.decoding.ctc import greedy_decode, prefix_beam_search
from asr_engine.decoding.word_spotter import hypothesis_path, spot_hotwords, spot_windows, state_labels
from asr_engine.features import Frontend
from asr_engine.models.base import DecodeRequest
from asr_engine.models.loader import load_model
from asr_engine.models.sensevoice import (
    BLANK_ID,
    PROMPT_FRAMES,
    SPOT_MARGIN,
    SPOT_MIN_TOKEN_LOG_PROB,
    SenseVoiceModel,
)
from asr_engine.types import Hotword
from recipes.bundled_model import metrics
from recipes.bundled_model.analyse_errors import align
from recipes.bundled_model.data import load_eval_split


def ctc_log_likelihood(lp: torch.Tensor, ids: list[int]) -> float:
    """log P(ids | frames) summed over all CTC alignments (the prefix beam search's measure)."""
    if not ids:
        return float(lp[:, BLANK_ID].sum())
    loss = F.ctc_loss(
        lp[:, None, :].float(),
        torch.tensor([ids]),
        torch.tensor([lp.shape[0]]),
        torch.tensor([len(ids)]),
        blank=BLANK_ID,
        reduction="sum",
        zero_infinity=False,
    )
    return -float(loss)


def graph_bonus(model: SenseVoiceModel, hotwords: tuple[Hotword, ...], ids: list[int]) -> float:
    """The context graph's settled bonus of a token sequence, as the beam search adds it."""
    graph = model.context_graph(hotwords)
    if graph is None:
        return 0.0
    state, total = graph.root, 0.0
    for t in ids:
        delta, state = graph.forward_one_step(state, t)
        total += delta
    return total + graph.finalize(state)


def patched_words(ref: list[str], hyp: list[str], name: str) -> tuple[list[str], list[str]]:
    """``hyp`` with the words aligned to ``name`` (and insertions right next to it) replaced by the name;
    also the hypothesis words that were there."""
    ops = align(ref, hyp)
    out: list[str] = []
    there: list[str] = []
    ri = 0
    name_at = ref.index(name)
    for op in ops:
        near = ri in (name_at, name_at + 1) if op.kind == "ins" else ri == name_at
        if op.kind == "ins" and near:
            there.append(op.hyp)
        elif near:
            if op.hyp:
                there.append(op.hyp)
            out.append(name)
        elif op.hyp:
            out.append(op.hyp)
        if op.kind != "ins":
            ri += 1
    return out, there


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--split", required=True, help="hot_en or hot_en_dev")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    device = torch.device("cpu")
    model = load_model(args.model, device=device)
    assert isinstance(model, SenseVoiceModel), type(model)
    frontend = Frontend(model.frontend, device)
    waves, metas = load_eval_split(args.corpus, args.split)
    hotwords = tuple(Hotword(phrase=n) for n in sorted({m["name"] for m in metas}))
    request = DecodeRequest(language="en", hotwords=hotwords)
    targets = model.spot_targets(hotwords)
    rows = []
    for i, (wave, meta) in enumerate(zip(waves, metas, strict=True)):
        feats, lens = frontend([torch.from_numpy(wave)])
        lp_b, lengths = model.log_probs(feats, lens, [request])
        lp = lp_b[0, : int(lengths[0])]
        engine_text = metrics.strip_tags(model.decode_batch(feats, lens, [request])[0].text)
        greedy = greedy_decode(lp[None], lengths[:1], blank=BLANK_ID)[0]
        graph = model.context_graph(hotwords)
        beam = list(prefix_beam_search(lp, lp.shape[0], model.beam_size, graph, blank=BLANK_ID).token_ids)
        path = lp.argmax(dim=-1).cpu().numpy() if beam == greedy else None
        final = list(
            spot_hotwords(
                lp, beam, targets, model.piece_classes, path=path, first_frame=PROMPT_FRAMES,
                margin=SPOT_MARGIN, min_token_log_prob=SPOT_MIN_TOKEN_LOG_PROB, blank=BLANK_ID,
            ).token_ids
        )  # fmt: skip

        def text(ids: list[int]) -> str:
            return metrics.strip_tags(model.pieces.DecodeIds(ids))

        name, ref = meta["name"], meta["text"]
        row: dict = {
            "i": i,
            "name": name,
            "ref": ref,
            "engine": meta["engine"],
            "voice": meta["voice"],
            "rate": meta["rate"],
            "greedy": text(greedy),
            "beam": text(beam),
            "final": text(final),
            "found": name in text(final).split(),
            "engine_matches_replay": engine_text == text(final),
            "name_pieces": [model.pieces.id_to_piece(t) for t in model.hotword_token_ids(name)[0]],
        }
        if not row["found"]:
            prefix_len = int(np.argmin(model.piece_classes.protected[np.asarray(final)])) if final else 0
            tag_prefix = final[:prefix_len]
            words, there = patched_words(ref.split(), text(final).split(), name)
            patched = tag_prefix + list(model.pieces.EncodeAsIds(" ".join(words)))
            scores = {}
            for key, ids in (("final", final), ("patched", patched), ("beam", beam)):
                ll = ctc_log_likelihood(lp, ids)
                scores[key] = {"log_lik": round(ll, 2), "bonus": round(graph_bonus(model, hotwords, ids), 2)}
            row["there"] = there
            row["patched"] = " ".join(words)
            row["scores"] = scores
            row["patched_minus_final"] = round(
                scores["patched"]["log_lik"] + scores["patched"]["bonus"]
                - scores["final"]["log_lik"] - scores["final"]["bonus"], 2,
            )  # fmt: skip
            # the spotter's best window for this sentence's own name, against the final text's path
            mine = {(t.token_ids, t.text_start_only) for t in model.spot_targets((Hotword(phrase=name),))}
            own = [t for t in targets if (t.token_ids, t.text_start_only) in mine]
            fpath = hypothesis_path(lp, final, blank=BLANK_ID)
            if own and fpath is not None:
                seqs = [t.token_ids for t in own]
                labels = torch.from_numpy(state_labels(seqs, BLANK_ID))
                emissions = lp.index_select(1, labels).numpy()[PROMPT_FRAMES:]
                reference = lp.gather(1, torch.from_numpy(fpath)[:, None])[:, 0].numpy()[PROMPT_FRAMES:]
                score, start = spot_windows(emissions, reference, seqs, blank=BLANK_ID)
                best = []
                for k, t in enumerate(own):
                    e = int(np.argmax(score[:, k]))
                    s = int(start[e, k])
                    absolute = float(score[e, k] + reference[s : e + 1].sum())
                    best.append({
                        "pieces": [model.pieces.id_to_piece(x) for x in t.token_ids],
                        "text_start_only": t.text_start_only,
                        "rel": round(float(score[e, k]), 2),
                        "gain_with_bonus": round(float(score[e, k]) + t.bonus * len(t.token_ids), 2),
                        "abs_per_token": round(absolute / len(t.token_ids), 2),
                        "frames": [s + PROMPT_FRAMES, e + PROMPT_FRAMES],
                    })  # fmt: skip
                row["spot_own"] = best
            row["spot_replay"] = _replay(model, lp, beam, greedy, targets, name, hotwords)
        rows.append(row)
    found = sum(r["found"] for r in rows)
    summary = {
        "split": args.split,
        "n": len(rows),
        "found": found,
        "recall": round(100 * found / len(rows), 1),
        "replay_mismatches": sum(not r["engine_matches_replay"] for r in rows),
    }
    args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(summary))


def _replay(
    model: SenseVoiceModel,
    lp: torch.Tensor,
    beam: list[int],
    greedy: list[int],
    targets: tuple,
    name: str,
    hotwords: tuple[Hotword, ...],
) -> dict:
    """The spotter rerun on the beam's output: with every name (as decoded), with the own name only
    (floor on and off): which spots it takes, with their gains after the outside-frame charge."""
    path = lp.argmax(dim=-1).cpu().numpy() if beam == greedy else None
    owner = {}
    for hw in hotwords:
        for t in model.spot_targets((hw,)):
            owner[(t.token_ids, t.text_start_only)] = hw.phrase
    own = tuple(t for t in targets if owner[(t.token_ids, t.text_start_only)] == name)
    out = {}
    for key, tgts, floor in (
        ("all", targets, SPOT_MIN_TOKEN_LOG_PROB),
        ("own", own, SPOT_MIN_TOKEN_LOG_PROB),
        ("own_no_floor", own, None),
    ):
        res = spot_hotwords(
            lp, beam, tgts, model.piece_classes, path=path, first_frame=PROMPT_FRAMES,
            margin=SPOT_MARGIN, min_token_log_prob=floor, blank=BLANK_ID,
        )  # fmt: skip
        text = metrics.strip_tags(model.pieces.DecodeIds(list(res.token_ids)))
        out[key] = {
            "found": name in text.split(),
            "spots": [
                {
                    "name": owner[(tgts[s.target].token_ids, tgts[s.target].text_start_only)],
                    "gain": round(s.gain, 2),
                    "frames": [s.start, s.end],
                    "tokens": [s.first_token, s.end_token],
                }
                for s in res.spots
            ],
        }
    return out


if __name__ == "__main__":
    main()
