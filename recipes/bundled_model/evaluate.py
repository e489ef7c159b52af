"""Held-out evaluation of an exported model through the engine's own SenseVoice family (CPU or GPU).

Reports, with ``itn`` off against the spoken-form reference:
* English WER and Mandarin CER on the held-out test sets (sentences, voices and rates not in training),
  with the language given and with ``auto``;
* hotword recall: the share of test sentences whose rare name (absent from the training text) appears in
  the output, without and with the whole rare-name list as hotwords, and the WER/CER change on the
  ordinary test sets when that list is passed;
* the realtime factor of features + network + decoding, one utterance at a time.

    python -m recipes.bundled_model.evaluate --model asr_engine/bundled/lingting-mini --corpus /tmp/testc

The tuning (dev) split instead: ``--corpus /tmp/devc --hot-suffix _dev --wer-prefix dev --no-rtf``
(result keys keep the test names; ``test_en`` there is ``dev_en``, and zh has hotwords but no WER set).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from asr_engine.features import Frontend
from asr_engine.models.base import DecodeRequest
from asr_engine.models.loader import load_model
from asr_engine.models.sensevoice import SenseVoiceModel
from asr_engine.types import Hotword
from recipes.bundled_model import metrics
from recipes.bundled_model.data import load_eval_split


def decode(
    model, frontend: Frontend, waves: list[np.ndarray], requests: list[DecodeRequest], batch: int = 16
) -> list[str]:
    """Texts (tags stripped) for each wave, batched by length."""
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    out: dict[int, str] = {}
    for lo in range(0, len(order), batch):
        ids = order[lo : lo + batch]
        feats, lens = frontend([torch.from_numpy(waves[i]) for i in ids])
        hyps = model.decode_batch(feats, lens, [requests[i] for i in ids])
        for i, h in zip(ids, hyps, strict=True):
            out[i] = metrics.strip_tags(h.text)
    return [out[i] for i in range(len(waves))]


def by_engine(refs: list[str], hyps: list[str], engines: list[str], lang: str) -> dict[str, dict]:
    """Error rate per synthesizer: a synthesizer missing from training shows up here, not in the mean."""
    out = {}
    for engine in sorted(set(engines)):
        ids = [i for i, e in enumerate(engines) if e == engine]
        rate, err, tot = metrics.error_rate([refs[i] for i in ids], [hyps[i] for i in ids], lang)
        out[engine] = {"rate": round(rate, 2), "errors": err, "units": tot, "n": len(ids)}
    return out


def name_found(name: str, hyp: str, lang: str) -> bool:
    return name in hyp.replace(" ", "") if lang == "zh" else name in hyp.split()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--rtf-n", type=int, default=40)
    ap.add_argument("--hot-suffix", default="", help="hotword splits hot_{lang}{suffix}: '_dev' for tuning")
    ap.add_argument("--wer-prefix", default="test", help="WER splits {prefix}_{lang}: 'dev' for tuning")
    ap.add_argument("--langs", default="en,zh", help="languages to score")
    ap.add_argument("--no-rtf", action="store_true", help="skip the realtime factor")
    args = ap.parse_args()
    langs = tuple(args.langs.split(","))
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    device = torch.device("cpu")
    model = load_model(args.model, device=device)
    assert isinstance(model, SenseVoiceModel), type(model)
    frontend = Frontend(model.frontend, device)
    res: dict = {}
    hot_sets = {lang: load_eval_split(args.corpus, f"hot_{lang}{args.hot_suffix}") for lang in langs}
    hot_lists = {
        lang: tuple(Hotword(phrase=n) for n in sorted({m["name"] for m in metas}))
        for lang, (_, metas) in hot_sets.items()
    }
    for lang in langs:
        waves, metas = load_eval_split(args.corpus, f"{args.wer_prefix}_{lang}")
        refs = [m["text"] for m in metas]
        for prompt in (lang, "auto") if waves else ():
            hyps = decode(model, frontend, waves, [DecodeRequest(language=prompt)] * len(waves))
            rate, err, tot = metrics.error_rate(refs, hyps, lang)
            res[f"test_{lang}/{prompt}"] = {
                "rate": round(rate, 2),
                "errors": err,
                "units": tot,
                "n": len(waves),
            }
            if prompt == lang:
                engines = [m["engine"] for m in metas]
                res[f"test_{lang}/{prompt}"]["by_engine"] = by_engine(refs, hyps, engines, lang)
        if waves:
            hw = [DecodeRequest(language=lang, hotwords=hot_lists[lang])] * len(waves)
            hyps = decode(model, frontend, waves, hw)
            rate, err, tot = metrics.error_rate(refs, hyps, lang)
            res[f"test_{lang}/{lang}+hotwords"] = {"rate": round(rate, 2), "errors": err, "units": tot}
        hwaves, hmetas = hot_sets[lang]
        for tag, reqs in (
            ("without", [DecodeRequest(language=lang)] * len(hwaves)),
            ("with", [DecodeRequest(language=lang, hotwords=hot_lists[lang])] * len(hwaves)),
        ):
            hyps = decode(model, frontend, hwaves, reqs)
            found = sum(name_found(m["name"], h, lang) for m, h in zip(hmetas, hyps, strict=True))
            rate, _, _ = metrics.error_rate([m["text"] for m in hmetas], hyps, lang)
            res[f"hotword_{lang}/{tag}"] = {
                "recall": round(100 * found / len(hmetas), 1),
                "n": len(hmetas),
                "error_rate": round(rate, 2),
                "names": len(hot_lists[lang]),
            }
    # the easiest setting: each sentence gets only its own name, at the default and at a strong boost
    for lang in langs:
        hwaves, hmetas = hot_sets[lang]
        for boost in (None, 4.0):
            reqs = [
                DecodeRequest(language=lang, hotwords=(Hotword(phrase=m["name"], boost=boost),))
                for m in hmetas
            ]
            hyps = decode(model, frontend, hwaves, reqs)
            found = sum(name_found(m["name"], h, lang) for m, h in zip(hmetas, hyps, strict=True))
            res[f"hotword_{lang}/own_name_boost_{boost or 'default'}"] = {
                "recall": round(100 * found / len(hmetas), 1),
                "n": len(hmetas),
            }
    # realtime factor: one utterance per call, features included
    if args.no_rtf:
        return _finish(res, args.out)
    waves = (
        load_eval_split(args.corpus, "test_en")[0][: args.rtf_n // 2]
        + load_eval_split(args.corpus, "test_zh")[0][: args.rtf_n // 2]
    )
    decode(model, frontend, waves[:2], [DecodeRequest()] * 2, batch=1)
    t = time.perf_counter()
    decode(model, frontend, waves, [DecodeRequest()] * len(waves), batch=1)
    wall = time.perf_counter() - t
    audio = sum(len(w) for w in waves) / 16000
    res["rtf_cpu"] = {
        "threads": torch.get_num_threads(),
        "audio_s": round(audio, 1),
        "wall_s": round(wall, 2),
        "realtime_factor_x": round(audio / wall, 1),
    }
    _finish(res, args.out)


def _finish(res: dict, out: Path | None) -> None:
    text = json.dumps(res, indent=2, ensure_ascii=False)
    print(text)
    if out:
        out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
