"""Synthesise the bundled sample clips (held-out voices) and record what the engine makes of them.

Candidates are spoken with voices held out of training; a candidate is kept when the model transcribes
it exactly (spoken form, ITN off) and, with ITN on, gives the engine's ITN of the reference text. What is
recorded (and what the tests expect) is the reference text and its ITN, never the model's output. The
hotword clip carries a rare name that the model misses on its own and, given the name as a hotword,
transcribes the whole reference sentence exactly.

    python -m recipes.bundled_model.make_samples --model asr_engine/bundled/lingting-mini
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import wave
from pathlib import Path

import numpy as np

from asr_engine.engine import Engine, EngineConfig
from asr_engine.text.itn import apply_itn, attach_punctuation
from asr_engine.types import Hotword, TranscribeOptions
from recipes.bundled_model import tts

EN = [
    "the meeting is on march fifth at nine thirty a m",
    "the ticket costs twenty five dollars",
    "my phone number is five five five one two three four",
    "prices went up by fifteen percent last year",
    "please send the report to my office before friday",
    "we need three hundred forty two boxes",
]
ZH = [
    "会议定在二零二五年三月五号下午三点半",
    "这个要二十五块钱",
    "价格上涨了百分之十五",
    "我的电话号码是一三八一二三四五六七八",
    "我们明天在公司见面吧",
]
HOT = [
    "please call {n} tomorrow morning",
    "we invited {n} to the meeting",
    "the report was written by {n}",
]
HOT_NAMES = [
    "haverford",
    "castellano",
    "marchetti",
    "abernathy",
    "villalobos",
    "lindqvist",
    "mcallister",
    "evangeline",
    "philippa",
    "bartholomew",
    "thistlewood",
    "delacroix",
]
HOT_VOICES = [("espeak", "en-us-nyc+m7"), ("espeak", "en-us"), ("flite", "slt"), ("espeak", "en-gb")]
VOICES_EN = [("espeak", "en-us-nyc+m7"), ("flite", "rms"), ("espeak", "en-gb-x-gbcwmd+f4")]
VOICE_ZH = ("espeak", "cmn-latn-pinyin+f4")
RAW = TranscribeOptions(itn=False, punctuation=False, vad=False)
ITN = TranscribeOptions(itn=True, punctuation=False, vad=False)


def synth(engine: str, voice: str, text: str) -> np.ndarray:
    env = tts.TtsEnv()
    say = tts.speech_text_en(text) if engine != "espeak" or not voice.startswith("cmn") else text
    x = tts.espeak(env, say, voice, 170, 50) if engine == "espeak" else tts.flite(env, say, voice, 1.0, None)
    return x * (0.7 / max(1e-6, float(np.abs(x).max())))


def wav_bytes(x: np.ndarray) -> bytes:
    """16-bit mono WAV; the engine is run on exactly these bytes, as the tests will be."""
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


async def run(model: Path, out: Path, n_en: int, n_zh: int) -> list[dict]:
    eng = Engine.load(model, device="cpu", config=EngineConfig())
    await eng.start()
    rows: list[dict] = []
    try:
        for lang, texts, voices, want in (("en", EN, VOICES_EN, n_en), ("zh", ZH, [VOICE_ZH], n_zh)):
            k = 0
            for i, text in enumerate(texts):
                if k >= want:
                    break
                engine_name, voice = voices[i % len(voices)]
                if attach_punctuation(apply_itn(text, lang)) == text:
                    continue  # every sample shows ITN at work
                x = wav_bytes(synth(engine_name, voice, text))
                raw = await eng.transcribe(x, RAW)
                text_itn = attach_punctuation(apply_itn(text, lang))
                itn = await eng.transcribe(x, ITN)
                if raw.text != text or itn.text != text_itn:
                    print(f"skip ({voice}): {text!r} -> {raw.text!r} / {itn.text!r}")
                    continue
                k += 1
                name = f"{lang}_{k}.wav"
                (out / name).write_bytes(x)
                rows.append(
                    {
                        "file": name,
                        "language": lang,
                        "voice": f"{engine_name}:{voice}",
                        "text": text,
                        "text_itn": text_itn,
                    }
                )
        rows.extend(await _hotword_sample(eng, out))
    finally:
        await eng.close()
    return rows


async def _hotword_sample(eng: Engine, out: Path) -> list[dict]:
    """First (voice, sentence, boost) where the name is missed plainly and found with the hotword."""
    for engine_name, voice in HOT_VOICES:
        for template in HOT:
            for n in HOT_NAMES:
                text = template.format(n=n)
                x = wav_bytes(synth(engine_name, voice, text))
                plain = await eng.transcribe(x, RAW)
                if n in plain.text.split():
                    continue
                for boost in (None, 3.0, 4.0):
                    hot = await eng.transcribe(
                        x,
                        TranscribeOptions(
                            itn=False,
                            punctuation=False,
                            vad=False,
                            hotwords=(Hotword(phrase=n, boost=boost),),
                        ),
                    )
                    if hot.text == text:
                        (out / "hotword_1.wav").write_bytes(x)
                        return [
                            {
                                "file": "hotword_1.wav",
                                "language": "en",
                                "voice": f"{engine_name}:{voice}",
                                "text": text,
                                "hotwords": [n],
                                "boost": boost,
                                "text_without_hotwords": plain.text,
                            }
                        ]
                print(f"hotword candidate {n!r} ({voice}): plain {plain.text!r}, with {hot.text!r}")
    return []


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--n-en", type=int, default=2)
    ap.add_argument("--n-zh", type=int, default=2)
    args = ap.parse_args()
    out = args.model / "samples"
    out.mkdir(exist_ok=True)
    rows = asyncio.run(run(args.model, out, args.n_en, args.n_zh))
    (out / "samples.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(rows, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
